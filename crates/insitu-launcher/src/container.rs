//! Labs in OCI containers (podman, runtime runc): the container launcher.
//!
//! A lab's container gets what a sandbox gets: the user's workspace
//! read-write at [`HOME_PATH`], data volumes read-only at their mount
//! paths, the user's network namespace (or the host's network), the lab's
//! control group as its cgroup parent (so the lab's memory, CPU and
//! process limits hold for everything podman starts for it), an
//! unprivileged user, no capabilities, no new privileges, and a read-only
//! image (`/tmp`, `/var/tmp` and `/run` are its own, in memory). Private
//! variables (the lab's secret) reach the container through podman's own
//! environment (`--env NAME`), never a command line.
//!
//! The container is detached (`podman run -d`: conmon keeps it), so it
//! outlives the platform; it is found again by its name and the start time
//! of its first process, and stopped for real (`podman rm --force`, then
//! whatever is left in its control group is killed).

use std::collections::BTreeMap;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::limits::Cgroups;
use crate::podman::{Podman, PodmanError};
use crate::process::{ExitStatus, LaunchError, is_zombie, start_ticks};
use crate::sandbox::{HOME_PATH, PrivateEnv, SandboxSpec, VolumeMount};

/// Where a container's network is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerNetwork {
    /// A named network namespace (the user's), by its path.
    Namespace(PathBuf),
    /// The host's network.
    Host,
}

/// Everything a lab's container needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The container's name (unique on the host).
    pub name: String,
    pub image: String,
    /// Program and arguments (the image's entrypoint, if any, runs them).
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub private_env: PrivateEnv,
    /// Bound read-write at [`HOME_PATH`].
    pub workspace: PathBuf,
    /// Bound read-only.
    pub volumes: Vec<VolumeMount>,
    pub devices: Vec<PathBuf>,
    /// The unprivileged user and group the tool runs as.
    pub run_as: (u32, u32),
    pub network: ContainerNetwork,
    /// The tool's output, in podman's `k8s-file` format.
    pub log_path: PathBuf,
}

impl ContainerSpec {
    /// The container of what a sandbox would have run: its command,
    /// environment (less `PATH`, which is the image's), private variables,
    /// workspace, volumes (and the API socket's directory), devices and
    /// user.
    pub fn from_sandbox(
        sandbox: &SandboxSpec,
        name: String,
        image: String,
        network: ContainerNetwork,
        log_path: PathBuf,
    ) -> Result<ContainerSpec, LaunchError> {
        let run_as = sandbox.run_as.ok_or_else(|| {
            LaunchError::Container("a lab's container never runs as root: name its user".into())
        })?;
        Ok(ContainerSpec {
            name,
            image,
            command: sandbox.command.clone(),
            env: sandbox
                .env
                .iter()
                .filter(|(k, _)| k != "PATH")
                .cloned()
                .collect(),
            private_env: sandbox.private_env.clone(),
            workspace: sandbox.workspace.clone(),
            // The lab's API socket too, where a sandbox shows it.
            volumes: sandbox
                .volumes
                .iter()
                .cloned()
                .chain(sandbox.api_socket_dir.iter().map(|d| VolumeMount {
                    source: d.clone(),
                    target: PathBuf::from(crate::sandbox::API_SOCKET_DIR),
                }))
                .collect(),
            devices: sandbox.devices.clone(),
            run_as,
            network,
            log_path,
        })
    }
}

