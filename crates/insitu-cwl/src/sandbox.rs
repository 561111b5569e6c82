//! The sandbox executor: every CommandLineTool job runs in a bubblewrap
//! (`bwrap`) sandbox whose command line comes from the platform's launcher
//! (`insitu_launcher::sandbox`, the builder the labs use), so pipeline steps
//! and labs share one definition of what a sandbox hides: the host's root
//! read-only, private `/tmp`, `/run`, `/home` and `/root`, own pid, ipc and
//! uts namespaces, no network unless the tool asks for `NetworkAccess`.
//! A job adds its own binds: the output and temporary directories
//! read-write, the staged inputs read-only (inputs updated in place
//! read-write), and starts in its output directory.

use crate::error::CwlError;
use crate::executor::{CommandSpec, ExecFuture, Executor, run_to_end, step_binds};
use insitu_launcher::sandbox::{SandboxSpec, TOOL_CAPS, bwrap_args_with};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Runs each command in its own bubblewrap sandbox.
#[derive(Clone, Debug)]
pub struct SandboxExecutor {
    bwrap: PathBuf,
    /// Host paths shown read-only at the same place (tool installations
    /// under `/home`, `/root` or `/tmp`, which sandboxes otherwise replace).
    pub expose: Vec<PathBuf>,
    /// The unprivileged user and group bubblewrap (and so the tool) runs
    /// as, in a user namespace of its own and without capabilities; `None`
    /// keeps the engine's.
    pub run_as: Option<(u32, u32)>,
}

