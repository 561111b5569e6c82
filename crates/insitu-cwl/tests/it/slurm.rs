//! Jobs on a real Slurm cluster (`--slurm-conf`), the one
//! `INSITU_TEST_SLURM_CONF` names (`scripts/slurm.sh start DIR` makes one):
//! a scatter gives what it gives locally, in shared allocations and as a
//! batch job each; the cores, memory and GPUs a job asks for reach its
//! Slurm job; stopping the engine leaves no job on the cluster; a job
//! cancelled from outside fails its step, saying so. Skipped without the
//! variable, unless `INSITU_REQUIRE_SLURM=1`.

use super::{Scratch, bwrap_works};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The test cluster has two cores: its tests take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The cluster's `slurm.conf` and this test's turn on it, or `None` to
/// skip.
fn cluster() -> Option<(String, std::sync::MutexGuard<'static, ()>)> {
    let conf = std::env::var("INSITU_TEST_SLURM_CONF").ok();
    if conf.is_none() {
        assert!(
            std::env::var("INSITU_REQUIRE_SLURM").as_deref() != Ok("1"),
            "a Slurm cluster is required: set INSITU_TEST_SLURM_CONF"
        );
        eprintln!("skipping: INSITU_TEST_SLURM_CONF is not set");
        return None;
    }
    let turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    bwrap_works().then_some(conf).flatten().map(|c| (c, turn))
}

/// `program ARGS` against the cluster; its standard output.
fn slurm_cmd(conf: &str, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .env("SLURM_CONF", conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Slurm jobs of the engine with process id `pid` still known to the
/// queue (pending, running or completing).
fn jobs_of(conf: &str, pid: u32) -> Vec<String> {
    let prefix = format!("insitu-cwl-{pid}-");
    slurm_cmd(conf, "squeue", &["-h", "-o", "%i %j %T"])
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(str::to_owned)
        .collect()
}

/// The events of a run, read from its stream.
fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn placed(ev: &[Value]) -> Vec<&Value> {
    ev.iter().filter(|e| e["event"] == "job_placed").collect()
}

/// A scatter over `xs` whose jobs print their input and a line of their
/// environment.
const SCATTER: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs:
  xs: int[]
outputs:
  out:
    type: string[]
    outputSource: s/o
steps:
  s:
    run:
      class: CommandLineTool
      requirements:
        ShellCommandRequirement: {}
        InlineJavascriptRequirement: {}
      inputs: {x: int}
      outputs:
        o:
          type: string
          outputBinding:
            glob: out.txt
            loadContents: true
            outputEval: $(self[0].contents.trim())
      arguments: [{shellQuote: false, valueFrom: 'echo $((inputs.x * inputs.x)) > out.txt'}]
    in: {x: xs}
    scatter: x
    out: [o]
";

#[test]
fn a_scatter_on_slurm_gives_what_it_gives_locally() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    let s = Scratch::new();
    s.file("wf.cwl", SCATTER);
    s.file("job.json", r#"{"xs": [1, 2, 3, 4, 5, 6, 7]}"#);
    let local = s.run(&["--quiet", "wf.cwl", "job.json"]);
    assert_eq!(local.code(), 0, "{}", local.stderr());
    let expected = local.json()["out"].clone();
    assert_eq!(
        expected,
        serde_json::json!(["1", "4", "9", "16", "25", "36", "49"])
    );
    for grouping in ["allocations", "none"] {
        let ev = s.path().join(format!("{grouping}.jsonl"));
        let r = s.run(&[
            "--quiet",
            "--parallel",
            "2",
            "--slurm-conf",
            &conf,
            "--slurm-grouping",
            grouping,
            "--events",
            ev.to_str().unwrap(),
            "wf.cwl",
            "job.json",
        ]);
        assert_eq!(r.code(), 0, "{grouping}: {}", r.stderr());
        assert_eq!(r.json()["out"], expected, "{grouping}");
        let ev = events(&ev);
        let placed = placed(&ev);
        assert_eq!(placed.len(), 7, "{grouping}: {ev:?}");
        let ids: std::collections::BTreeSet<&str> = placed
            .iter()
            .map(|e| e["slurm_job"].as_str().unwrap())
            .collect();
        assert!(placed.iter().all(|e| e["node"].is_string()), "{placed:?}");
        match grouping {
            // Seven jobs, two at a time: one or two allocations.
            "allocations" => assert!(ids.len() <= 2, "{placed:?}"),
            _ => assert_eq!(ids.len(), 7, "{placed:?}"),
        }
        // The run ended: nothing of it is left on the cluster, and its
        // jobs ended well.
        let pid = ev[0]["pid"].as_u64().unwrap() as u32;
        no_jobs_left(&conf, pid, grouping);
        for id in ids {
            let state = slurm_cmd(&conf, "scontrol", &["show", "job", "-o", id]);
            assert!(state.contains("JobState=COMPLETED"), "{grouping}: {state}");
        }
    }
}

/// A tool asking for 2 cores, 300 MiB and, with `gpu`, one GPU, that
/// records the GPUs it sees.
fn resource_tool(gpu: bool) -> String {
    let cuda = if gpu {
        "\n  cwltool:CUDARequirement: {cudaVersionMin: '11.0', cudaComputeCapability: '3.0', cudaDeviceCountMin: 1}"
    } else {
        ""
    };
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
$namespaces: {{cwltool: 'http://commonwl.org/cwltool#'}}
requirements:
  ShellCommandRequirement: {{}}
  ResourceRequirement: {{coresMin: 2, ramMin: 300}}{cuda}
inputs: []
outputs: {{o: stdout}}
stdout: env.txt
arguments: [{{shellQuote: false, valueFrom: 'echo \"gpus=$CUDA_VISIBLE_DEVICES\"'}}]
"
    )
}

#[test]
fn the_cores_memory_and_gpus_a_job_asks_for_reach_its_slurm_job() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    let s = Scratch::new();
    for gpu in [false, true] {
        s.file("tool.cwl", &resource_tool(gpu));
        s.file(
            "wf.cwl",
            &super::one_step("tool.cwl", &[], &[("o", "File")]),
        );
        for grouping in ["allocations", "none"] {
            let ev = s.path().join(format!("{grouping}-{gpu}.jsonl"));
            let r = s.run(&[
                "--quiet",
                "--slurm-conf",
                &conf,
                "--slurm-grouping",
                grouping,
                "--events",
                ev.to_str().unwrap(),
                "wf.cwl",
            ]);
            assert_eq!(r.code(), 0, "{grouping} gpu={gpu}: {}", r.stderr());
            let seen = std::fs::read_to_string(r.json()["o"]["path"].as_str().unwrap()).unwrap();
            let ev = events(&ev);
            let id = placed(&ev)[0]["slurm_job"].as_str().unwrap().to_string();
            let job = slurm_cmd(&conf, "scontrol", &["show", "job", "-o", &id]);
            let tres = job
                .split_whitespace()
                .find_map(|w| w.strip_prefix("AllocTRES=").or(w.strip_prefix("TRES=")))
                .unwrap_or_default()
                .to_string();
            // Two cores fill the test node: one job per allocation.
            assert!(tres.contains("cpu=2"), "{grouping}: {job}");
            assert!(tres.contains("mem=300M"), "{grouping}: {job}");
            let gres = job.contains("gres:gpu:1") || tres.contains("gres/gpu=1");
            if gpu {
                assert!(gres, "{grouping}: {job}");
                let devices = seen.trim().strip_prefix("gpus=").unwrap_or_default();
                assert!(
                    !devices.is_empty(),
                    "{grouping}: no CUDA_VISIBLE_DEVICES: {seen}"
                );
            } else {
                assert!(!job.contains("gpu"), "{grouping}: {job}");
                assert_eq!(seen.trim(), "gpus=", "{grouping}");
            }
        }
    }
}

