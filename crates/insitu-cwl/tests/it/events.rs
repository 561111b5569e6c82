//! What a program following a run reads: `--events FILE` (steps and jobs
//! started and finished, with scatter positions, exit codes and logs),
//! `--step-logs DIR` (each job's uncaptured output), `--workdir DIR` (job
//! directories kept), `--hide DIR` (what no job sees) and `describe`.

use super::{Scratch, bwrap_works};
use serde_json::Value;

/// A scatter of `echo`-like jobs over `n`; the job given 3 fails with exit
/// code 3 after writing to standard error.
const WORKFLOW: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs:
  n: int[]
outputs:
  out: {type: 'File[]', outputSource: count/out}
steps:
  count:
    run: count.cwl
    scatter: n
    in: {n: n}
    out: [out]
";

const COUNT: &str = "cwlVersion: v1.2
class: CommandLineTool
requirements: {ShellCommandRequirement: {}}
inputs:
  n: int
arguments:
  - valueFrom: 'echo job says $(inputs.n) >&2; test $(inputs.n) -ne 3 || exit 3; echo done > out.txt'
    shellQuote: false
outputs:
  out: {type: File, outputBinding: {glob: out.txt}}
";

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_kind<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn steps_and_jobs_are_reported_with_positions_exit_codes_and_logs() {
    if !bwrap_works() {
        return;
    }
    let s = Scratch::new();
    s.file("wf.cwl", WORKFLOW);
    s.file("count.cwl", COUNT);
    s.file("job.yml", "n: [1, 2, 3]\n");
    let r = s.run(&[
        "--events",
        "events.jsonl",
        "--step-logs",
        "logs",
        "--workdir",
        "work",
        "wf.cwl",
        "job.yml",
    ]);
    assert_eq!(r.code(), 1, "the third job fails: {}", r.stderr());
    let all = events(&s.path().join("events.jsonl"));
    assert_eq!(all.first().unwrap()["event"], "run_started");
    let last = all.last().unwrap();
    assert_eq!(last["event"], "run_finished", "{all:#?}");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 1);
    assert!(last["error"].as_str().unwrap().contains("code 3"), "{last}");

    let step = of_kind(&all, "step_started");
    assert_eq!(step.len(), 1);
    assert_eq!(step[0]["step"], "count");
    assert_eq!(step[0]["jobs"], 3);
    assert_eq!(step[0]["scatter"], true);
    let started = of_kind(&all, "job_started");
    let finished = of_kind(&all, "job_finished");
    assert_eq!((started.len(), finished.len()), (3, 3), "{all:#?}");
    for f in &finished {
        let index = f["index"].as_u64().unwrap();
        let start = started.iter().find(|s| s["job"] == f["job"]).unwrap();
        assert_eq!(start["index"], index);
        assert!(f["at_ms"].as_u64() >= start["at_ms"].as_u64());
        let log = std::fs::read_to_string(f["log"].as_str().unwrap()).unwrap();
        assert!(
            log.starts_with("$ ") && log.contains("test 1")
                || log.contains("test 2")
                || log.contains("test 3"),
            "{log}"
        );
        assert!(log.contains(&format!("job says {}", index + 1)), "{log}");
        if index == 2 {
            assert_eq!(f["status"], "failed");
            assert_eq!(f["exit_code"], 3);
            assert!(f["error"].as_str().unwrap().contains("code 3"));
        } else {
            assert_eq!(f["status"], "success", "{f}");
            assert_eq!(f["exit_code"], 0);
        }
    }
    let end = of_kind(&all, "step_finished");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["status"], "failed");
    // The job directories stay where --workdir put them, in a directory
    // of the run's own.
    let kept: Vec<String> = std::fs::read_dir(s.path().join("work/run-0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter().filter(|n| !n.contains('.')).count() >= 3,
        "{kept:?}"
    );

    // The same run from the cache: the two finished jobs are reused, the
    // failed one runs again.
    s.file("job.yml", "n: [1, 2]\n");
    let first = s.run(&["--cachedir", "cache", "wf.cwl", "job.yml"]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    let again = s.run(&[
        "--cachedir",
        "cache",
        "--events",
        "again.jsonl",
        "wf.cwl",
        "job.yml",
    ]);
    assert_eq!(again.code(), 0, "{}", again.stderr());
    let all = events(&s.path().join("again.jsonl"));
    let finished = of_kind(&all, "job_finished");
    assert_eq!(finished.len(), 2);
    assert!(finished.iter().all(|f| f["status"] == "reused"), "{all:#?}");
    assert!(of_kind(&all, "job_started").is_empty());
    assert_eq!(all.last().unwrap()["status"], "success");
}

#[test]
fn a_run_that_cannot_start_still_says_how_it_ended() {
    let s = Scratch::new();
    s.file("tool.cwl", super::ECHO);
    let r = s.run(&["--events", "ev.jsonl", "tool.cwl", "missing-job.yml"]);
    assert_eq!(r.code(), 1);
    let all = events(&s.path().join("ev.jsonl"));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[1]["event"], "run_finished");
    assert_eq!(all[1]["status"], "failed");
    assert!(
        all[1]["error"]
            .as_str()
            .unwrap()
            .contains("missing-job.yml"),
        "{all:#?}"
    );
}