/// Where `bwrap` is: `$INSITU_BWRAP`, else the first `bwrap` on `PATH`,
/// else `/usr/bin/bwrap`.
pub fn find_bwrap() -> PathBuf {
    if let Some(p) = std::env::var_os("INSITU_BWRAP") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("bwrap"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/bwrap"))
}

impl SandboxExecutor {
    /// An executor using the given `bwrap` binary.
    pub fn new(bwrap: PathBuf, expose: Vec<PathBuf>, run_as: Option<(u32, u32)>) -> Self {
        SandboxExecutor {
            bwrap,
            expose,
            run_as,
        }
    }

    /// Find `bwrap` and check that it can start a sandbox on this machine
    /// (it cannot where user namespaces are disabled, e.g. inside some
    /// containers); the error says why not.
    ///
    /// A successful check is remembered until the next boot (or a new
    /// bwrap binary) by a marker file of this user in the temporary
    /// directory, so a run does not pay for a second sandbox each time.
    /// With `run_as`, the check runs as that user.
    pub async fn probe(
        expose: Vec<PathBuf>,
        run_as: Option<(u32, u32)>,
    ) -> std::result::Result<Self, String> {
        let ex = SandboxExecutor::new(find_bwrap(), expose, run_as);
        if !ex.bwrap.is_file() {
            return Err(format!("bubblewrap not found ({})", ex.bwrap.display()));
        }
        let marker = probe_marker(&ex.bwrap, run_as);
        if marker.as_ref().is_some_and(|(m, uid)| owned_file(m, *uid)) {
            return Ok(ex);
        }
        let dir = std::env::temp_dir();
        let spec = CommandSpec {
            argv: vec!["true".into()],
            cwd: dir.clone(),
            tmpdir: dir,
            ..CommandSpec::default()
        };
        let mut cmd = tokio::process::Command::new(&ex.bwrap);
        cmd.args(ex.args(&spec))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        crate::executor::run_as(&mut cmd, run_as);
        let out = cmd
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", ex.bwrap.display()))?;
        if out.status.success() {
            if let Some((m, _)) = marker {
                std::fs::write(m, b"").ok();
            }
            Ok(ex)
        } else {
            Err(format!(
                "{} cannot create a sandbox here: {}",
                ex.bwrap.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The `bwrap` program.
    pub fn bwrap(&self) -> &Path {
        &self.bwrap
    }

    /// The arguments after `bwrap` for one command.
    pub fn args(&self, spec: &CommandSpec) -> Vec<OsString> {
        let sandbox = SandboxSpec {
            command: spec.argv.clone(),
            env: spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            expose: self.expose.clone(),
            share_network: spec.network,
            keep_caps: tool_caps(self.run_as),
            // A step never outlives the engine that runs it.
            die_with_parent: true,
            ..SandboxSpec::default()
        };
        bwrap_args_with(&sandbox, &step_binds(spec))
    }
}

/// The capabilities a step keeps: [`TOOL_CAPS`] where the engine runs as
/// root and its tools too (a step running as root then behaves as root in
/// a container), none otherwise.
pub(crate) fn tool_caps(run_as: Option<(u32, u32)>) -> Vec<String> {
    if run_as.is_none() && rustix::process::geteuid().is_root() {
        TOOL_CAPS.iter().map(|c| c.to_string()).collect()
    } else {
        vec![]
    }
}

/// The marker of a successful probe of `bwrap` by this user (for tools
/// running as `run_as`) since boot, and the user id that must own it.
fn probe_marker(bwrap: &Path, run_as: Option<(u32, u32)>) -> Option<(PathBuf, u32)> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let mtime = std::fs::metadata(bwrap).ok()?.mtime();
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let tools = run_as.map_or(String::new(), |(u, g)| format!("-as-{u}-{g}"));
    let name = format!("insitu-cwl-bwrap-ok-{uid}{tools}-{}-{mtime}", boot.trim());
    Some((std::env::temp_dir().join(name), uid))
}

/// Whether `p` is a regular file (not a link) owned by `uid`.
fn owned_file(p: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.uid() == uid)
}

impl Executor for SandboxExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            if spec.argv.is_empty() {
                return Err(CwlError::Execution("empty command line".into()));
            }
            let mut cmd = tokio::process::Command::new(&self.bwrap);
            cmd.args(self.args(spec)).current_dir(&spec.cwd).env_clear();
            crate::executor::run_as(&mut cmd, self.run_as);
            run_to_end(cmd, spec).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_inputs_read_only_and_job_dirs_writable() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        for p in ["out", "tmp", "stg/s1", "data/sub"] {
            std::fs::create_dir_all(root.join(p)).unwrap();
        }
        std::fs::write(root.join("data/sub/a.txt"), "a").unwrap();
        let spec = CommandSpec {
            argv: vec!["cat".into(), "a.txt".into()],
            cwd: root.join("out"),
            tmpdir: root.join("tmp"),
            read_only_paths: vec![
                root.join("data"),
                root.join("data/sub/a.txt"),
                root.join("stg"),
                root.join("out/inside"),
                root.join("missing"),
            ],
            ..CommandSpec::default()
        };
        let ex = SandboxExecutor::new("/usr/bin/bwrap".into(), vec![], None);
        let args: Vec<String> = ex
            .args(&spec)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let bind = |how: &str, p: &Path| {
            let p = p.display().to_string();
            args.windows(3)
                .filter(|w| w[0] == how && w[1] == p && w[2] == p)
                .count()
        };
        assert_eq!(bind("--ro-bind", &root.join("data")), 1);
        assert_eq!(bind("--ro-bind", &root.join("data/sub/a.txt")), 0);
        assert_eq!(bind("--ro-bind", &root.join("stg")), 1);
        assert_eq!(bind("--bind", &root.join("out")), 1);
        assert_eq!(bind("--bind", &root.join("tmp")), 1);
        assert!(args.contains(&"--unshare-net".to_string()));
        let joined = args.join(" ");
        assert!(
            joined.ends_with(&format!(
                "--chdir {} -- cat a.txt",
                root.join("out").display()
            )),
            "{joined}"
        );
        let net = CommandSpec {
            network: true,
            ..spec
        };
        assert!(!ex.args(&net).contains(&"--unshare-net".into()));
    }
}