/// A workflow of `n` jobs that sleep for a minute.
fn sleepers(n: usize) -> String {
    format!(
        "cwlVersion: v1.2
class: Workflow
requirements: {{ScatterFeatureRequirement: {{}}}}
inputs: []
outputs: []
steps:
  s:
    run:
      class: CommandLineTool
      baseCommand: [sleep, '60']
      inputs: {{x: int}}
      outputs: []
    in: {{x: {{default: [{}]}}}}
    scatter: x
    out: []
",
        (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
    )
}

/// Start the engine on `wf.cwl` against the cluster, wait until Slurm
/// runs one of its jobs; the child and the events' path.
fn start_sleeping(
    s: &Scratch,
    conf: &str,
    grouping: &str,
) -> (std::process::Child, std::path::PathBuf) {
    s.file("wf.cwl", &sleepers(1));
    let ev = s.path().join(format!("{grouping}.jsonl"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
        .current_dir(s.path())
        .args([
            "--quiet",
            "--outdir",
            "out",
            "--slurm-conf",
            conf,
            "--slurm-grouping",
            grouping,
        ])
        .arg("--events")
        .arg(&ev)
        .arg("wf.cwl")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while placed(&events(&ev)).is_empty() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "no job was placed: {:?}\n{}",
                events(&ev),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, ev)
}

/// Wait for the child to end (at most a minute).
fn wait_for(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the engine did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn stopping_the_engine_leaves_no_job_on_the_cluster() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    for grouping in ["allocations", "none"] {
        let s = Scratch::new();
        let (mut child, _) = start_sleeping(&s, &conf, grouping);
        let pid = child.id();
        assert!(
            !jobs_of(&conf, pid).is_empty(),
            "{grouping}: no job in the queue"
        );
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = wait_for(&mut child);
        assert_eq!(status.code(), Some(143), "{grouping}");
        no_jobs_left(&conf, pid, grouping);
    }
}

#[test]
fn an_engine_killed_outright_leaves_no_allocation() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    let s = Scratch::new();
    let (mut child, _) = start_sleeping(&s, &conf, "allocations");
    let pid = child.id();
    assert!(!jobs_of(&conf, pid).is_empty(), "no job in the queue");
    // No handler runs: srun's input closes with the engine, the spawner
    // ends, and srun gives the allocation back.
    child.kill().unwrap();
    child.wait().unwrap();
    no_jobs_left(&conf, pid, "allocations");
}

/// Step `a` (one core a job, two jobs) holds the two-core test node's
/// cores in its allocations; step `b` asks for both cores and so gets
/// room only once they, idle, are given back: the run ends only if they
/// are.
const FILLS_THEN_WAITS: &str = "cwlVersion: v1.2
class: Workflow
requirements: {ScatterFeatureRequirement: {}}
inputs: []
outputs:
  b: {type: File, outputSource: b/o}
steps:
  a:
    run:
      class: CommandLineTool
      baseCommand: echo
      inputs: {x: {type: int, inputBinding: {position: 1}}}
      outputs: {o: stdout}
    in: {x: {default: [1, 2]}}
    scatter: x
    out: [o]
  b:
    run:
      class: CommandLineTool
      requirements: {ResourceRequirement: {coresMin: 2}}
      baseCommand: cat
      inputs: {f: {type: 'File[]', inputBinding: {position: 1}}}
      outputs: {o: stdout}
    in: {f: a/o}
    out: [o]
";

#[test]
fn an_idle_allocation_is_given_back() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    let s = Scratch::new();
    s.file("wf.cwl", FILLS_THEN_WAITS);
    let ev = s.path().join("ev.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
        .current_dir(s.path())
        .args([
            "--quiet",
            "--outdir",
            "out",
            "--parallel",
            "2",
            "--slurm-idle",
            "0.5",
        ])
        .args(["--slurm-conf", &conf, "--events"])
        .arg(&ev)
        .arg("wf.cwl")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let ev = events(&ev);
    assert_eq!(placed(&ev).len(), 3, "{ev:?}");
    // Which step each job belongs to, and where each ran: `b` in an
    // allocation of its own.
    let step_of = |job: &Value| {
        ev.iter()
            .find(|e| e["event"] == "job_started" && e["job"] == *job)
            .map(|e| e["step"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    let mut a = std::collections::BTreeSet::new();
    let mut b = std::collections::BTreeSet::new();
    for p in placed(&ev) {
        let id = p["slurm_job"].as_str().unwrap().to_owned();
        match step_of(&p["job"]).as_str() {
            "a" => a.insert(id),
            "b" => b.insert(id),
            other => panic!("a job of step {other:?}: {ev:?}"),
        };
    }
    assert_eq!(b.len(), 1, "{ev:?}");
    assert!(!a.is_empty() && a.is_disjoint(&b), "a: {a:?}, b: {b:?}");
}

/// The engine `pid` left no job in the queue (cancelled jobs may show
/// COMPLETING for a moment).
fn no_jobs_left(conf: &str, pid: u32, grouping: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs_of(conf, pid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{grouping}: jobs left: {:?}",
            jobs_of(conf, pid)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_job_cancelled_from_outside_fails_its_step_saying_so() {
    let Some((conf, _turn)) = cluster() else {
        return;
    };
    for grouping in ["allocations", "none"] {
        let s = Scratch::new();
        let (mut child, ev) = start_sleeping(&s, &conf, grouping);
        let id = placed(&events(&ev))[0]["slurm_job"]
            .as_str()
            .unwrap()
            .to_string();
        slurm_cmd(&conf, "scancel", &[&id]);
        let status = wait_for(&mut child);
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{grouping}: {err}");
        assert!(
            err.contains(&format!("Slurm job {id} on ")) && err.contains("CANCELLED"),
            "{grouping}: {err}"
        );
        let failed: Vec<Value> = events(&ev)
            .into_iter()
            .filter(|e| e["event"] == "job_finished" && e["status"] == "failed")
            .collect();
        assert!(
            failed
                .iter()
                .any(|e| e["error"].as_str().is_some_and(|m| m.contains("CANCELLED"))),
            "{grouping}: {failed:?}"
        );
        no_jobs_left(&conf, child.id(), grouping);
    }
}
