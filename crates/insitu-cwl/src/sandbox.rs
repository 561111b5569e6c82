//! Building the argv of a bubblewrap (`bwrap`) sandbox around a command.
//!
//! Self-contained on purpose (no dependency on the rest of the engine) so it
//! can be lifted into a shared crate used by the datalab launcher as well.

use std::path::PathBuf;

/// What the sandbox exposes to the command.
#[derive(Clone, Debug, Default)]
pub struct SandboxSpec {
    /// Paths bound read-only at the same place (input files, data volumes).
    pub read_only: Vec<PathBuf>,
    /// Paths bound read-write at the same place (output directory, workspace).
    pub read_write: Vec<PathBuf>,
    /// Working directory inside the sandbox.
    pub cwd: Option<PathBuf>,
    /// Whether the network is shared with the host (`NetworkAccess`).
    pub network: bool,
}

/// Return `bwrap ... -- argv...`: host root read-only, private /tmp, new
/// pid/ipc namespaces, the given binds, and the command.
pub fn bwrap_argv(spec: &SandboxSpec, argv: &[String]) -> Vec<String> {
    let mut a: Vec<String> = [
        "bwrap",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(
        [
            "--tmpfs",
            "/tmp",
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
        ]
        .map(String::from),
    );
    if !spec.network {
        a.push("--unshare-net".into());
    }
    for p in &spec.read_only {
        let s = p.display().to_string();
        a.extend(["--ro-bind".to_string(), s.clone(), s]);
    }
    for p in &spec.read_write {
        let s = p.display().to_string();
        a.extend(["--bind".to_string(), s.clone(), s]);
    }
    if let Some(c) = &spec.cwd {
        a.extend(["--chdir".to_string(), c.display().to_string()]);
    }
    a.push("--".into());
    a.extend(argv.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_argv() {
        let spec = SandboxSpec {
            read_only: vec!["/data".into()],
            read_write: vec!["/out".into()],
            cwd: Some("/out".into()),
            network: false,
        };
        let a = bwrap_argv(&spec, &["echo".into(), "hi".into()]);
        assert_eq!(a[0], "bwrap");
        assert!(a.contains(&"--unshare-net".to_string()));
        assert_eq!(
            &a[a.len() - 3..],
            &["--".to_string(), "echo".into(), "hi".into()]
        );
    }
}
