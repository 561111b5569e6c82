//! `--cachedir DIR`: a CommandLineTool job run before with the same tool,
//! requirements and input contents is reused instead of run again.

use super::Scratch;
use serde_json::Value;

/// Output differs on every run: a random UUID, then the input.
const RANDOM: &str = "cwlVersion: v1.2
class: CommandLineTool
id: random
baseCommand: [sh, -c, 'cat /proc/sys/kernel/random/uuid; cat \"$0\"']
inputs:
  f: {type: File, inputBinding: {position: 1}}
outputs:
  out: stdout
stdout: out.txt
";

const SCATTER: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs:
  fs: File[]
outputs:
  outs: {type: 'File[]', outputSource: rand/out}
steps:
  rand:
    run: random.cwl
    scatter: f
    in: {f: fs}
    out: [out]
";

fn text_of(out: &Value) -> String {
    std::fs::read_to_string(out["path"].as_str().unwrap()).unwrap()
}

fn reuses(r: &super::Run) -> usize {
    r.stderr().matches("from the cache").count()
}

/// Cache entries (names of the directory, temporary ones included).
fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn job(s: &Scratch, input: &str) -> String {
    s.file(
        "job.json",
        &format!("{{\"f\": {{\"class\": \"File\", \"path\": \"{input}\"}}}}"),
    );
    "job.json".into()
}

#[test]
fn a_nondeterministic_tool_is_reused() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("in.txt", "hello\n");
    let j = job(&s, "in.txt");
    let first = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    assert_eq!(reuses(&first), 0, "{}", first.stderr());
    let second = s.run(&["--cachedir=cache", "random.cwl", &j]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert!(
        second.stderr().contains("reused random from the cache"),
        "{}",
        second.stderr()
    );
    assert!(!second.stderr().contains("running"), "{}", second.stderr());
    let (a, b) = (first.json(), second.json());
    assert_eq!(text_of(&a["out"]), text_of(&b["out"]));
    assert_eq!(a["out"]["checksum"], b["out"]["checksum"]);
    // The same outdir: the relocation adds a suffix.
    assert!(
        b["out"]["basename"]
            .as_str()
            .unwrap()
            .starts_with("out.txt")
    );
    assert!(text_of(&b["out"]).ends_with("hello\n"));
    // The same content at another path is the same job.
    s.file("elsewhere/in.txt", "hello\n");
    let j = job(&s, "elsewhere/in.txt");
    let moved = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(reuses(&moved), 1, "{}", moved.stderr());
    assert_eq!(text_of(&moved.json()["out"]), text_of(&a["out"]));
    // --quiet silences the log line, not the reuse.
    let quiet = s.run(&["--quiet", "--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(quiet.code(), 0);
    assert_eq!(quiet.stderr(), "");
    assert_eq!(text_of(&quiet.json()["out"]), text_of(&a["out"]));
    assert_eq!(entries(&s.path().join("cache")).len(), 1);
}

#[test]
fn changed_input_content_runs_again() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("in.txt", "one\n");
    let j = job(&s, "in.txt");
    let first = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    s.file("in.txt", "two\n");
    let second = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert_eq!(reuses(&second), 0, "{}", second.stderr());
    assert!(text_of(&second.json()["out"]).ends_with("two\n"));
    assert_ne!(
        first.json()["out"]["checksum"],
        second.json()["out"]["checksum"]
    );
    // The first content is still there.
    s.file("in.txt", "one\n");
    let third = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(reuses(&third), 1, "{}", third.stderr());
    assert_eq!(text_of(&third.json()["out"]), text_of(&first.json()["out"]));
}

#[test]
fn work_reuse_false_runs_again() {
    for (what, extra) in [
        (
            "requirement",
            "requirements: {WorkReuse: {enableReuse: false}}\n",
        ),
        (
            "hint expression",
            "requirements: {InlineJavascriptRequirement: {}}\nhints: {WorkReuse: {enableReuse: '$(1 > 2)'}}\n",
        ),
    ] {
        let s = Scratch::new();
        s.file("random.cwl", &format!("{RANDOM}{extra}"));
        s.file("in.txt", "hello\n");
        let j = job(&s, "in.txt");
        let first = s.run(&["--cachedir", "cache", "random.cwl", &j]);
        assert_eq!(first.code(), 0, "{what}: {}", first.stderr());
        let second = s.run(&["--cachedir", "cache", "random.cwl", &j]);
        assert_eq!(second.code(), 0, "{what}: {}", second.stderr());
        assert_eq!(reuses(&second), 0, "{what}: {}", second.stderr());
        assert_ne!(
            text_of(&first.json()["out"]),
            text_of(&second.json()["out"]),
            "{what}"
        );
        assert!(entries(&s.path().join("cache")).is_empty(), "{what}");
    }
}

#[test]
fn a_scatter_reuses_every_job() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("wf.cwl", SCATTER);
    for (i, w) in ["a", "b", "c"].iter().enumerate() {
        s.file(&format!("in{i}.txt"), &format!("{w}\n"));
    }
    s.file(
        "wf-job.json",
        r#"{"fs": [{"class": "File", "path": "in0.txt"}, {"class": "File", "path": "in1.txt"},
                  {"class": "File", "path": "in2.txt"}]}"#,
    );
    let first = s.run(&["--cachedir", "cache", "wf.cwl", "wf-job.json"]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    assert_eq!(reuses(&first), 0);
    let second = s.run(&["--cachedir", "cache", "wf.cwl", "wf-job.json"]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert_eq!(reuses(&second), 3, "{}", second.stderr());
    for i in 0..3 {
        assert!(
            second
                .stderr()
                .contains(&format!("reused rand[{i}] from the cache")),
            "{}",
            second.stderr()
        );
    }
    let texts = |r: &super::Run| -> Vec<String> {
        r.json()["outs"]
            .as_array()
            .unwrap()
            .iter()
            .map(text_of)
            .collect()
    };
    let (a, b) = (texts(&first), texts(&second));
    assert_eq!(a, b);
    for (t, w) in a.iter().zip(["a\n", "b\n", "c\n"]) {
        assert!(t.ends_with(w), "{t}");
    }
    assert_eq!(entries(&s.path().join("cache")).len(), 3);
}

#[test]
fn without_a_cachedir_nothing_is_reused() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("in.txt", "hello\n");
    let j = job(&s, "in.txt");
    let before = entries(s.path());
    let first = s.run(&["random.cwl", &j]);
    let second = s.run(&["random.cwl", &j]);
    assert_eq!((first.code(), second.code()), (0, 0));
    assert_eq!(reuses(&second), 0);
    assert_ne!(
        text_of(&first.json()["out"]),
        text_of(&second.json()["out"])
    );
    let mut after = entries(s.path());
    after.retain(|e| !before.contains(e));
    assert_eq!(after, ["out"]);
}

