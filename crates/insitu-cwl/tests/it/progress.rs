//! The progress line (jobs done/running/total) appears only when stderr is
//! a terminal and `--quiet` is not given.

use super::{ECHO, Scratch};

const WF: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs: {msgs: 'string[]'}
outputs: {outs: {type: 'File[]', outputSource: echo/out}}
steps:
  echo: {run: echo.cwl, scatter: msg, in: {msg: msgs}, out: [out]}
";

fn scratch() -> Scratch {
    let s = Scratch::new();
    s.file("echo.cwl", ECHO);
    s.file("wf.cwl", WF);
    s.file("job.json", r#"{"msgs": ["a", "b", "c", "d"]}"#);
    s
}

#[test]
fn silent_when_not_a_terminal() {
    let s = scratch();
    let r = s.run(&["wf.cwl", "job.json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(!r.stderr().contains("jobs done"), "{}", r.stderr());
}

/// Runs under `script` (util-linux), which gives the command a terminal.
fn on_a_terminal(s: &Scratch, extra: &str) -> Option<String> {
    let cmd = format!(
        "{} --outdir out {extra} wf.cwl job.json >/dev/null",
        env!("CARGO_BIN_EXE_insitu-cwl")
    );
    let out = std::process::Command::new("script")
        .current_dir(s.path())
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn shown_on_a_terminal_unless_quiet() {
    let s = scratch();
    let Some(tty) = on_a_terminal(&s, "") else {
        eprintln!("skipping: no `script` to make a terminal");
        return;
    };
    assert!(tty.contains("4/4 jobs done"), "{tty:?}");
    let quiet = on_a_terminal(&s, "--quiet").unwrap_or_default();
    assert!(!quiet.contains("jobs done"), "{quiet:?}");
}
