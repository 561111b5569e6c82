//! The loader's tests: shorthands, big integers, `$graph`/`$import`/
//! `$include`, and the positions, expected fields and suggestions of its
//! error messages.

use super::position::{did_you_mean, locate, show};
use super::*;
use serde_json::{Map, json};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn type_shorthands() {
    assert_eq!(
        normalize_type(json!("File[]?")).unwrap(),
        json!(["null", {"type": "array", "items": "File"}])
    );
    assert_eq!(normalize_type(json!("#Foo")).unwrap(), json!("Foo"));
}

#[test]
fn big_integers_stay_exact() {
    let v = parse_text(
        "a: 4200000000000000000000000000000000000000000\nb: y\n",
        "t",
    )
    .unwrap();
    assert_eq!(
        v["a"].to_string(),
        "4200000000000000000000000000000000000000000"
    );
    assert_eq!(v["b"], json!("y"));
}

#[test]
fn malformed_yaml_is_an_error() {
    let e = parse_text("a: [1, 2\nb: {", "x.cwl").unwrap_err();
    assert!(e.to_string().contains("x.cwl"), "{e}");
}

#[test]
fn maps_imports_and_graph() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "lib.js", "function f(){return 1;}");
    write(
        d.path(),
        "types.yml",
        "- name: T\n  type: enum\n  symbols: [a, b]\n",
    );
    let p = write(
        d.path(),
        "wf.cwl",
        "cwlVersion: v1.2\n$graph:\n- id: tool\n  class: CommandLineTool\n  requirements:\n    InlineJavascriptRequirement:\n      expressionLib: [{$include: lib.js}]\n    SchemaDefRequirement:\n      types: [{$import: types.yml}]\n  inputs:\n    x: string?\n  outputs: {}\n  baseCommand: echo\n- id: main\n  class: Workflow\n  inputs: {x: string}\n  outputs: {}\n  steps:\n    s1:\n      run: '#tool'\n      in: {x: x}\n      out: []\n",
    );
    let l = load(&format!("{}#main", p.display())).unwrap();
    let step = &l.process["steps"][0];
    assert_eq!(step["id"], json!("s1"));
    assert_eq!(step["in"][0]["source"], json!("x"));
    let tool = &step["run"];
    assert_eq!(tool["inputs"][0]["type"], json!(["null", "string"]));
    assert_eq!(
        tool["requirements"][0]["expressionLib"][0],
        json!("function f(){return 1;}")
    );
    assert_eq!(tool["requirements"][1]["types"][0]["name"], json!("T"));
    assert_eq!(tool["baseCommand"], json!(["echo"]));
}

#[test]
fn unknown_field_and_operation() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "t.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\nbogus: 1\n",
    );
    let e = load(&p.display().to_string()).err().unwrap();
    assert!(e.to_string().contains("unknown field 'bogus'"), "{e}");
    let p = write(
        d.path(),
        "o.cwl",
        "cwlVersion: v1.2\nclass: Operation\ninputs: []\noutputs: []\n",
    );
    let e = load(&p.display().to_string()).err().unwrap();
    assert_eq!(e.exit_code(), 33);
}

#[test]
fn missing_file() {
    assert!(load("/nonexistent/x.cwl").is_err());
}

/// The message of a failed [`load`] of `text` written to `name`.
fn load_err(name: &str, text: &str) -> (String, String) {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), name, text);
    let e = load(&p.display().to_string()).err().unwrap();
    (e.to_string(), p.display().to_string())
}

#[test]
fn malformed_yaml_names_line_and_column() {
    let e = parse_text(
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: [a\n",
        "x.cwl",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("x.cwl:3:9: malformed YAML: "), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
    let e = parse_text("a: 1\n  b: 2\n", "y.cwl")
        .unwrap_err()
        .to_string();
    assert!(e.contains("y.cwl:2:"), "{e}");
}

#[test]
fn unknown_field_names_line_column_and_expected_fields() {
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\n  # comment\n\nbogus: 1\n",
    );
    assert!(
        e.contains(&format!(
            "{p}:7:1: unknown field 'bogus' in CommandLineTool"
        )),
        "{e}"
    );
    assert!(e.contains("expected one of: "), "{e}");
    assert!(e.contains("baseCommand"), "{e}");
    assert!(!e.contains("__base"), "{e}");
    let (e, p) = load_err(
        "typo.cwl",
        "cwlVersion: v1.2\nclass: ExpressionTool\ninputs: []\noutputs: []\nexpresion: '$({})'\n",
    );
    assert!(
        e.contains(&format!("{p}:5:1: unknown field 'expresion'")),
        "{e}"
    );
    assert!(e.contains("did you mean 'expression'?"), "{e}");
}

#[test]
fn unknown_field_in_json_document() {
    let (e, p) = load_err(
        "t.cwl",
        "{\"cwlVersion\": \"v1.2\",\n \"class\": \"CommandLineTool\",\n \"inputs\": [],\n \"outputs\": [], \"bogus\": 1}\n",
    );
    assert!(
        e.contains(&format!("{p}:4:17: unknown field 'bogus'")),
        "{e}"
    );
}

#[test]
fn step_errors_name_the_line_of_the_step() {
    let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}
    in: {msg: m}
    out: []
  b:
    run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}
    in: {msg: m}
    out: []
    scater: msg
