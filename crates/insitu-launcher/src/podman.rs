//! Podman (runtime runc, cgroupfs) as the platform runs it: building OCI
//! images of user-developed datalabs, keeping, saving, loading and
//! removing them, and running labs in containers ([`crate::container`]).
//!
//! Every call names its runtime and cgroup manager, so what runs does not
//! depend on the host's podman defaults. A build sees only its own context
//! directory, builds only from images already on this machine
//! (`--pull=never`), runs its steps in a control group with limits and on
//! a network of its own (never the host's network namespace), without the
//! capabilities that reach beyond the container (raw sockets, device
//! nodes, file capabilities, chroot), and is stopped after its time limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The program and the settings every podman call takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Podman {
    pub program: PathBuf,
    /// The OCI runtime (`runc`).
    pub runtime: String,
}

/// What went wrong talking to podman; the text is podman's own where it
/// said something.
#[derive(Debug, thiserror::Error)]
pub enum PodmanError {
    #[error("cannot run podman ({program}): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("podman {what} failed: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

/// Capabilities a build step drops beyond podman's own defaults: nothing a
/// package installation needs (it changes owners and switches users).
pub const BUILD_DROPPED_CAPS: &str =
    "NET_RAW,MKNOD,AUDIT_WRITE,SETFCAP,SETPCAP,SYS_CHROOT,NET_BIND_SERVICE,KILL";

/// One image build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The build's context: the Containerfile and its files, nothing else.
    pub context: PathBuf,
    /// The name and tag the image gets.
    pub tag: String,
    /// Labels put on the image (`insitu.devlab=<name>`).
    pub labels: Vec<(String, String)>,
    /// The podman network build steps use (`none` for no network).
    pub network: String,
    /// The control group build steps run below (`/insitu/<group>`), made
    /// with its limits by the caller.
    pub cgroup_parent: Option<String>,
    /// The build is killed after this long.
    pub timeout: Duration,
}

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The image id.
    Built(String),
    /// podman failed; its exit code.
    Failed(Option<i32>),
    TimedOut,
}

impl Podman {
    pub fn new(program: impl Into<PathBuf>, runtime: impl Into<String>) -> Podman {
        Podman {
            program: program.into(),
            runtime: runtime.into(),
        }
    }