/// The arguments after `podman` that start `spec` detached, writing its
/// first process's pid to `pidfile`; `cgroup_parent` is the lab's control
/// group as podman names it.
pub fn run_args(
    spec: &ContainerSpec,
    pidfile: &Path,
    cgroup_parent: Option<&str>,
) -> Result<Vec<String>, LaunchError> {
    let (uid, gid) = spec.run_as;
    if uid == 0 || gid == 0 {
        return Err(LaunchError::Container(
            "a lab's container never runs as root".into(),
        ));
    }
    let mut a: Vec<String> = vec![
        "run".into(),
        "--detach".into(),
        format!("--name={}", spec.name),
        "--pull=never".into(),
        format!("--pidfile={}", pidfile.display()),
        "--read-only".into(),
        format!("--user={uid}:{gid}"),
        "--cap-drop=all".into(),
        "--security-opt=no-new-privileges".into(),
        "--log-driver=k8s-file".into(),
        format!("--log-opt=path={}", spec.log_path.display()),
        format!("--workdir={HOME_PATH}"),
        format!("--env=HOME={HOME_PATH}"),
        "--hostname=lab".into(),
    ];
    a.push(match &spec.network {
        ContainerNetwork::Namespace(path) => format!("--network=ns:{}", path.display()),
        ContainerNetwork::Host => "--network=host".into(),
    });
    if let Some(parent) = cgroup_parent {
        a.push(format!("--cgroup-parent={parent}"));
    }
    a.push(mount(&spec.workspace, Path::new(HOME_PATH), false)?);
    for v in &spec.volumes {
        a.push(mount(&v.source, &v.target, true)?);
    }
    for d in &spec.devices {
        a.push(format!("--device={}", plain_path(d)?));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
            return Err(LaunchError::Container(format!(
                "environment variable {k:?} cannot be passed"
            )));
        }
        a.push(format!("--env={k}={v}"));
    }
    for name in spec.private_env.names() {
        // Without a value: podman takes it from its own environment.
        a.push(format!("--env={name}"));
    }
    a.push(spec.image.clone());
    a.extend(spec.command.iter().cloned());
    Ok(a)
}

/// A path podman's `--mount` syntax can carry (no `,` or `=`, which
/// separate its fields).
fn plain_path(p: &Path) -> Result<String, LaunchError> {
    let s = p.display().to_string();
    if s.contains([',', '=', '\n']) || !p.is_absolute() {
        return Err(LaunchError::Container(format!(
            "{s:?} cannot be mounted into a container: a path without ',' or '=' is needed"
        )));
    }
    Ok(s)
}

fn mount(source: &Path, target: &Path, read_only: bool) -> Result<String, LaunchError> {
    let ro = if read_only { ",readonly" } else { "" };
    Ok(format!(
        "--mount=type=bind,source={},destination={}{ro}",
        plain_path(source)?,
        plain_path(target)?
    ))
}

/// A lab's running (or re-adopted) container.
#[derive(Debug)]
pub struct ContainerProcess {
    pub name: String,
    /// The container's first process, as the host sees it.
    pub pid: u32,
    /// Its start time in clock ticks since boot, to tell it from a later
    /// process that reuses the pid.
    pub start_ticks: u64,
    podman: Podman,
    /// The lab's control group, when it has one.
    cgroup: Option<(Cgroups, String)>,
    /// How it ended, once known.
    ended: Option<Option<i32>>,
}