";
    let (e, p) = load_err("wf.cwl", wf);
    assert!(
        e.contains(&format!("{p}:14:5: unknown field 'scater' in step 'b'")),
        "{e}"
    );
    assert!(e.contains("did you mean 'scatter'?"), "{e}");
    // List form, in a $graph whose two tools share the unknown key name
    // only in the second one.
    let graph = "cwlVersion: v1.2
$graph:
- id: one
  class: CommandLineTool
  inputs: []
  outputs: []
- id: main
  class: Workflow
  inputs: []
  outputs: []
  steps:
  - id: s
    run: '#one'
    in: []
    out: []
    bogus: 1
";
    let (e, p) = load_err("g.cwl", graph);
    assert!(
        e.contains(&format!("{p}:16:5: unknown field 'bogus' in step 's'")),
        "{e}"
    );
    let missing = wf.replace(
        "run: {class: ExpressionTool, inputs: [], outputs: [], expression: '$({})'}\n    in: {msg: m}\n    out: []\n    scater: msg\n",
        "run: nowhere.cwl\n    in: {msg: m}\n    out: []\n",
    );
    let (e, p) = load_err("wf.cwl", &missing);
    assert!(e.contains(&format!("{p}:11:5: step 'b': run: ")), "{e}");
    assert!(e.contains("nowhere.cwl"), "{e}");
}

#[test]
fn the_right_mapping_is_found() {
    // Two processes with the same unknown field: the one whose other
    // keys match is reported.
    let graph = "cwlVersion: v1.2
$graph:
- id: one
  class: CommandLineTool
  inputs: []
  outputs: []
  baseCommand: echo
  extra: 1
- id: two
  class: CommandLineTool
  inputs: []
  outputs: []
  extra: 2
";
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "g.cwl", graph);
    let e = load(&format!("{}#two", p.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&format!("{}:13:3: unknown field 'extra'", p.display())),
        "{e}"
    );
    let e = load(&format!("{}#one", p.display()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains(&format!("{}:8:3: unknown field 'extra'", p.display())),
        "{e}"
    );
}

