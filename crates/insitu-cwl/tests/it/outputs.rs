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

/// A directory under the crate's target directory (not under `/tmp`,
/// which sandboxes replace) holding a secret, as a place on the host that
/// no job of the run was given.
fn hidden() -> (tempfile::TempDir, String) {
    let d = tempfile::Builder::new()
        .prefix("hidden-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let secret = format!("SECRET-{}", d.path().display());
    std::fs::create_dir_all(d.path().join("dir")).unwrap();
    std::fs::write(d.path().join("dir/secret.txt"), &secret).unwrap();
    (d, secret)
}

/// A tool running `script` with one output of type `out_type` globbing
/// `glob`.
fn shell_tool(script: &str, out_type: &str, glob: &str) -> String {
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {{ShellCommandRequirement: {{}}}}
inputs: []
arguments: [{{shellQuote: false, valueFrom: '{script}'}}]
outputs:
  out: {{type: {out_type}, outputBinding: {{glob: '{glob}'}}}}
"
    )
}

/// Whether any file under `dir` (links followed no further than `dir`)
/// holds `needle`.
fn holds(dir: &std::path::Path, needle: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => holds(&p, needle),
            Ok(t) if t.is_file() => std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle)),
            _ => false,
        }
    })
}

#[test]
fn links_never_bring_host_files_into_the_outputs() {
    let (h, secret) = hidden();
    let dir = h.path().join("dir");
    let dir = dir.display();
    for (name, script, out_type, glob) in [
        (
            "a directory output that is a link",
            format!("ln -s {dir} d"),
            "Directory",
            "d",
        ),
        (
            "a link inside a directory output",
            format!("mkdir d && echo mine > d/own.txt && ln -s {dir} d/away"),
            "Directory",
            "d",
        ),
        (
            "a link to a file inside a directory output",
            format!("mkdir d && ln -s {dir}/secret.txt d/s.txt"),
            "Directory",
            "d",
        ),
        (
            "a file output that is a link",
            format!("ln -s {dir}/secret.txt f"),
            "File",
            "f",
        ),
        (
            "a glob through a link",
            format!("ln -s {dir} d"),
            "'File[]'",
            "d/*",
        ),
        (
            "cwl.output.json naming a host file",
            format!(
                r#"echo {{\"out\": {{\"class\": \"File\", \"location\": \"file://{dir}/secret.txt\"}}}} > cwl.output.json"#
            ),
            "File",
            "unused",
        ),
    ] {
        let s = Scratch::new();
        s.file("tool.cwl", &shell_tool(&script, out_type, glob));
        s.file(
            "wf.cwl",
            &super::one_step("tool.cwl", &[], &[("out", out_type.trim_matches('\''))]),
        );
        for doc in ["tool.cwl", "wf.cwl"] {
            let r = s.run(&["--quiet", doc]);
            let err = r.stderr();
            assert_eq!(r.code(), 1, "{name} ({doc}): {err}\n{}", r.stdout());
            assert!(
                err.contains("outside the job's directories"),
                "{name} ({doc}): {err}"
            );
            assert!(!r.stdout().contains(&secret), "{name} ({doc})");
            assert!(
                !holds(&s.path().join("out"), &secret),
                "{name} ({doc}): the secret was copied"
            );
        }
    }
}