    /// A podman command with the global settings, an empty environment but
    /// for `PATH`, and no input.
    pub(crate) fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .args([
                "--runtime",
                self.runtime.as_str(),
                "--cgroup-manager",
                "cgroupfs",
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    fn spawn_error(&self, source: std::io::Error) -> PodmanError {
        PodmanError::Spawn {
            program: self.program.display().to_string(),
            source,
        }
    }

    /// Runs `podman <args>` to the end; its standard output when it
    /// succeeds.
    pub async fn output(&self, what: &str, args: &[&str]) -> Result<String, PodmanError> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| self.spawn_error(e))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(PodmanError::Failed {
                what: what.to_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// podman's version, or why it does not work here.
    pub async fn version(&self) -> Result<String, PodmanError> {
        Ok(self
            .output("version", &["version", "--format", "{{.Client.Version}}"])
            .await?
            .trim()
            .to_owned())
    }

    /// Whether an image of this name is in local storage.
    pub async fn image_exists(&self, image: &str) -> Result<bool, PodmanError> {
        let status = self
            .command()
            .args(["image", "exists", image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .map_err(|e| self.spawn_error(e))?;
        Ok(status.success())
    }

    /// The id of a local image.
    pub async fn image_id(&self, image: &str) -> Result<String, PodmanError> {
        Ok(self
            .output(
                "image inspect",
                &["image", "inspect", "--format", "{{.Id}}", image],
            )
            .await?
            .trim()
            .to_owned())
    }

    /// Builds an image, appending podman's output to `log` as it comes;
    /// the build is killed after its timeout.
    pub async fn build(&self, spec: &BuildSpec, log: &Path) -> Result<BuildOutcome, PodmanError> {
        let iidfile = spec.context.with_extension("iid");
        let _ = std::fs::remove_file(&iidfile);
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
        };
        let (out, err) = (open()?, open()?);
        let mut cmd = self.command();
        cmd.args(build_args(spec, &iidfile))
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| self.spawn_error(e))?;
        let status = match tokio::time::timeout(spec.timeout, child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                // The whole group: podman and the build step it runs.
                if let Some(pid) = child.id() {
                    signal_group(pid);
                }
                let _ = child.wait().await;
                return Ok(BuildOutcome::TimedOut);
            }
        };
        if !status.success() {
            return Ok(BuildOutcome::Failed(status.code()));
        }
        let id = std::fs::read_to_string(&iidfile)?;
        let _ = std::fs::remove_file(&iidfile);
        Ok(BuildOutcome::Built(
            id.trim().trim_start_matches("sha256:").to_owned(),
        ))
    }

    /// Removes an image's name; its layers stay while another image uses
    /// them. A name that is not there is no error.
    pub async fn remove_image(&self, image: &str) -> Result<(), PodmanError> {
        if !self.image_exists(image).await? {
            return Ok(());
        }
        self.output("rmi", &["rmi", image]).await.map(|_| ())
    }

    /// Writes an image as an OCI archive (compressed layers).
    pub async fn save(&self, image: &str, archive: &Path) -> Result<(), PodmanError> {
        let path = archive.display().to_string();
        self.output(
            "save",
            &["save", "--format", "oci-archive", "-o", &path, image],
        )
        .await
        .map(|_| ())
    }

    /// Loads an OCI archive that names exactly `image` (see
    /// [`crate::oci::rename_archive`]) into local storage.
    pub async fn load(&self, archive: &Path) -> Result<(), PodmanError> {
        let path = archive.display().to_string();
        self.output("load", &["load", "-q", "-i", &path])
            .await
            .map(|_| ())
    }
}

/// The arguments after `podman` of a build.
pub fn build_args(spec: &BuildSpec, iidfile: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "build".into(),
        "--pull=never".into(),
        "--layers".into(),
        "--isolation=oci".into(),
        format!("--network={}", spec.network),
        format!("--cap-drop={BUILD_DROPPED_CAPS}"),
        format!("--tag={}", spec.tag),
        format!("--iidfile={}", iidfile.display()),
        format!(
            "--file={}",
            spec.context.join(insitu_containerfile()).display()
        ),
    ];
    if let Some(parent) = &spec.cgroup_parent {
        a.push(format!("--cgroup-parent={parent}"));
    }
    for (k, v) in &spec.labels {
        a.push(format!("--label={k}={v}"));
    }
    a.push(spec.context.display().to_string());
    a
}

/// The Containerfile's name in a build's context.
fn insitu_containerfile() -> &'static str {
    "Containerfile"
}

/// Kills a process group.
fn signal_group(pid: u32) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_pulls_nothing_and_runs_confined() {
        let spec = BuildSpec {
            context: "/data/devlabs/x/builds/3".into(),
            tag: "localhost/insitu-devlab/x:1.0-3".into(),
            labels: vec![("insitu.devlab".into(), "x".into())],
            network: "insitu-build".into(),
            cgroup_parent: Some("/insitu/build-x-3".into()),
            timeout: Duration::from_secs(60),
        };
        let args = build_args(&spec, Path::new("/tmp/iid"));
        for a in [
            "--pull=never",
            "--network=insitu-build",
            "--cgroup-parent=/insitu/build-x-3",
            "--file=/data/devlabs/x/builds/3/Containerfile",
            "--label=insitu.devlab=x",
        ] {
            assert!(args.iter().any(|x| x == a), "{a} in {args:?}");
        }
        assert!(
            args.iter()
                .any(|a| a.starts_with("--cap-drop=") && a.contains("NET_RAW"))
        );
        assert_eq!(args.last().unwrap(), "/data/devlabs/x/builds/3");
    }
}