#[test]
fn a_hidden_directory_shows_only_what_the_job_is_given() {
    if !bwrap_works() {
        return;
    }
    // Under the crate's target directory: a place every sandbox shows from
    // the host unless it is hidden.
    let h = tempfile::Builder::new()
        .prefix("hide-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::write(h.path().join("given.txt"), "GIVEN\n").unwrap();
    std::fs::write(h.path().join("secret.txt"), "SECRET\n").unwrap();
    let s = Scratch::new();
    let tool = format!(
        "cwlVersion: v1.2
class: CommandLineTool
requirements: {{ShellCommandRequirement: {{}}}}
inputs:
  f: {{type: File, inputBinding: {{position: 1}}}}
arguments:
  - {{valueFrom: 'cat', shellQuote: false, position: 0}}
  - {{valueFrom: '; cat {}/secret.txt; ls {} | wc -l', shellQuote: false, position: 2}}
stdout: out.txt
outputs:
  out: stdout
",
        h.path().display(),
        h.path().display()
    );
    s.file("tool.cwl", &tool);
    s.file(
        "wf.cwl",
        &super::one_step("tool.cwl", &[("f", "File")], &[("out", "File")]),
    );
    s.file(
        "job.yml",
        &format!(
            "f: {{class: File, path: {}/given.txt}}\n",
            h.path().display()
        ),
    );
    for doc in ["tool.cwl", "wf.cwl"] {
        let shown = s.run(&[doc, "job.yml"]);
        assert_eq!(shown.code(), 0, "{}", shown.stderr());
        let text = std::fs::read_to_string(shown.json()["out"]["path"].as_str().unwrap()).unwrap();
        assert!(text.contains("SECRET"), "unhidden, {doc} sees it: {text}");
        let hidden = s.run(&["--hide", h.path().to_str().unwrap(), doc, "job.yml"]);
        assert_eq!(hidden.code(), 0, "{}", hidden.stderr());
        let text = std::fs::read_to_string(hidden.json()["out"]["path"].as_str().unwrap()).unwrap();
        assert!(text.starts_with("GIVEN\n"), "{doc}: {text}");
        assert!(!text.contains("SECRET"), "{doc}: {text}");
        // Listing the directory shows the one file the job was given.
        assert!(text.trim_end().ends_with("\n1"), "{doc}: {text}");
    }
}

#[test]
fn describe_gives_inputs_steps_and_links() {
    let s = Scratch::new();
    s.file("wf.cwl", WORKFLOW);
    s.file("count.cwl", COUNT);
    let r = s.run(&["describe", "wf.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let d = r.json();
    assert_eq!(d["class"], "Workflow");
    assert_eq!(d["inputs"][0]["id"], "n");
    assert_eq!(d["inputs"][0]["type"]["items"], "int");
    assert_eq!(d["outputs"][0]["source"][0], "count/out");
    assert_eq!(d["steps"][0]["scatter"][0], "n");
    assert_eq!(d["steps"][0]["in"][0]["source"][0], "n");
    assert_eq!(d["steps"][0]["run"]["class"], "CommandLineTool");
    s.file(
        "bad.cwl",
        "cwlVersion: v1.2\nclass: Workflow\ninputs: {}\noutputs: {}\nstepz: {}\n",
    );
    let r = s.run(&["describe", "bad.cwl"]);
    assert_eq!(r.code(), 1);
    assert!(r.stderr().contains("bad.cwl:5:1"), "{}", r.stderr());
}
