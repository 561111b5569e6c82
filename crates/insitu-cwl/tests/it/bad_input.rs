//! Bad input gets a clear message and the documented exit code
//! (1 failure, 2 usage, 33 unsupported), never a panic or a hang.

use super::{ECHO, Scratch};
use std::time::{Duration, Instant};

/// Runs and checks the exit code and that stderr names the problem.
fn fails(s: &Scratch, args: &[&str], code: i32, needles: &[&str]) {
    let r = s.run(args);
    let err = r.stderr();
    assert_eq!(r.code(), code, "exit code for {args:?}; stderr: {err}");
    for n in needles {
        assert!(
            err.contains(n),
            "stderr of {args:?} should mention '{n}': {err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_yaml() {
    let s = Scratch::new();
    s.file(
        "bad.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: [a\n",
    );
    fails(&s, &["bad.cwl"], 1, &["bad.cwl", "validation error"]);
    fails(
        &s,
        &["validate", "bad.cwl"],
        1,
        &["bad.cwl:3:9: malformed YAML: "],
    );
    s.file(
        "bad.json",
        "{\"cwlVersion\": \"v1.2\",\n \"class\": \"CommandLineTool\",\n \"inputs\": [, \"outputs\": []}\n",
    );
    fails(&s, &["validate", "bad.json"], 1, &["bad.json:3:"]);
}

#[test]
fn unknown_field() {
    let s = Scratch::new();
    // ECHO is 10 lines: the typo is on line 11.
    s.file("t.cwl", &format!("{ECHO}baseComand: echo\n"));
    fails(
        &s,
        &["validate", "t.cwl"],
        1,
        &[
            "t.cwl:11:1: unknown field 'baseComand' in CommandLineTool",
            "did you mean 'baseCommand'?",
            "expected one of: ",
        ],
    );
    s.file(
        "t5.cwl",
        "cwlVersion: v1.2\nclass: CommandLineTool\ninputs: []\noutputs: []\nbogus: 1\n",
    );
    fails(&s, &["t5.cwl"], 1, &["t5.cwl:5:1: unknown field 'bogus'"]);
    s.file(
        "t.json",
        "{\"cwlVersion\": \"v1.2\",\n \"class\": \"CommandLineTool\",\n \"inputs\": [],\n \"outputs\": [],\n   \"bogus\": 1}\n",
    );
    fails(
        &s,
        &["validate", "t.json"],
        1,
        &["t.json:5:4: unknown field 'bogus'"],
    );
    s.file("echo.cwl", ECHO);
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: echo.cwl
    in: {msg: m}
    out: [out]
  b:
    run: echo.cwl
    in: {msg: m}
    out: [out]
    scater: msg
",
    );
    fails(
        &s,
        &["validate", "wf.cwl"],
        1,
        &[
            "wf.cwl:14:5: unknown field 'scater' in step 'b'",
            "did you mean 'scatter'?",
        ],
    );
    s.file(
        "wf2.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  - id: a
    run: nowhere.cwl
    in: {msg: m}
    out: [out]
",
    );
    fails(
        &s,
        &["validate", "wf2.cwl"],
        1,
        &["wf2.cwl:7:5: step 'a': run: ", "nowhere.cwl"],
    );
}

/// Unknown fields inside parameters, bindings, requirements and step
/// inputs: the line and column of the field and the fields expected there.
#[test]
fn unknown_nested_field() {
    let s = Scratch::new();
    s.file(
        "binding.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg:
    type: string
    inputBinding:
      positon: 1
outputs: []
",
    );
    fails(
        &s,
        &["validate", "binding.cwl"],
        1,
        &[
            "binding.cwl:8:7: unknown field 'positon' in inputBinding of input 'msg'",
            "did you mean 'position'?",
            "expected one of: loadContents, position, prefix, separate, itemSeparator, valueFrom, shellQuote)",
        ],
    );
    s.file(
        "output.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs: []
outputs:
  - id: out
    type: File
    outputBindng: {glob: out.txt}
",
    );
    fails(
        &s,
        &["validate", "output.cwl"],
        1,
        &[
            "output.cwl:8:5: unknown field 'outputBindng' in output 'out'",
            "did you mean 'outputBinding'?",
            "expected one of: id, label, doc, type, format, secondaryFiles, streamable, outputBinding)",
        ],
    );
    s.file(
        "req.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
requirements:
  ResourceRequirement:
    coresMin: 1
    ramMn: 100
inputs: []
outputs: []
",
    );
    fails(
        &s,
        &["req.cwl"],
        1,
        &[
            "req.cwl:7:5: unknown field 'ramMn' in ResourceRequirement",
            "did you mean 'ramMin'?",
            "expected one of: class, coresMin, coresMax, ramMin, ramMax, tmpdirMin, tmpdirMax, outdirMin, outdirMax)",
        ],
    );
    s.file("echo.cwl", ECHO);
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: echo.cwl
    in:
      msg:
        source: m
        defualt: hi
    out: [out]
",
    );
    fails(
        &s,
        &["validate", "wf.cwl"],
        1,
        &[
            "wf.cwl:11:9: unknown field 'defualt' in input 'msg' of step 'a'",
            "did you mean 'default'?",
            "expected one of: id, source, linkMerge, pickValue, loadContents, loadListing, label, default, valueFrom)",
        ],
    );
    // Hints and namespaced fields are left alone.
    s.file(
        "ok.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
$namespaces: {arv: 'http://arvados.org/cwl#'}
baseCommand: echo
hints:
  ResourceRequirement: {ramMn: 1}
  arv:RuntimeConstraints: {keep_cache: 1}
inputs:
  msg:
    type: string
    inputBinding: {position: 1, 'arv:x': 1}
outputs: []
",
    );
    let r = s.run(&["validate", "ok.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
}

#[test]
fn cycle() {
    let s = Scratch::new();
    s.file("echo.cwl", ECHO);
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
inputs: {m: string}
outputs: {}
steps:
  a:
    run: echo.cwl
    in: {msg: b/out}
    out: [out]
  b:
    run: echo.cwl
    in: {msg: a/out}
    out: [out]
",
    );
    fails(&s, &["wf.cwl"], 1, &["cycle", "a, b"]);
}

#[test]
fn missing_input() {
    let s = Scratch::new();
    s.file("echo.cwl", ECHO);
    s.file("job.json", "{}");
    fails(&s, &["echo.cwl", "job.json"], 1, &["input error", "msg"]);
}

#[test]
fn javascript_error() {
    let s = Scratch::new();
    s.file(
        "js.cwl",
        "cwlVersion: v1.2
class: ExpressionTool
requirements: {InlineJavascriptRequirement: {}}
inputs: {}
outputs: {x: int}
expression: '$({x: noSuchThing.y})'
",
    );
    fails(&s, &["js.cwl"], 1, &["expression error", "noSuchThing"]);
}

#[test]
fn infinite_loop_in_an_expression() {
    let s = Scratch::new();
    s.file(
        "loop.cwl",
        "cwlVersion: v1.2
class: ExpressionTool
requirements: {InlineJavascriptRequirement: {}}
inputs: {}
outputs: {x: int}
expression: '${ while (true) {} }'
",
    );
    let t = Instant::now();
    fails(&s, &["--js-timeout=0.5", "loop.cwl"], 1, &["time limit"]);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn missing_file() {
    let s = Scratch::new();
    fails(&s, &["nowhere.cwl"], 1, &["nowhere.cwl", "cannot open"]);
    s.file(
        "cat.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs:
  f: {type: File, inputBinding: {}}
outputs: {}
",
    );
    s.file(
        "job.json",
        r#"{"f": {"class": "File", "path": "absent.txt"}}"#,
    );
    fails(&s, &["cat.cwl", "job.json"], 1, &["absent.txt"]);
    fails(&s, &["cat.cwl", "nojob.json"], 1, &["nojob.json"]);
}

#[test]
fn usage_and_unsupported() {
    let s = Scratch::new();
    fails(&s, &[], 2, &["usage"]);
    s.file(
        "op.cwl",
        "cwlVersion: v1.2\nclass: Operation\ninputs: {}\noutputs: {}\n",
    );
    fails(&s, &["op.cwl"], 33, &["unsupported"]);
}
