//! Every CommandLineTool runs in a bubblewrap sandbox by default: inputs
//! read-only, output and temporary directories writable, the host
//! read-only, own pid namespace, no network unless `NetworkAccess`.

use super::{Scratch, bwrap_works};

const PROBE: &str = "cwlVersion: v1.2
class: CommandLineTool
requirements:
  ShellCommandRequirement: {}
  NetworkAccess: {networkAccess: $(inputs.net)}
  InlineJavascriptRequirement: {}
inputs:
  f: File
  net: boolean
arguments:
  - shellQuote: false
    valueFrom: >-
      cat $(inputs.f.path);
      (echo changed > $(inputs.f.path)) 2>/dev/null || echo INPUT_READ_ONLY;
      touch /usr/insitu-probe 2>/dev/null || echo HOST_READ_ONLY;
      echo x > $HOME/made-here && echo OUT_WRITABLE;
      echo y > $TMPDIR/t && echo TMP_WRITABLE;
      echo procs=`ls /proc | grep -c '^[0-9]'`;
      echo ifaces=`grep -c : /proc/net/dev`;
      echo caps=`grep CapEff /proc/self/status | cut -f2`
outputs:
  log: stdout
  made: {type: File, outputBinding: {glob: made-here}}
stdout: log.txt
";