#[test]
fn a_link_loop_in_an_output_ends_with_a_clear_error() {
    // Two links to the directory itself and one to its parent: following
    // them visits 3^n paths at depth n, so a copy or listing that follows
    // links never ends.
    let s = Scratch::new();
    s.file(
        "tool.cwl",
        &shell_tool(
            "mkdir d && echo x > d/f && ln -s . d/a && ln -s . d/b && ln -s .. d/up",
            "Directory",
            "d",
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
        .current_dir(s.path())
        .args(["--outdir", "out", "--quiet", "tool.cwl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the run did not end within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("link loop"), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("overflow"),
        "{err}"
    );
}

#[test]
fn links_inside_the_job_are_kept_resolved() {
    let s = Scratch::new();
    s.file("in.txt", "input\n");
    s.file(
        "tool.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs: {f: File}
arguments: [{shellQuote: false, valueFrom: 'mkdir d && echo mine > d/own.txt && ln -s own.txt d/same.txt && ln -s $(inputs.f.path) d/input.txt'}]
outputs:
  out: {type: Directory, outputBinding: {glob: d}}
",
    );
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    let r = s.run(&["--quiet", "tool.cwl", "job.json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let d = std::path::Path::new(r.json()["out"]["path"].as_str().unwrap()).to_path_buf();
    assert_eq!(
        std::fs::read_to_string(d.join("same.txt")).unwrap(),
        "mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("input.txt")).unwrap(),
        "input\n"
    );
}

#[test]
fn standard_streams_stay_within_the_job() {
    let s = Scratch::new();
    // A host file no job was given, in a directory the sandbox replaces.
    let secret = s.file("secret.txt", "SECRET-STDIN\n");
    s.file(
        "stdin.cwl",
        &format!(
            "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: []
stdin: {}
outputs: {{out: stdout}}
",
            secret.display()
        ),
    );
    let r = s.run(&["--quiet", "stdin.cwl"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("stdin"), "{}", r.stderr());
    assert!(
        r.stderr().contains("outside the job's directories"),
        "{}",
        r.stderr()
    );
    assert!(!holds(&s.path().join("out"), "SECRET-STDIN"));
    // Standard output and error go to files of the output directory only.
    let escaped = s.path().join("escaped.txt");
    for (stream, name) in [
        ("stdout", escaped.display().to_string()),
        ("stdout", "../escaped.txt".to_string()),
        ("stderr", escaped.display().to_string()),
    ] {
        s.file(
            "stream.cwl",
            &format!(
                "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [echo, hello]
inputs: []
{stream}: '{name}'
outputs: {{out: {stream}}}
"
            ),
        );
        let r = s.run(&["--quiet", "stream.cwl"]);
        assert_eq!(r.code(), 1, "{stream}: {name}: {}", r.stderr());
        assert!(
            r.stderr().contains("inside the output directory"),
            "{stream}: {name}: {}",
            r.stderr()
        );
        assert!(!escaped.exists(), "{stream}: {name}");
    }
}

#[test]
fn basenames_never_lead_outside_the_job() {
    let s = Scratch::new();
    let escaped = s.path().join("escaped.txt");
    let names = [escaped.display().to_string(), "../escaped.txt".to_string()];
    // A tool's output object names where its files go in --outdir.
    for name in &names {
        s.file(
            "tool.cwl",
            &format!(
                "cwlVersion: v1.2
class: CommandLineTool
requirements: {{ShellCommandRequirement: {{}}}}
inputs: []
arguments: [{{shellQuote: false, valueFrom: 'echo x > f && echo {{\\\"out\\\": {{\\\"class\\\": \\\"File\\\", \\\"location\\\": \\\"f\\\", \\\"basename\\\": \\\"{name}\\\"}}}} > cwl.output.json'}}]
outputs:
  out: File
"
            ),
        );
        let r = s.run(&["--quiet", "tool.cwl"]);
        assert_eq!(r.code(), 1, "{name}: {}\n{}", r.stderr(), r.stdout());
        assert!(
            r.stderr().contains("not a plain file name"),
            "{}",
            r.stderr()
        );
        assert!(!escaped.exists(), "{name}");
    }
    // A job order names where a literal input is written for the tool.
    s.file(
        "cat.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: cat
inputs: {f: {type: File, inputBinding: {}}}
outputs: {out: stdout}
",
    );
    for name in &names {
        s.file(
            "job.json",
            &serde_json::json!({"f": {"class": "File", "basename": name, "contents": "x"}})
                .to_string(),
        );
        let r = s.run(&["--quiet", "cat.cwl", "job.json"]);
        assert_eq!(r.code(), 1, "{name}: {}", r.stderr());
        assert!(
            r.stderr().contains("not a plain file name"),
            "{}",
            r.stderr()
        );
        assert!(!escaped.exists(), "{name}");
    }
}
