//! Outputs land in `--outdir` whole, however they overlap: a file that is
//! also inside an output directory, the same file under two outputs.

use super::Scratch;

#[test]
fn overlapping_outputs_all_arrive() {
    let s = Scratch::new();
    s.file(
        "tool.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs: []
arguments: [{shellQuote: false, valueFrom: 'mkdir d && echo inside > d/f.txt && echo alone > g.txt'}]
outputs:
  file: {type: File, outputBinding: {glob: d/f.txt}}
  dir: {type: Directory, outputBinding: {glob: d}}
  once: {type: File, outputBinding: {glob: g.txt}}
  twice: {type: File, outputBinding: {glob: g.txt}}
",
    );
    let r = s.run(&["--quiet", "tool.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.json();
    let read =
        |v: &serde_json::Value| std::fs::read_to_string(v["path"].as_str().unwrap()).unwrap();
    assert_eq!(read(&out["file"]), "inside\n");
    assert_eq!(read(&out["dir"]["listing"][0]), "inside\n");
    assert_eq!(read(&out["once"]), "alone\n");
    assert_eq!(out["once"]["path"], out["twice"]["path"]);
    let dir = std::path::Path::new(out["dir"]["path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.join("f.txt")).unwrap(),
        "inside\n"
    );
}