impl ContainerProcess {
    /// Starts the container in the lab's control group `cgroup` (made here
    /// with its limits, like a sandbox's) and waits until podman has
    /// started it.
    pub async fn start(
        podman: &Podman,
        spec: &ContainerSpec,
        cgroup: Option<(&Cgroups, &str, crate::Limits)>,
    ) -> Result<ContainerProcess, LaunchError> {
        if let Some(dir) = spec.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LaunchError::Log {
                path: spec.log_path.display().to_string(),
                source,
            })?;
        }
        let pidfile = spec.log_path.with_extension("pid");
        let _ = std::fs::remove_file(&pidfile);
        let parent = match cgroup {
            Some((cgroups, name, limits)) => {
                cgroups.create(name, &limits).map_err(LaunchError::Limits)?;
                cgroups.parent_path(name)
            }
            None => None,
        };
        let args = run_args(spec, &pidfile, parent.as_deref())?;
        let mut cmd = podman.command();
        cmd.args(&args);
        let mut private: BTreeMap<&str, &str> = BTreeMap::new();
        for (name, value) in spec.private_env.pairs() {
            private.insert(name, value);
        }
        cmd.envs(private);
        let out = cmd.output().await.map_err(LaunchError::Spawn)?;
        let release = || {
            if let Some((c, n, _)) = cgroup {
                c.kill_and_remove(n);
            }
        };
        if !out.status.success() {
            // A container podman made but could not start goes too.
            let _ = podman
                .output("rm", &["rm", "--force", "--time=0", &spec.name])
                .await;
            release();
            return Err(LaunchError::Container(format!(
                "podman could not start the container: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| {
                LaunchError::Container("podman wrote no pid for the container".into())
            })?;
        let _ = std::fs::remove_file(&pidfile);
        Ok(ContainerProcess {
            name: spec.name.clone(),
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            podman: podman.clone(),
            cgroup: cgroup.map(|(c, n, _)| (c.clone(), n.to_owned())),
            ended: None,
        })
    }

    /// Finds a lab's container again after a platform restart: `None` when
    /// its first process is gone (or the pid now belongs to another one).
    pub fn adopt(
        podman: &Podman,
        name: &str,
        pid: u32,
        start: u64,
        cgroup: Option<(&Cgroups, &str)>,
    ) -> Option<ContainerProcess> {
        (start_ticks(pid)? == start && !is_zombie(pid)).then(|| ContainerProcess {
            name: name.to_owned(),
            pid,
            start_ticks: start,
            podman: podman.clone(),
            cgroup: cgroup.map(|(c, n)| (c.clone(), n.to_owned())),
            ended: None,
        })
    }

    /// Whether the container still runs (read from `/proc`, no podman
    /// call); its exit code once podman has been asked.
    pub fn status(&mut self) -> ExitStatus {
        if let Some(code) = self.ended {
            return ExitStatus::Exited(code);
        }
        if start_ticks(self.pid) == Some(self.start_ticks) && !is_zombie(self.pid) {
            ExitStatus::Running
        } else {
            ExitStatus::Exited(None)
        }
    }

    /// Asks podman how the container ended (once it has).
    pub async fn exit_code(&mut self) -> Option<i32> {
        if let Some(code) = self.ended {
            return code;
        }
        let code = self
            .podman
            .output(
                "inspect",
                &["inspect", "--format", "{{.State.ExitCode}}", &self.name],
            )
            .await
            .ok()
            .and_then(|s| s.trim().parse().ok());
        self.ended = Some(code);
        code
    }

    /// Whether the kernel killed a process of the lab for exceeding its
    /// memory limit.
    pub fn out_of_memory(&self) -> bool {
        self.cgroup
            .as_ref()
            .is_some_and(|(c, name)| c.oom_kills(name) > 0)
    }

    /// The memory limit of the lab's control group, where one is set.
    pub fn memory_limit(&self) -> Option<u64> {
        let (c, name) = self.cgroup.as_ref()?;
        c.memory_limit(name)
    }

    /// Stops the container (SIGTERM, SIGKILL after `grace`), removes it,
    /// and kills whatever is left in the lab's control group.
    pub async fn stop(&mut self, grace: Duration) {
        let time = format!("--time={}", grace.as_secs());
        if let Err(e) = self
            .podman
            .output("rm", &["rm", "--force", &time, &self.name])
            .await
        {
            tracing::warn!(container = %self.name, error = %e, "podman could not remove a lab's container");
        }
        if let Some((c, name)) = &self.cgroup {
            let (c, name) = (c.clone(), name.clone());
            let removed = tokio::task::spawn_blocking(move || {
                let removed = c.kill_and_remove(&name);
                c.remove_elsewhere(&name);
                removed
            })
            .await
            .unwrap_or(false);
            if !removed {
                tracing::warn!(container = %self.name, "a container's control group could not be removed");
            }
        }
        if self.ended.is_none() {
            self.ended = Some(None);
        }
    }
}

