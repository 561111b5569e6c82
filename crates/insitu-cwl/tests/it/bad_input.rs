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