/// Outputs that are the inputs (a staged link, and the input value itself)
/// come back from the cache as copies.
#[test]
fn outputs_linking_to_inputs_are_stored_as_copies() {
    let s = Scratch::new();
    s.file(
        "pass.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  InitialWorkDirRequirement: {listing: [$(inputs.f)]}
baseCommand: [sh, -c, 'cat /proc/sys/kernel/random/uuid > id.txt']
inputs:
  f: File
outputs:
  staged: {type: File, outputBinding: {glob: in.txt}}
  same: {type: File, outputBinding: {outputEval: $(inputs.f)}}
  id: {type: File, outputBinding: {glob: id.txt}}
",
    );
    s.file("in.txt", "payload\n");
    let j = job(&s, "in.txt");
    let first = s.run(&["--cachedir", "cache", "pass.cwl", &j]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    let second = s.run(&["--cachedir", "cache", "pass.cwl", &j]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert_eq!(reuses(&second), 1, "{}", second.stderr());
    let out = second.json();
    assert_eq!(text_of(&out["staged"]), "payload\n");
    assert_eq!(text_of(&out["same"]), "payload\n");
    assert_eq!(text_of(&out["id"]), text_of(&first.json()["id"]));
    let mut stack = vec![s.path().join("cache")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            assert!(!ft.is_symlink(), "{} is a link", e.path().display());
            if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn a_damaged_entry_is_ignored_and_replaced() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("in.txt", "hello\n");
    let j = job(&s, "in.txt");
    let first = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    let cache = s.path().join("cache");
    let [key] = entries(&cache).try_into().unwrap();
    std::fs::remove_file(cache.join(&key).join("out/out.txt")).unwrap();
    let second = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(second.code(), 0, "{}", second.stderr());
    assert_eq!(reuses(&second), 0, "{}", second.stderr());
    assert!(second.stderr().contains("ignoring"), "{}", second.stderr());
    assert_ne!(
        text_of(&first.json()["out"]),
        text_of(&second.json()["out"])
    );
    // Stored anew, and reused from then on.
    std::fs::write(cache.join(&key).join("output.json"), "{").unwrap();
    let third = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(third.code(), 0, "{}", third.stderr());
    assert_eq!(reuses(&third), 0, "{}", third.stderr());
    let fourth = s.run(&["--cachedir", "cache", "random.cwl", &j]);
    assert_eq!(reuses(&fourth), 1, "{}", fourth.stderr());
    assert_eq!(
        text_of(&third.json()["out"]),
        text_of(&fourth.json()["out"])
    );
    assert_eq!(entries(&cache), [key]);
}

#[test]
fn a_failed_job_is_not_stored() {
    let s = Scratch::new();
    s.file(
        "fail.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [sh, -c, 'echo partial > out.txt; exit 3']
inputs: []
outputs:
  out: {type: File, outputBinding: {glob: out.txt}}
",
    );
    let r = s.run(&["--cachedir", "cache", "fail.cwl"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(entries(&s.path().join("cache")).is_empty());
}

#[test]
fn an_unusable_cachedir_is_a_clear_error() {
    let s = Scratch::new();
    s.file("random.cwl", RANDOM);
    s.file("in.txt", "hello\n");
    s.file("plain", "not a directory\n");
    let j = job(&s, "in.txt");
    let r = s.run(&["--cachedir", "plain/cache", "random.cwl", &j]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("--cachedir"), "{}", r.stderr());
    assert!(!r.stderr().contains("panicked"), "{}", r.stderr());
    assert!(!r.stderr().contains("running"), "{}", r.stderr());
}
