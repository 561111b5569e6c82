//! How a command is run: what a job asks for ([`CommandSpec`], with the
//! binds a sandbox or container makes of it, [`step_binds`]), the
//! [`Executor`] trait, the local process executor and the process plumbing
//! (redirections, time limit) shared with the bubblewrap sandbox executor
//! in [`crate::sandbox`], the run's shared sandbox in [`crate::spawner`] and
//! podman in [`crate::container`] and Slurm in [`crate::slurm`]. This
//! module depends on none of them.

use crate::error::{CwlError, Result};
use insitu_launcher::sandbox::{Bind, StepBinds};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

/// A fully prepared command: argv, working directory, environment, redirections.
#[derive(Clone, Debug, Default)]
pub struct CommandSpec {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working (output) directory.
    pub cwd: PathBuf,
    /// Temporary directory offered to the tool.
    pub tmpdir: PathBuf,
    /// The complete environment of the process.
    pub env: BTreeMap<String, String>,
    /// File to connect to standard input.
    pub stdin: Option<PathBuf>,
    /// File receiving standard output.
    pub stdout: Option<PathBuf>,
    /// File receiving standard error.
    pub stderr: Option<PathBuf>,
    /// The job's log: where standard output and error go when the tool
    /// does not capture them (appended; made by the engine beforehand),
    /// instead of the engine's standard error.
    pub log: Option<PathBuf>,
    /// Wall-clock limit (`ToolTimeLimit`).
    pub timeout: Option<Duration>,
    /// Paths the tool reads (input files, the staging directory), for
    /// sandboxes that bind them read-only.
    pub read_only_paths: Vec<PathBuf>,
    /// Paths outside `cwd` and `tmpdir` the tool may change (inputs updated
    /// in place), for sandboxes that bind them read-write.
    pub read_write_paths: Vec<PathBuf>,
    /// Whether the tool may use the network (`NetworkAccess`).
    pub network: bool,
    /// The container to run in (`DockerRequirement`), for the container
    /// executor ([`crate::container`]).
    pub container: Option<ContainerRun>,
    /// What the job asks of a scheduler (ResourceRequirement,
    /// CUDARequirement), for executors that reserve it ([`crate::slurm`]).
    pub resources: JobResources,
    /// The job's number in the run's event stream, for executors that
    /// report where it ran.
    pub job: Option<u64>,
}

/// Cores, memory and GPUs one job asks for, as its requirements work out
/// (one core and 1,024 MiB when it declares none, as its `runtime` says).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JobResources {
    /// CPU cores (at least 1).
    pub cores: u64,
    /// Memory in MiB.
    pub ram_mib: u64,
    /// GPUs (`cwltool:CUDARequirement`'s `cudaDeviceCountMin`).
    pub gpus: u64,
}

impl Default for JobResources {
    fn default() -> Self {
        JobResources {
            cores: 1,
            ram_mib: 1024,
            gpus: 0,
        }
    }
}

/// What a job needs of a container: the image and the places its
/// directories appear inside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerRun {
    /// Image name or id, made available by
    /// [`crate::container::Podman::ensure_image`].
    pub image: String,
    /// Where the job's output directory (and working directory) appears.
    pub outdir: PathBuf,
    /// Host files or directories shown at other paths inside:
    /// `(host, container, writable)` (absolute `entryname`s of
    /// InitialWorkDirRequirement).
    pub mounts: Vec<(PathBuf, PathBuf, bool)>,
}