#[test]
fn other_validation_errors_have_positions() {
    let (e, p) = load_err("c.cwl", "cwlVersion: v1.2\nclass: Tool\ninputs: []\n");
    assert!(
        e.contains(&format!("{p}:2:1: class: unknown process class 'Tool'")),
        "{e}"
    );
    let (e, p) = load_err(
        "v.cwl",
        "class: CommandLineTool\ncwlVersion: draft-3\ninputs: []\n",
    );
    assert!(
        e.contains(&format!("{p}:2:1: cwlVersion: unsupported version")),
        "{e}"
    );
    let (e, p) = load_err(
        "i.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\noutputs: []\ninputs: 5\n",
    );
    assert!(
        e.contains(&format!("{p}:4:1: inputs: expected a list or a map")),
        "{e}"
    );
    let (e, p) = load_err(
        "r.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\nrequirements:\n  - 5\n",
    );
    assert!(
        e.contains(&format!(
            "{p}:5:1: requirements: a requirement must be an object"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "w.cwl",
        "cwlVersion: v1.0\nclass: Workflow\ninputs: []\noutputs: []\nsteps:\n  s:\n    run: x.cwl\n    in: []\n    out: []\n    when: $(true)\n",
    );
    assert!(e.contains(&format!("{p}:10:5: step field 'when'")), "{e}");
}

#[test]
fn position_index_survives_odd_input() {
    let empty = Map::new();
    for text in [
        "",
        "[[[[[[",
        "{{{{",
        "? [a, b]\n: c\nd: e\n",
        "&a {x: *a, y: *nope}\n",
        "a: 1\n---\nb: 2\n",
        "\t\u{0}\u{feff}: x",
        "- - - - a: b\n",
        "a: !!binary ZZZ\n",
        "{\"a\": {\"b\": [1, {\"c\": 2}]}}",
    ] {
        let _ = locate(text, Some("a"), &empty);
        let _ = locate(text, None, &empty);
    }
    let deep = "[".repeat(100_000);
    let _ = locate(&deep, Some("x"), &empty);
    let deep = "a:\n".repeat(2_000);
    let _ = locate(&deep, Some("a"), &empty);
    let obj = json!({"x": 1}).as_object().cloned().unwrap();
    assert_eq!(locate("a: {x: 1, y: 2}\n", Some("y"), &obj), Some((1, 11)));
    assert_eq!(locate("? [k]\n: v\ny: 1\n", Some("y"), &obj), Some((3, 1)));
    assert_eq!(locate("a: 1\n", Some("zz"), &obj), None);
}

#[test]
fn suggestions() {
    let known = ["baseCommand", "inputs", "outputs", "stdout"];
    assert_eq!(did_you_mean("baseComand", &known), Some("baseCommand"));
    assert_eq!(did_you_mean("inputz", &known), Some("inputs"));
    assert_eq!(did_you_mean("BaseCommand", &known), Some("baseCommand"));
    assert_eq!(did_you_mean("xyz", &known), None);
    assert_eq!(did_you_mean(&"x".repeat(10_000), &known), None);
    assert_eq!(show(&"k".repeat(1000)).chars().count(), 83);
    assert_eq!(show("a\nb"), "'a\\nb'");
}

/// A load of `text` (written to `t.cwl`) that must succeed.
fn load_ok(text: &str) {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "t.cwl", text);
    if let Err(e) = load(&p.display().to_string()) {
        panic!("should load: {e}\n{text}");
    }
}

#[test]
fn unknown_fields_in_parameters_and_bindings() {
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg:
    type: string
    inputBinding: {position: 1, prefx: -m}
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:7:33: unknown field 'prefx' in inputBinding of input 'msg' (did you mean 'prefix'? expected one of: loadContents, position, prefix, separate, itemSeparator, valueFrom, shellQuote)"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs: []
outputs:
  - id: out
    type: File
    outputBinding:
      glob: out.txt
      outputEva: $(self)
",
    );
    assert!(
        e.contains(&format!(
            "{p}:10:7: unknown field 'outputEva' in outputBinding of output 'out' (did you mean 'outputEval'? expected one of: glob, loadContents, loadListing, outputEval)"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
inputs:
  a:
    type: int
    defualt: 1
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:6:5: unknown field 'defualt' in input 'a' (did you mean 'default'?"
        )),
        "{e}"
    );
    assert!(e.contains("inputBinding)"), "{e}");
    // A workflow output: no outputBinding in v1.2, but pickValue.
    let (e, p) = load_err(
        "w.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: []
outputs:
  o: {type: string, outputSource: a/x, outputBinding: {glob: x}}
steps: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:5:40: unknown field 'outputBinding' in output 'o' (expected one of: id, label, doc, type, format, secondaryFiles, streamable, outputSource, linkMerge, pickValue)"
        )),
        "{e}"
    );
    // ExpressionTool inputs are workflow inputs: inputBinding has only
    // loadContents (v1.2).
    let (e, p) = load_err(
        "e.cwl",
        "cwlVersion: v1.2
class: ExpressionTool
inputs:
  - id: a
    type: File
    inputBinding: {position: 1}
outputs: []
expression: '$({})'
",
    );
    assert!(
        e.contains(&format!(
            "{p}:6:20: unknown field 'position' in inputBinding of input 'a' (expected one of: loadContents)"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "s.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
inputs:
  a:
    type: File
    secondaryFiles:
      - pattern: .bai
        requird: false
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:8:9: unknown field 'requird' in secondaryFiles of input 'a' (did you mean 'required'?"
        )),
        "{e}"
    );
}

#[test]
fn unknown_fields_in_type_schemas() {
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      type: record
      fields:
        a: {type: int, inputBinding: {prefx: -a}}
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:8:39: unknown field 'prefx' in inputBinding of field 'a' of input 'r'"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      type: record
      fields:
        - name: a
          type: int
          dcs: x
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:10:11: unknown field 'dcs' in field 'a' of input 'r'"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
inputs:
  r:
    type:
      - 'null'
      - type: array
        items: {type: enum, symbols: [a, b], symbol: a}
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:8:46: unknown field 'symbol' in enum type of input 'r' (did you mean 'symbols'?"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  SchemaDefRequirement:
    types:
      - name: T
        type: record
        field: []
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:8:9: unknown field 'field' in record type of SchemaDefRequirement (did you mean 'fields'?"
        )),
        "{e}"
    );
    // Output record fields may have an outputBinding, input ones not.
    load_ok(
        "cwlVersion: v1.2
class: CommandLineTool
inputs: []
outputs:
  r:
    type:
      type: record
      fields:
        a: {type: File, outputBinding: {glob: a.txt}}
",
    );
    let (e, _) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs:
  r:
    type:
      type: record
      fields:
        a: {type: File, inputBinding: {position: 1}}