fn run(s: &Scratch, extra: &[&str], doc: &str, net: bool) -> String {
    s.file("in.txt", "original\n");
    s.file("probe.cwl", PROBE);
    s.file(
        "wf.cwl",
        &super::one_step(
            "probe.cwl",
            &[("f", "File"), ("net", "boolean")],
            &[("log", "File"), ("made", "File")],
        ),
    );
    s.file(
        "job.json",
        &format!(r#"{{"f": {{"class": "File", "path": "in.txt"}}, "net": {net}}}"#),
    );
    let mut args = extra.to_vec();
    args.extend(["--quiet", doc, "job.json"]);
    let r = s.run(&args);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.json();
    assert_eq!(out["made"]["basename"], "made-here");
    std::fs::read_to_string(out["log"]["path"].as_str().unwrap()).unwrap()
}

fn count(log: &str, key: &str) -> u32 {
    log.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {log}"))
}

#[test]
fn tools_run_confined() {
    if !bwrap_works() {
        return;
    }
    // A workflow's job in the run's shared sandbox (bwrap and the spawner
    // besides the tool), in a sandbox of its own, and a lone tool (its own).
    for (mode, procs, doc) in [
        (&[][..], 7, "wf.cwl"),
        (&["--sandbox-per-step"][..], 5, "wf.cwl"),
        (&[][..], 5, "probe.cwl"),
    ] {
        confined(mode, procs, doc);
    }
}

fn confined(mode: &[&str], max_procs: u32, doc: &str) {
    let s = Scratch::new();
    let mut args = vec!["--require-sandbox"];
    args.extend(mode);
    let log = run(&s, &args, doc, false);
    assert!(log.starts_with("original\n"), "{log}");
    for want in [
        "INPUT_READ_ONLY",
        "HOST_READ_ONLY",
        "OUT_WRITABLE",
        "TMP_WRITABLE",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
    // Root's steps keep what root keeps in a container (chown, …) and
    // never CAP_SYS_ADMIN (no mounts); others' keep nothing.
    let root =
        std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let want = if root {
        "00000000200404fb"
    } else {
        "0000000000000000"
    };
    assert!(
        log.contains(&format!("caps={want}\n")),
        "capabilities ({mode:?}): {log}"
    );
    assert!(
        count(&log, "procs=") <= max_procs,
        "own pid namespace ({mode:?}): {log}"
    );
    assert_eq!(count(&log, "ifaces="), 1, "loopback only: {log}");
    assert_eq!(
        std::fs::read_to_string(s.path().join("in.txt")).unwrap(),
        "original\n"
    );
}

#[test]
fn network_access_shares_the_network() {
    if !bwrap_works() {
        return;
    }
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .filter(|l| l.contains(':'))
        .count() as u32;
    let s = Scratch::new();
    let log = run(&s, &["--require-sandbox"], "wf.cwl", true);
    assert_eq!(count(&log, "ifaces="), host_ifaces, "{log}");
}

#[test]
fn no_sandbox_runs_plain_processes() {
    let s = Scratch::new();
    s.file(
        "procs.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs: []
arguments:
  - {shellQuote: false, valueFrom: \"echo procs=`ls /proc | grep -c '^[0-9]'`\"}
outputs: {log: stdout}
",
    );
    let r = s.run(&["--no-sandbox", "--quiet", "procs.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let log = std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap();
    assert!(count(&log, "procs=") > 5, "host processes visible: {log}");
}

/// A tool that says whether it runs beside the run's spawner (pid 2 of the
/// shared sandbox) and prints its input.
const WHERE: &str = "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs:
  f: {type: File, default: {class: File, location: DEFAULT}}
arguments:
  - shellQuote: false
    valueFrom: >-
      (tr '\\0' ' ' < /proc/2/cmdline | grep -q '__spawne[r]' && echo SHARED || echo OWN);
      cat $(inputs.f.path)
outputs: {log: stdout}
";

fn where_it_ran(s: &Scratch, args: &[&str]) -> String {
    let r = s.run(args);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap()
}

#[test]
fn jobs_share_the_runs_sandbox_unless_they_read_elsewhere() {
    if !bwrap_works() {
        return;
    }
    let s = Scratch::new();
    let elsewhere = Scratch::new();
    let outside = elsewhere.file("outside.txt", "from elsewhere\n");
    s.file("in.txt", "from the job order\n");
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    s.file(
        "tool.cwl",
        &WHERE.replace("DEFAULT", &outside.display().to_string()),
    );
    s.file(
        "where.cwl",
        &super::one_step("tool.cwl", &[("f", "File?")], &[("log", "File")]),
    );
    // Inputs of the job order are shown in the run's sandbox.
    let log = where_it_ran(
        &s,
        &["--require-sandbox", "--quiet", "where.cwl", "job.json"],
    );
    assert_eq!(log, "SHARED\nfrom the job order\n");
    // A lone tool is a single job: a sandbox of its own.
    let log = where_it_ran(
        &s,
        &["--require-sandbox", "--quiet", "tool.cwl", "job.json"],
    );
    assert_eq!(log, "OWN\nfrom the job order\n");
    // A file the run did not announce (under another /tmp directory) is not
    // there: the job gets a sandbox of its own, which shows it.
    let log = where_it_ran(&s, &["--require-sandbox", "--quiet", "where.cwl"]);
    assert_eq!(log, "OWN\nfrom elsewhere\n");
    let log = where_it_ran(
        &s,
        &[
            "--require-sandbox",
            "--sandbox-per-step",
            "--quiet",
            "where.cwl",
            "job.json",
        ],
    );
    assert_eq!(log, "OWN\nfrom the job order\n");
}

#[test]
fn a_time_limit_ends_the_tool_in_the_shared_sandbox() {
    if !bwrap_works() {
        return;
    }
    let s = Scratch::new();
    s.file(
        "slow.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {ToolTimeLimit: {timelimit: 1}, ShellCommandRequirement: {}}
inputs: []
arguments: [{shellQuote: false, valueFrom: 'sleep 41.5; echo never'}]
outputs: []
",
    );
    let t = std::time::Instant::now();
    s.file("wf.cwl", &super::one_step("slow.cwl", &[], &[]));
    let r = s.run(&["--require-sandbox", "--quiet", "wf.cwl"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr().contains("exceeded the time limit"),
        "{}",
        r.stderr()
    );
    assert!(t.elapsed() < std::time::Duration::from_secs(20));
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 41.5"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn what_a_job_leaves_running_ends_with_it() {
    if !bwrap_works() {
        return;
    }
    let s = Scratch::new();
    // Step `a` leaves a sleeper behind; step `b`, after it in the same
    // shared sandbox, looks for it.
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
requirements: {ShellCommandRequirement: {}}
inputs: []
outputs: {seen: {type: File, outputSource: b/log}}
steps:
  a:
    run:
      class: CommandLineTool
      inputs: []
      arguments: [{shellQuote: false, valueFrom: '(sleep 43.5 &) ; echo started'}]
      outputs: {log: stdout}
    in: {}
    out: [log]
  b:
    run:
      class: CommandLineTool
      inputs: {after: File}
      arguments:
        - {shellQuote: false, valueFrom: \"pgrep -f 'sleep 4[3].5' > /dev/null && echo LEFT || echo GONE\"}
      outputs: {log: stdout}
    in: {after: a/log}
    out: [log]
",
    );
    let r = s.run(&["--require-sandbox", "--quiet", "wf.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let seen = std::fs::read_to_string(r.json()["seen"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(seen, "GONE\n");
}

#[test]
fn jobs_get_sandboxes_of_their_own_when_the_shared_one_cannot_start() {
    if !bwrap_works() {
        return;
    }
    let s = Scratch::new();
    // A bubblewrap that refuses the run's sandbox (the spawner) only.
    let fake = s.file(
        "bwrap",
        "#!/bin/sh\nfor a; do [ \"$a\" = __spawner ] && { echo 'bwrap: refused' >&2; exit 1; }; done\nexec bwrap \"$@\"\n",
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    s.file("in.txt", "from the job order\n");
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
    s.file("tool.cwl", &WHERE.replace("DEFAULT", "in.txt"));
    s.file(
        "where.cwl",
        &super::one_step("tool.cwl", &[("f", "File?")], &[("log", "File")]),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
        .current_dir(s.path())
        .env("INSITU_BWRAP", &fake)
        .args([
            "--outdir",
            "out",
            "--require-sandbox",
            "where.cwl",
            "job.json",
        ])
        .output()
        .unwrap();
    let r = super::Run(out);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("one sandbox per job instead"),
        "{}",
        r.stderr()
    );
    let log = std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(log, "OWN\nfrom the job order\n");
}

#[test]
fn a_finished_jobs_results_are_read_only_to_later_jobs() {
    if !bwrap_works() {
        return;
    }
    let root =
        std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    let s = Scratch::new();
    // Step `b` gets `a`'s result and tries to change it, and to write
    // next to it.
    s.file(
        "wf.cwl",
        "cwlVersion: v1.2
class: Workflow
requirements: {ShellCommandRequirement: {}, InlineJavascriptRequirement: {}}
inputs: []
outputs: {seen: {type: File, outputSource: b/log}, made: {type: File, outputSource: a/log}}
steps:
  a:
    run:
      class: CommandLineTool
      inputs: []
      arguments: [{shellQuote: false, valueFrom: 'echo original'}]
      outputs: {log: stdout}
    in: {}
    out: [log]
  b:
    run:
      class: CommandLineTool
      inputs: {f: File}
      arguments:
        - shellQuote: false
          valueFrom: >-
            (echo changed > $(inputs.f.path)) 2>/dev/null && echo CHANGED || echo KEPT;
            (echo x > `readlink -f $(inputs.f.path)`) 2>/dev/null && echo CHANGED_TARGET || echo KEPT_TARGET;
            (touch `dirname \\`readlink -f $(inputs.f.path)\\``/new) 2>/dev/null && echo ADDED || echo NOT_ADDED
      outputs: {log: stdout}
    in: {f: a/log}
    out: [log]
",
    );
    for mode in [&[][..], &["--sandbox-per-step"][..]] {
        let mut args = vec!["--require-sandbox", "--quiet", "wf.cwl"];
        args.extend(mode);
        let r = s.run(&args);
        assert_eq!(r.code(), 0, "{}", r.stderr());
        let out = r.json();
        let seen = std::fs::read_to_string(out["seen"]["path"].as_str().unwrap()).unwrap();
        let made = std::fs::read_to_string(out["made"]["path"].as_str().unwrap()).unwrap();
        assert_eq!(made, "original\n", "{mode:?}");
        if mode.is_empty() {
            // The shared sandbox shows `a`'s real directory: read-only
            // once `a` has finished (where the engine runs as root and
            // can make it so).
            if root.as_ref().is_ok_and(|r| *r) {
                assert_eq!(seen, "KEPT\nKEPT_TARGET\nNOT_ADDED\n");
            }
        } else {
            // A sandbox of its own binds the input alone; beside it is the
            // sandbox's own scratch space, gone with it.
            assert!(seen.starts_with("KEPT\nKEPT_TARGET\n"), "{seen}");
        }
    }
}

/// A tool that leaves a mark at `path` when it runs.
fn marking_tool(path: &std::path::Path) -> String {
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
baseCommand: [touch, '{}']
inputs: []
outputs: []
",
        path.display()
    )
}

#[test]
fn without_a_sandbox_tools_run_only_when_asked_to() {
    let s = Scratch::new();
    let mark = s.path().join("ran");
    s.file("mark.cwl", &marking_tool(&mark));
    s.file("wf.cwl", &super::one_step("mark.cwl", &[], &[]));
    let no_bwrap = [("INSITU_BWRAP", "/nonexistent/bwrap")];
    // By default, quiet or not, a lone tool or a workflow: a clear error,
    // its own exit code, and nothing runs.
    for args in [
        &["mark.cwl"][..],
        &["--quiet", "mark.cwl"][..],
        &["--quiet", "wf.cwl"][..],
    ] {
        let r = s.run_with_env(args, &no_bwrap);
        let err = r.stderr();
        assert_eq!(r.code(), 69, "{args:?}: {err}");
        assert!(
            err.contains("no sandbox") && err.contains("/nonexistent/bwrap"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--no-sandbox"), "{args:?}: {err}");
        assert!(!mark.exists(), "{args:?}: the tool ran");
    }
    // Asked for explicitly, it runs as a plain process.
    let r = s.run_with_env(&["--quiet", "--no-sandbox", "mark.cwl"], &no_bwrap);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(mark.exists());
}
