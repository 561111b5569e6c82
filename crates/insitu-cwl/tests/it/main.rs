//! End-to-end tests of the `insitu-cwl` binary: bad input and its exit
//! codes, the bubblewrap sandbox, provenance crates, the progress display,
//! and a fuzz harness for the loader. One test binary, one module each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod cache;
mod confined;
mod container;
mod events;
mod formats;
mod fuzz;
mod lints;
mod modules;
mod outputs;
mod progress;
mod provenance;
mod resources;
mod sandbox;
mod slurm;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch directory with CWL documents and job files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `text` to `name` and return its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Run `insitu-cwl ARGS` in this directory with `--outdir out`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[])
    }

    /// [`Scratch::run`] with environment variables set.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_insitu-cwl"))
            .current_dir(self.dir.path())
            .arg("--outdir")
            .arg(self.dir.path().join("out"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        Run(out)
    }
}

/// The outcome of one CLI run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\n{}",
                self.stdout(),
                self.stderr()
            )
        })
    }
}

/// Whether any file under `dir` (links not followed) holds `needle`.
pub fn outputs_hold(dir: &Path, needle: &str) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => outputs_hold(&p, needle),
            Ok(t) if t.is_file() => std::fs::read_to_string(&p).is_ok_and(|t| t.contains(needle)),
            _ => false,
        }
    })
}

/// Whether bubblewrap can make a sandbox here (else sandbox tests skip).
pub fn bwrap_works() -> bool {
    let ok = std::process::Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-pid", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_SANDBOX").as_deref() != Ok("1"),
            "bubblewrap is required but does not work here"
        );
        eprintln!("skipping: bubblewrap does not work here");
    }
    ok
}

pub const ECHO: &str = "cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  msg:
    type: string
    inputBinding: {position: 1}
outputs:
  out: stdout
stdout: out.txt
";

/// The image container tests run in.
pub const IMAGE: &str = "docker.io/debian:stable-slim";

/// Whether podman works and has the suite's images (made by
/// `scripts/cwl-images.sh`); else container tests skip.
pub fn podman_ready() -> bool {
    let ok = std::process::Command::new("podman")
        .args(["image", "exists", IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("INSITU_REQUIRE_CONTAINERS").as_deref() != Ok("1"),
            "podman with the image {IMAGE} is required (scripts/cwl-images.sh)"
        );
        eprintln!("skipping: podman or the image {IMAGE} is not here");
    }
    ok
}

/// A workflow of one step running `tool` (a file beside it), its inputs
/// `(name, type)` passed through and its outputs `(name, type)` shown: the
/// jobs of a workflow share the run's sandbox, a lone tool has its own.
pub fn one_step(tool: &str, inputs: &[(&str, &str)], outputs: &[(&str, &str)]) -> String {
    let ins: Vec<String> = inputs.iter().map(|(n, t)| format!("{n}: '{t}'")).collect();
    let outs: Vec<String> = outputs
        .iter()
        .map(|(n, t)| format!("{n}: {{type: '{t}', outputSource: s/{n}}}"))
        .collect();
    let links: Vec<String> = inputs.iter().map(|(n, _)| format!("{n}: {n}")).collect();
    let names: Vec<&str> = outputs.iter().map(|(n, _)| *n).collect();
    format!(
        "cwlVersion: v1.2
class: Workflow
inputs: {{{}}}
outputs: {{{}}}
steps:
  s: {{run: {tool}, in: {{{}}}, out: [{}]}}
",
        ins.join(", "),
        outs.join(", "),
        links.join(", "),
        names.join(", ")
    )
}