/// Removes a container that is left over (its lab ended while the platform
/// was down); a container that is not there is no error.
pub async fn remove(podman: &Podman, name: &str) -> Result<(), PodmanError> {
    podman
        .output("rm", &["rm", "--force", "--ignore", "--time=2", name])
        .await
        .map(|_| ())
}

/// The last `n` lines a container wrote, from its `k8s-file` log: each
/// record is `<time> <stream> <F|P> <text>`, `P` marking a piece of a line
/// that continues in the next record.
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for record in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let mut fields = record.splitn(4, ' ');
        let (_, _, tag, text) = (fields.next(), fields.next(), fields.next(), fields.next());
        match tag {
            Some("P") => partial.push_str(text.unwrap_or("")),
            Some("F") => {
                partial.push_str(text.unwrap_or(""));
                lines.push(std::mem::take(&mut partial));
            }
            // Not a record (the first one cut by the seek).
            _ => {}
        }
    }
    if !partial.is_empty() {
        lines.push(partial);
    }
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        let mut private_env = PrivateEnv::default();
        private_env.set("INSITU_LAB_SECRET", "s3cret");
        ContainerSpec {
            name: "insitu-lab-x".into(),
            image: "localhost/insitu-devlab/t:1-0".into(),
            command: vec!["python3".into(), "/opt/app.py".into(), "8000".into()],
            env: vec![("A".into(), "b".into())],
            private_env,
            workspace: "/data/workspaces/ann".into(),
            volumes: vec![VolumeMount {
                source: "/srv/deep".into(),
                target: "/media/data/deep".into(),
            }],
            devices: Vec::new(),
            run_as: (65534, 65534),
            network: ContainerNetwork::Namespace("/run/netns/insitu-u1".into()),
            log_path: "/data/labs/x/lab.log".into(),
        }
    }

    #[test]
    fn a_lab_container_is_unprivileged_read_only_and_keeps_its_secret_off_the_command_line() {
        let args = run_args(
            &spec(),
            Path::new("/data/labs/x/lab.pid"),
            Some("/insitu/x"),
        )
        .unwrap();
        for a in [
            "--read-only",
            "--user=65534:65534",
            "--cap-drop=all",
            "--security-opt=no-new-privileges",
            "--pull=never",
            "--network=ns:/run/netns/insitu-u1",
            "--cgroup-parent=/insitu/x",
            "--mount=type=bind,source=/data/workspaces/ann,destination=/home/user",
            "--mount=type=bind,source=/srv/deep,destination=/media/data/deep,readonly",
            "--env=A=b",
            "--env=INSITU_LAB_SECRET",
        ] {
            assert!(args.iter().any(|x| x == a), "{a} in {args:?}");
        }
        assert!(!args.join(" ").contains("s3cret"));
        let image = args
            .iter()
            .position(|a| a == "localhost/insitu-devlab/t:1-0")
            .unwrap();
        assert_eq!(args[image + 1..], ["python3", "/opt/app.py", "8000"]);
        let mut root = spec();
        root.run_as = (0, 0);
        assert!(run_args(&root, Path::new("/p"), None).is_err());
        let mut comma = spec();
        comma.volumes[0].source = "/srv/a,readonly=false".into();
        assert!(run_args(&comma, Path::new("/p"), None).is_err());
    }

    #[test]
    fn the_log_is_read_back_as_the_tool_wrote_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lab.log");
        std::fs::write(
            &p,
            "2026-01-01T00:00:00.1+00:00 stdout F listening on 8000\n\
             2026-01-01T00:00:00.2+00:00 stderr P half a \n\
             2026-01-01T00:00:00.3+00:00 stderr F line\n\
             2026-01-01T00:00:00.4+00:00 stdout F \n",
        )
        .unwrap();
        assert_eq!(log_tail(&p, 10), ["listening on 8000", "half a line", ""]);
        assert_eq!(log_tail(&p, 1), [""]);
    }
}