outputs: []
steps: []
",
    );
    assert!(
        e.contains("unknown field 'inputBinding' in field 'a' of input 'r'"),
        "{e}"
    );
}

#[test]
fn unknown_fields_in_requirements() {
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPul: debian
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:5:5: unknown field 'dockerPul' in DockerRequirement (did you mean 'dockerPull'? expected one of: class, dockerPull, dockerLoad, dockerFile, dockerImport, dockerImageId, dockerOutputDirectory)"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  - class: ResourceRequirement
    coresMin: 1
    ramMn: 100
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:6:5: unknown field 'ramMn' in ResourceRequirement (did you mean 'ramMin'?"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  EnvVarRequirement:
    envDef:
      - envName: A
        envValu: x
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:7:9: unknown field 'envValu' in envDef 'A' of EnvVarRequirement (did you mean 'envValue'? expected one of: envName, envValue)"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InitialWorkDirRequirement:
    listing:
      - $(inputs.f)
      - {class: File, location: x.txt}
      - entryname: a.txt
        entry: hi
        writeable: true
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:10:9: unknown field 'writeable' in listing entry (Dirent) of InitialWorkDirRequirement (did you mean 'writable'?"
        )),
        "{e}"
    );
    let (e, p) = load_err(
        "t.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  SoftwareRequirement:
    packages:
      samtools: {versions: ['1.9']}
inputs: []
outputs: []
",
    );
    assert!(
        e.contains(&format!(
            "{p}:6:18: unknown field 'versions' in package 'samtools' of SoftwareRequirement (did you mean 'version'?"
        )),
        "{e}"
    );
}

#[test]
fn unknown_fields_in_step_inputs_and_outputs() {
    let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: {class: ExpressionTool, inputs: [msg], outputs: [], expression: '$({})'}
    in:
      msg: {source: m, valueFrm: x}
    out: []
";
    let (e, p) = load_err("wf.cwl", wf);
    assert!(
        e.contains(&format!(
            "{p}:9:24: unknown field 'valueFrm' in input 'msg' of step 'a' (did you mean 'valueFrom'? expected one of: id, source, linkMerge, pickValue, loadContents, loadListing, label, default, valueFrom)"
        )),
        "{e}"
    );
    let wf = "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  - id: a
    run: {class: ExpressionTool, inputs: [msg], outputs: [x], expression: '$({})'}
    in:
      - id: msg
        source: m
    out:
      - id: x
        doc: nope
    requirements:
      ResourceRequirement: {coresMin: 1, ramMn: 2}
";
    let (e, p) = load_err("wf.cwl", wf);
    assert!(
        e.contains(&format!(
            "{p}:13:9: unknown field 'doc' in output 'x' of step 'a' (expected one of: id)"
        )),
        "{e}"
    );
    let (e, p) = load_err("wf.cwl", &wf.replace("        doc: nope\n", ""));
    assert!(
        e.contains(&format!(
            "{p}:14:42: unknown field 'ramMn' in ResourceRequirement of step 'a'"
        )),
        "{e}"
    );
}

#[test]
fn lenient_where_the_spec_allows() {
    // Extensions and URIs anywhere, anything under hints, unknown
    // requirement classes, and v1.0 fields in v1.0 documents.
    load_ok(
        "cwlVersion: v1.2
class: CommandLineTool
$namespaces: {cwltool: 'http://commonwl.org/cwltool#'}
baseCommand: echo
requirements:
  DockerRequirement: {dockerPull: debian, 'cwltool:extra': 1}
  cwltool:Secrets: {secrets: [a]}
  InlineJavascriptRequirement: {}
  ShellCommandRequirement:
hints:
  DockerRequirement: {dockerPull: debian, anything: 1}
  ResourceRequirement: {ramMn: 1}
  Whatever: {at: all}
inputs:
  a:
    type: string
    'cwltool:foo': 1
    'http://example.com/x': 2
    inputBinding: {position: 1, 's:note': 1}
outputs:
  o:
    type: stdout
    'arv:bar': 1
stdout: o.txt
",
    );
    load_ok(
        "cwlVersion: v1.0
class: Workflow
inputs:
  a:
    type: File
    inputBinding: {position: 1}
    secondaryFiles: .bai
outputs:
  o:
    type: File
    outputSource: a
    outputBinding: {glob: x}
steps: []
",
    );
    load_ok(
        "cwlVersion: v1.2
class: Workflow
requirements:
  StepInputExpressionRequirement: {}
  MultipleInputFeatureRequirement: {}
inputs: {a: string, b: 'string?'}
outputs:
  o: {type: string, outputSource: [s/x], pickValue: first_non_null, linkMerge: merge_flattened}
steps:
  s:
    run:
      class: ExpressionTool
      inputs:
        a: {type: string, loadContents: false, inputBinding: {loadContents: false}}
      outputs: {x: string}
      expression: '$({x: inputs.a})'
    in:
      a: {source: [a, b], pickValue: first_non_null, valueFrom: $(self), default: x, label: l}
      b: a
      c: {}
    out: [{id: x}]
    when: $(true)
",
    );
}

