//! The scheduler reserves the cores and memory a job's ResourceRequirement
//! declares (at most the machine's): jobs that together ask for more than
//! the machine has wait for one another, jobs that fit run side by side.

use super::Scratch;

/// A workflow of two independent steps, each recording when it ran, with
/// `cores` declared by the tool.
fn two_steps(cores: &str) -> String {
    let tool = format!(
        "{{class: CommandLineTool, inputs: [], outputs: {{log: stdout}},
        requirements: {{ShellCommandRequirement: {{}}, ResourceRequirement: {{coresMin: {cores}}}}},
        arguments: [{{shellQuote: false, valueFrom: 'date +%s.%N; sleep 1.2; date +%s.%N'}}]}}"
    );
    format!(
        "cwlVersion: v1.2
class: Workflow
inputs: []
outputs:
  a: {{type: File, outputSource: a/log}}
  b: {{type: File, outputSource: b/log}}
steps:
  a: {{run: {tool}, in: {{}}, out: [log]}}
  b: {{run: {tool}, in: {{}}, out: [log]}}
"
    )
}

/// The (start, end) times each step recorded.
fn spans(s: &Scratch, cores: &str) -> Vec<(f64, f64)> {
    s.file("wf.cwl", &two_steps(cores));
    let r = s.run(&["--quiet", "--parallel", "4", "wf.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.json();
    ["a", "b"]
        .iter()
        .map(|k| {
            let text = std::fs::read_to_string(out[k]["path"].as_str().unwrap()).unwrap();
            let t: Vec<f64> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
            (t[0], t[1])
        })
        .collect()
}

fn overlap(s: &[(f64, f64)]) -> bool {
    s[0].0 < s[1].1 && s[1].0 < s[0].1
}

#[test]
fn jobs_wait_for_the_cores_they_declare() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let s = Scratch::new();
    // Each asks for every core (more are clamped to the machine's): one
    // after the other.
    let all = spans(&s, &(cores * 4).to_string());
    assert!(!overlap(&all), "ran together: {all:?}");
    if cores >= 2 {
        // One core each: side by side.
        let one = spans(&s, "1");
        assert!(overlap(&one), "ran one after the other: {one:?}");
    }
}