/// The job's binds: read-only inputs first (paths that exist, without ones
/// inside the writable directories or already covered by a parent), then
/// the writable directories. Paths are bound as the tool sees them, not
/// resolved: a staged link may point at another job's output link, and
/// bubblewrap resolves the source while the link's own path must exist.
pub fn step_binds(spec: &CommandSpec) -> StepBinds {
    let abs = |p: &Path| -> Option<PathBuf> {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        p.exists().then_some(p)
    };
    let mut writable: Vec<PathBuf> = vec![];
    for p in [&spec.cwd, &spec.tmpdir]
        .into_iter()
        .chain(&spec.read_write_paths)
        .filter_map(|p| abs(p))
    {
        if !writable.contains(&p) {
            writable.push(p);
        }
    }
    let mut ro: Vec<PathBuf> = spec
        .read_only_paths
        .iter()
        .filter_map(|p| abs(p))
        .filter(|p| !writable.iter().any(|w| p.starts_with(w)))
        .collect();
    ro.sort();
    ro.dedup();
    let mut kept: Vec<PathBuf> = Vec::with_capacity(ro.len());
    for p in ro {
        if !kept.iter().any(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    let binds = kept
        .into_iter()
        .map(|path| Bind {
            path,
            writable: false,
        })
        .chain(writable.into_iter().map(|path| Bind {
            path,
            writable: true,
        }))
        .collect();
    StepBinds {
        binds,
        workdir: Some(spec.cwd.clone()),
    }
}

/// Boxed future returned by executors.
pub type ExecFuture<'a> = Pin<Box<dyn Future<Output = Result<i32>> + Send + 'a>>;

/// Something that can run a [`CommandSpec`] and report its exit code.
pub trait Executor: Send + Sync {
    /// Run the command to completion and return its exit status.
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a>;

    /// Release what it holds for the run (Slurm allocations) once no job
    /// runs any more; by default nothing.
    fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Runs commands as plain local child processes.
#[derive(Debug, Default)]
pub struct LocalExecutor {
    /// The user and group commands run as, when not the engine's.
    pub run_as: Option<(u32, u32)>,
}

impl Executor for LocalExecutor {
    fn run<'a>(&'a self, spec: &'a CommandSpec) -> ExecFuture<'a> {
        Box::pin(async move {
            let Some(prog) = spec.argv.first() else {
                return Err(CwlError::Execution("empty command line".into()));
            };
            let program = resolve_program(prog, spec.env.get("PATH").map(String::as_str));
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(&spec.argv[1..])
                .current_dir(&spec.cwd)
                .env_clear()
                .envs(&spec.env);
            run_as(&mut cmd, self.run_as);
            run_to_end(cmd, spec).await
        })
    }
}

/// Start `cmd` as `run_as` (user, group), without supplementary groups,
/// when given.
pub fn run_as(cmd: &mut tokio::process::Command, run_as: Option<(u32, u32)>) {
    if let Some((uid, gid)) = run_as {
        // Dropping from root also drops supplementary groups.
        cmd.uid(uid).gid(gid);
    }
}

/// The executable `prog` names: itself when it contains a `/`, else the
/// first executable file of that name in `path`. Resolving here, not in the
/// child, lets the standard library start it with `posix_spawn` instead of
/// forking the whole engine (and saves a failed `execve` per `PATH` entry).
pub(crate) fn resolve_program(prog: &str, path: Option<&str>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if prog.contains('/') {
        return PathBuf::from(prog);
    }
    path.into_iter()
        .flat_map(|p| p.split(':'))
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(prog))
        .find(|c| {
            std::fs::metadata(c).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(prog))
}

/// A job's log, opened for appending (made when missing).
pub(crate) fn append_to(p: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
}

/// Connect the redirections of `spec` to `cmd`, run it and wait for it
/// within the time limit; on timeout the process is killed.
pub(crate) async fn run_to_end(
    mut cmd: tokio::process::Command,
    spec: &CommandSpec,
) -> Result<i32> {
    let prog = spec.argv.first().map(String::as_str).unwrap_or("");
    cmd.kill_on_drop(true);
    cmd.stdin(match &spec.stdin {
        Some(p) => Stdio::from(
            std::fs::File::open(p)
                .map_err(|e| CwlError::Execution(format!("stdin {}: {e}", p.display())))?,
        ),
        None => Stdio::null(),
    });
    let log = match &spec.log {
        Some(p) => Some(append_to(p)?),
        None => None,
    };
    cmd.stdout(match (&spec.stdout, &log) {
        (Some(p), _) => Stdio::from(std::fs::File::create(p)?),
        (None, Some(l)) => Stdio::from(l.try_clone()?),
        (None, None) => Stdio::from(std::io::stderr()),
    });
    cmd.stderr(match (&spec.stderr, log) {
        (Some(p), _) => Stdio::from(std::fs::File::create(p)?),
        (None, Some(l)) => Stdio::from(l),
        (None, None) => Stdio::inherit(),
    });
    let mut child = cmd
        .spawn()
        .map_err(|e| CwlError::Execution(format!("cannot start '{prog}': {e}")))?;
    let status = match spec.timeout {
        Some(t) => match tokio::time::timeout(t, child.wait()).await {
            Ok(s) => s?,
            Err(_) => {
                let _ = child.kill().await;
                return Err(CwlError::Execution(format!(
                    "'{prog}' exceeded the time limit of {t:?}"
                )));
            }
        },
        None => child.wait().await?,
    };
    Ok(status.code().unwrap_or(-1))
}