#[test]
fn unknown_types_are_refused_and_defined_ones_kept() {
    let tool = |ty: &str| {
        format!(
            "cwlVersion: v1.2\nclass: CommandLineTool\nrequirements:\n  SchemaDefRequirement:\n    types:\n    - {{name: Filter, type: enum, symbols: [g, r]}}\n    - {{name: Pair, type: record, fields: {{a: int, b: Filter}}}}\nbaseCommand: echo\ninputs:\n  x: {ty}\noutputs: []\n"
        )
    };
    for ty in [
        "strng",
        "string[]?\n  y: Fiel",
        "{type: {type: array, items: flaot}}",
        "{type: {type: record, fields: {a: Pairs}}}",
        "[\"null\", Filtr]",
    ] {
        let (e, p) = load_err("t.cwl", &tool(ty));
        assert!(e.contains(&p), "{e}");
        assert!(e.contains("unknown type"), "{ty}: {e}");
    }
    let (e, _) = load_err("t.cwl", &tool("strng"));
    assert!(e.contains("input 'x'"), "{e}");
    assert!(e.contains("did you mean 'string'?"), "{e}");
    for ty in [
        "string",
        "Filter",
        "Pair[]?",
        "\"#Filter\"",
        "{type: {type: array, items: [File, Directory]}}",
        "{type: {type: enum, symbols: [a]}}",
        "Any",
    ] {
        load_ok(&tool(ty));
    }
    // In a workflow's step, and in its outputs.
    let (e, _) = load_err(
        "w.cwl",
        "cwlVersion: v1.2\nclass: Workflow\ninputs: {x: string}\noutputs: {o: {type: Fil, outputSource: s/o}}\nsteps:\n  s:\n    run:\n      class: CommandLineTool\n      baseCommand: echo\n      inputs: {x: string}\n      outputs: {o: stdout}\n    in: {x: x}\n    out: [o]\n",
    );
    assert!(e.contains("output 'o'") && e.contains("'Fil'"), "{e}");
    let (e, _) = load_err(
        "w.cwl",
        "cwlVersion: v1.2\nclass: Workflow\ninputs: {x: string}\noutputs: {}\nsteps:\n  s:\n    run:\n      class: CommandLineTool\n      baseCommand: echo\n      inputs: {x: intt}\n      outputs: {}\n    in: {x: x}\n    out: []\n",
    );
    assert!(e.contains("input 'x'") && e.contains("'intt'"), "{e}");
}

#[test]
fn a_scatter_names_inputs_of_its_step() {
    let wf = |scatter: &str| {
        format!(
            "cwlVersion: v1.2\nclass: Workflow\nrequirements: {{ScatterFeatureRequirement: {{}}}}\ninputs: {{xs: 'string[]', ys: 'string[]'}}\noutputs: {{}}\nsteps:\n  s:\n    run:\n      class: CommandLineTool\n      baseCommand: echo\n      inputs: {{x: string, y: string}}\n      outputs: {{}}\n    scatter: {scatter}\n    scatterMethod: dotproduct\n    in: {{x: xs, y: ys}}\n    out: []\n"
        )
    };
    let (e, p) = load_err("w.cwl", &wf("nope"));
    assert!(
        e.contains(&format!(
            "{p}:13:5: step 's': scatter: 'nope' is not an input of the step (its inputs: x, y)"
        )),
        "{e}"
    );
    let (e, _) = load_err("w.cwl", &wf("[x, why]"));
    assert!(e.contains("'why' is not an input"), "{e}");
    load_ok(&wf("x"));
    load_ok(&wf("[x, y]"));
    load_ok(&wf("[\"#s/x\", s/y]"));
}
