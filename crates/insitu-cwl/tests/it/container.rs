//! `DockerRequirement` runs the tool in a podman container of the named
//! image: the image's files and entrypoint, the output directory at
//! `dockerOutputDirectory`, inputs read-only, no network, absolute
//! InitialWorkDir entry names mounted where they say; without podman a
//! requirement is unsupported (33) and a hint runs on the host.

use super::{IMAGE, Scratch, podman_ready};

/// A tool reporting where it runs; `hints` and `docker` (a requirement)
/// are YAML lines added to its hints and requirements.
fn probe(hints: &str, docker: &str) -> String {
    format!(
        "cwlVersion: v1.2
class: CommandLineTool
hints:
  {hints}
requirements:
  {docker}
  ShellCommandRequirement: {{}}
  InitialWorkDirRequirement:
    listing:
      - {{entryname: /opt/insitu-probe/given.txt, entry: $(inputs.f)}}
inputs:
  f: File
arguments:
  - shellQuote: false
    valueFrom: >-
      test -e /run/.containerenv && echo IN_CONTAINER;
      echo outdir=$(runtime.outdir) pwd=`pwd` home=$HOME;
      cat $(inputs.f.path);
      cat /opt/insitu-probe/given.txt;
      (echo changed > $(inputs.f.path)) 2>/dev/null || echo INPUT_READ_ONLY;
      echo ifaces=`grep -c : /proc/net/dev`;
      echo made > /other/made.txt
outputs:
  log: stdout
  made: {{type: File, outputBinding: {{glob: made.txt}}}}
stdout: log.txt
"
    )
}

fn job(s: &Scratch) {
    s.file("in.txt", "original\n");
    s.file("job.json", r#"{"f": {"class": "File", "path": "in.txt"}}"#);
}

#[test]
fn requirement_runs_in_the_image_with_its_mounts() {
    if !podman_ready() {
        return;
    }
    let s = Scratch::new();
    job(&s);
    s.file(
        "probe.cwl",
        &probe(
            "LoadListingRequirement: {}",
            &format!("DockerRequirement: {{dockerPull: {IMAGE}, dockerOutputDirectory: /other}}"),
        ),
    );
    let r = s.run(&["--quiet", "probe.cwl", "job.json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = r.json();
    assert_eq!(out["made"]["size"], 5, "{out}");
    let log = std::fs::read_to_string(out["log"]["path"].as_str().unwrap()).unwrap();
    for want in [
        "IN_CONTAINER",
        "outdir=/other pwd=/other home=/other",
        "original\noriginal\n",
        "INPUT_READ_ONLY",
        "ifaces=1",
    ] {
        assert!(log.contains(want), "{want}: {log}");
    }
    assert_eq!(
        std::fs::read_to_string(s.path().join("in.txt")).unwrap(),
        "original\n"
    );
}

#[test]
fn a_missing_image_is_a_clear_failure() {
    if !podman_ready() {
        return;
    }
    let s = Scratch::new();
    s.file(
        "tool.cwl",
        "cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement: {dockerPull: localhost/insitu-no-such-image:1}
baseCommand: [true]
inputs: []
outputs: []
",
    );
    let r = s.run(&["--quiet", "tool.cwl"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("image localhost/insitu-no-such-image:1 is not on this machine"),
        "{}",
        r.stderr()
    );
}

#[test]
fn absolute_entry_names_need_a_container_requirement() {
    let s = Scratch::new();
    job(&s);
    // As a hint, the container is optional: absolute names are refused
    // whether or not podman is here.
    s.file(
        "probe.cwl",
        &probe(
            &format!("DockerRequirement: {{dockerPull: {IMAGE}}}"),
            "LoadListingRequirement: {}",
        ),
    );
    let r = s.run(&["--quiet", "probe.cwl", "job.json"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("entryname '/opt/insitu-probe/given.txt' is an absolute path"),
        "{}",
        r.stderr()
    );
    assert!(!std::path::Path::new("/opt/insitu-probe").exists());
}

#[test]
fn without_podman_a_requirement_is_unsupported_and_a_hint_runs_on_the_host() {
    let s = Scratch::new();
    let docker = format!("DockerRequirement: {{dockerPull: {IMAGE}}}");
    let tool = |hints: &str, docker: &str| {
        format!(
            "cwlVersion: v1.2
class: CommandLineTool
hints:
  {hints}
requirements:
  {docker}
  ShellCommandRequirement: {{}}
arguments:
  - {{shellQuote: false, valueFrom: 'test -e /run/.containerenv && echo IN_CONTAINER || echo ON_HOST'}}
inputs: []
outputs: {{log: stdout}}
"
        )
    };
    s.file("req.cwl", &tool("LoadListingRequirement: {}", &docker));
    s.file("hint.cwl", &tool(&docker, "LoadListingRequirement: {}"));
    let no_podman = |name: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
            .current_dir(s.path())
            .env("INSITU_PODMAN", "/nonexistent/podman")
            .args(["--outdir", "out", "--quiet", name])
            .output()
            .unwrap();
        super::Run(out)
    };
    let r = no_podman("req.cwl");
    assert_eq!(r.code(), 33, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("no container engine works on this machine"),
        "{}",
        r.stderr()
    );
    let r = no_podman("hint.cwl");
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let log = std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(log, "ON_HOST\n");
    // --no-container ignores the requirement, as cwltool's flag does.
    let r = s.run(&["--no-container", "--quiet", "req.cwl"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let log = std::fs::read_to_string(r.json()["log"]["path"].as_str().unwrap()).unwrap();
    assert_eq!(log, "ON_HOST\n");
}
