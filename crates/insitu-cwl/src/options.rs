//! What a run is asked to do: [`RunOptions`] and the modes inside it. The
//! command line ([`crate::cli`]) and the platform fill them in; nothing here
//! does any work.

use std::path::PathBuf;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Final output directory.
    pub outdir: PathBuf,
    /// Maximum number of concurrently running tools.
    pub parallel: usize,
    /// Suppress progress messages.
    pub quiet: bool,
    /// What `DockerRequirement` does.
    pub containers: ContainerMode,
    /// Time limit of one JavaScript expression evaluation.
    pub js_timeout: std::time::Duration,
    /// Whether tools run in a bubblewrap sandbox.
    pub sandbox: SandboxMode,
    /// Give every job a sandbox of its own instead of running the jobs
    /// that can in the run's shared sandbox ([`crate::spawner`]).
    pub sandbox_per_step: bool,
    /// Host paths shown read-only inside sandboxes (tool installations under
    /// `/home`, `/root` or `/tmp`).
    pub sandbox_expose: Vec<PathBuf>,
    /// Write a Workflow Run RO-Crate of the run into this directory.
    pub provenance: Option<PathBuf>,
    /// Keep a progress line (jobs done/running/total) on stderr, which
    /// must be a terminal; replaces the per-command log lines.
    pub progress: bool,
    /// Reuse the results of CommandLineTool jobs stored in this directory,
    /// and store new ones there ([`crate::cache`]).
    pub cachedir: Option<PathBuf>,
    /// What the run may read and whom its tools run as.
    pub confinement: Confinement,
    /// Write the run's event stream to this file ([`crate::events`]).
    pub events: Option<PathBuf>,
    /// Give every tool job a log file in this directory for what it writes
    /// and does not capture (named in its events).
    pub step_logs: Option<PathBuf>,
    /// Make the jobs' directories in a new directory (`run-N`) of this
    /// one, and keep them after the run, instead of in a temporary
    /// directory removed at the end.
    pub workdir: Option<PathBuf>,
    /// Host paths no job's sandbox shows (the platform's data directory).
    pub hidden: Vec<PathBuf>,
    /// Run CommandLineTool jobs on a Slurm cluster ([`crate::slurm`]).
    pub slurm: Option<SlurmOptions>,
}

/// Where and how jobs go to Slurm (`--slurm`, `--slurm-conf` ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmOptions {
    /// The cluster's `slurm.conf` (`SLURM_CONF` of the Slurm commands);
    /// `None` keeps the commands' default.
    pub conf: Option<PathBuf>,
    /// Partition (`--partition`), else the cluster's default.
    pub partition: Option<String>,
    /// Account charged (`--account`), else the user's default.
    pub account: Option<String>,
    /// Jobs share allocations, or each is a batch job of its own.
    pub grouping: Grouping,
    /// An allocation with no job for this long is released.
    pub idle: std::time::Duration,
    /// At most this many allocations of one size at a time.
    pub max_allocations: usize,
    /// The name every Slurm job of the run carries (`--job-name`), unique
    /// to the run, so that all of them can be cancelled together.
    pub job_name: String,
}

/// How jobs map onto Slurm jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Grouping {
    /// Jobs run in allocations the run holds (an `srun` each, with this
    /// engine's spawner inside), several at a time and one after another.
    #[default]
    Allocations,
    /// Every job is a batch job of its own (`sbatch --wait`).
    None,
}

impl SlurmOptions {
    /// Defaults for a cluster whose `slurm.conf` is `conf`, with a job name
    /// unique to this process and moment.
    pub fn new(conf: Option<PathBuf>) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        SlurmOptions {
            conf,
            partition: None,
            account: None,
            grouping: Grouping::Allocations,
            idle: std::time::Duration::from_secs(10),
            max_allocations: 4,
            job_name: format!("insitu-cwl-{}-{nanos:x}", std::process::id()),
        }
    }
}

/// Limits for a run made on a user's behalf (the platform's pipeline
/// runs): `insitu cwl run --allow-root DIR... --run-as UID:GID`. The
/// default is a user's own run: their documents and inputs from anywhere
/// they can read, tools as the engine's user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confinement {
    /// Documents, job orders and every input File and Directory must lie,
    /// links resolved, under one of these directories (the run's own
    /// directory is added); `None` leaves them unlimited.
    pub roots: Option<Vec<PathBuf>>,
    /// The unprivileged user and group every tool runs as, without
    /// capabilities (never 0; the engine must run as root to switch);
    /// `None` keeps the engine's.
    pub run_as: Option<(u32, u32)>,
}

impl Confinement {
    /// Whether the run is made on someone's behalf: then container builds
    /// (`dockerFile`, `dockerImport`) get the network only with
    /// `NetworkAccess`, as the tools do.
    pub fn is_confined(&self) -> bool {
        self.roots.is_some() || self.run_as.is_some()
    }
}

/// What `DockerRequirement` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContainerMode {
    /// The tool runs in a podman container. Without a working podman, a
    /// requirement is unsupported (exit 33) and a hint is ignored.
    #[default]
    Auto,
    /// Ignored: tools run on the host, in the sandbox (`--no-container`).
    Off,
    /// Unsupported: exit 33 (`--reject-docker`).
    Reject,
}

/// Whether CommandLineTools run in a bubblewrap sandbox
/// ([`crate::sandbox::SandboxExecutor`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Sandboxed, or the run fails before any tool runs
    /// ([`crate::CwlError::NoSandbox`]).
    #[default]
    Required,
    /// Plain local processes, only when asked for (`--no-sandbox`).
    Off,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            outdir: PathBuf::from("."),
            parallel: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            quiet: false,
            containers: ContainerMode::Auto,
            js_timeout: std::time::Duration::from_secs(20),
            sandbox: SandboxMode::Required,
            sandbox_per_step: false,
            sandbox_expose: vec![],
            provenance: None,
            progress: false,
            cachedir: None,
            confinement: Confinement::default(),
            events: None,
            step_logs: None,
            workdir: None,
            hidden: vec![],
            slurm: None,
        }
    }
}
