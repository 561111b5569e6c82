//! Settings of the platform's services, and what is wrong with them. Every
//! field has a default, so the embedded default needs no file at all.

use std::path::{Path, PathBuf};

use insitu_domain::datalab::QuantityError;
use insitu_domain::volume::VolumeConfig;
use insitu_domain::{DefinitionError, NameError, Secret};
use serde::{Deserialize, Serialize};

/// What the platform's services are built from (the server's
/// configuration less what only HTTP needs). Its secrets are [`Secret`]s,
/// so `Debug` shows none.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Where the platform keeps its state (SQLite file, workspaces, lab
    /// logs).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Defaults to
    /// `sqlite://<data_dir>/insitu.db`.
    pub database_url: Option<Secret>,
    /// Directory of datalab definitions, one `<name>.toml` per datalab.
    pub catalogue_dir: PathBuf,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub admin: AdminConfig,
    pub labs: LabsConfig,
    pub pipelines: PipelinesConfig,
    /// Data volumes offered in the catalogue.
    pub volumes: Vec<VolumeConfig>,
    /// Datazones beside this machine's `local` (`[[zones]]`).
    pub zones: Vec<insitu_domain::zone::ZoneConfig>,
    /// User-developed datalabs: builds, images, imports.
    pub devlabs: DevlabsConfig,
    /// Each user's and each team's share of the platform.
    pub quotas: QuotasConfig,
    /// How the platform's use is sampled for the operator's console.
    pub usage: UsageConfig,
    /// Applications for an account: the waiting list and its limits.
    pub access: AccessConfig,
    /// The configuration file the server was started with, if any: labs
    /// never see it.
    pub config_file: Option<PathBuf>,
}

impl PlatformConfig {
    pub fn database_url(&self) -> Secret {
        self.database_url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}",
                self.data_dir.join("insitu.db").display()
            ))
        })
    }

    /// What no lab may see: the data directory, the configuration file,
    /// the SQLite database (its directory, so that its `-wal`, `-shm` and
    /// `-journal` files made later are covered too; the files themselves
    /// when it sits at the top of the file system) and the operator's
    /// `labs.hidden`.
    pub fn hidden_from_labs(&self, data_dir: &Path) -> Vec<PathBuf> {
        let mut hidden = vec![data_dir.to_owned()];
        hidden.extend(self.config_file.iter().cloned());
        if let Some(db) = sqlite_path(self.database_url().expose()) {
            let db = std::path::absolute(&db).unwrap_or(db);
            match db.parent() {
                Some(dir) if dir.components().count() > 2 => hidden.push(dir.to_owned()),
                _ => {
                    for suffix in ["", "-wal", "-shm", "-journal"] {
                        let mut name = db.as_os_str().to_owned();
                        name.push(suffix);
                        hidden.push(PathBuf::from(name));
                    }
                }
            }
        }
        hidden.extend(self.labs.hidden.iter().cloned());
        hidden
    }
}

/// The file of a `sqlite:` database URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A browser session ends this long after login, whatever happens
    /// (`90s`, `30m`, `12h`, `7d`).
    pub lifetime: String,
    /// A browser session ends after this long without a request.
    pub idle_timeout: String,
    /// Minimum password length for new passwords.
    pub min_password_length: usize,
}

/// The local sandbox datazone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LabsConfig {
    /// Labs a user may have at once (pending, starting or running).
    pub max_per_user: usize,
    /// How long a tool may take to answer on its readiness path.
    pub start_timeout: String,
    /// The bubblewrap program.
    pub bwrap: PathBuf,
    /// Directories put first on the `PATH` of every lab, e.g. the
    /// virtualenv holding JupyterLab.
    pub tool_path: Vec<PathBuf>,
    /// Host directories shown read-only in every lab at the same path, for
    /// tools installed outside the system directories. The directory above
    /// each `tool_path` entry (a virtualenv's root) is shown too.
    pub expose: Vec<PathBuf>,
    /// The unprivileged user id and group id labs run as; workspaces are
    /// owned by them. Never 0.
    pub run_as_uid: u32,
    pub run_as_gid: u32,
    /// Running labs with no proxied traffic (requests or WebSocket frames)
    /// for this long are stopped (`0s` or unset: never).
    pub idle_timeout: Option<String>,
    /// The datazone's GPUs by device index (`["0", "1"]`); unset: detected
    /// with `nvidia-smi -L` at start.
    pub gpus: Option<Vec<String>>,
    /// `user` (default): all labs of a user share one network namespace
    /// with only loopback; no other user's lab, and no service on the
    /// host's loopback, can be reached from it, and it has no outbound
    /// network. `host`: labs share the host's network (weaker: a lab can
    /// reach other labs' ports).
    pub network: LabNetworkMode,
    /// Enforce each datalab's memory and CPU (its `[resources]`) and the
    /// process limit with control groups, where the kernel allows it.
    pub enforce_limits: bool,
    /// Processes (and threads) one lab may have at once.
    pub max_processes: u64,
    /// Labs that may be starting at once; further launches wait, queued,
    /// until one of them is running or has failed.
    pub max_starting: usize,
    /// How long a user's network namespace outlives their last lab (a
    /// relaunch within it reuses the namespace).
    pub network_linger: String,
    /// Host paths no lab may see, besides the platform's data directory,
    /// its configuration file and its database, which are always hidden:
    /// directories or files holding the platform's secrets.
    pub hidden: Vec<PathBuf>,
    /// The limits of each user's SAMP hub, which runs in a control group of
    /// its own like a lab.
    pub samp_hub: SampHubConfig,
}

/// What each user and each team may use, unless an administrator sets
/// another quota for one of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotasConfig {
    /// Each user's workspace (their lab's home: `my_workspace` and the
    /// tools' settings), e.g. `10GiB`.
    pub user_workspace: String,
    /// Each team's workspace (`team_workspaces/<team>`).
    pub team_workspace: String,
    /// Keep each workspace in a file system image of its own, so that the
    /// kernel stops a write past the quota (where the host can: the
    /// platform runs as root and has loop devices). `false`, or a host
    /// that cannot: plain directories, whose use is shown against the
    /// quota but not limited.
    pub workspace_images: bool,
    /// What one user's active labs may hold at once, each lab counted with
    /// its datalab's `[resources]`: cores' worth of CPU, memory (`16GiB`)
    /// and GPUs. Unset: no limit. (How many labs: `labs.max_per_user`.)
    pub cpu: Option<f64>,
    pub memory: Option<String>,
    pub gpus: Option<u32>,
}

impl Default for QuotasConfig {
    fn default() -> Self {
        QuotasConfig {
            user_workspace: "10GiB".to_owned(),
            team_workspace: "50GiB".to_owned(),
            workspace_images: true,
            cpu: None,
            memory: None,
            gpus: None,
        }
    }
}

impl QuotasConfig {
    /// The default compute quota of each user, with `labs` labs.
    pub fn lab_limits(&self, labs: usize) -> Result<insitu_store::LabLimits, ConfigError> {
        let memory = match &self.memory {
            Some(m) => Some(insitu_domain::datalab::parse_bytes(m).map_err(|reason| {
                ConfigError::Quantity {
                    setting: "quotas.memory",
                    reason,
                }
            })?),
            None => None,
        };
        Ok(insitu_store::LabLimits {
            labs,
            cpu_millis: self.cpu.map(cpu_millis),
            memory_bytes: memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
            gpus: self.gpus.map(i64::from),
        })
    }

    /// The default workspace quotas in bytes: a user's, a team's.
    pub fn workspace_bytes(&self) -> Result<(u64, u64), ConfigError> {
        let parse = |setting, v: &str| {
            insitu_domain::datalab::parse_bytes(v)
                .map_err(|reason| ConfigError::Quantity { setting, reason })
        };
        Ok((
            parse("quotas.user_workspace", &self.user_workspace)?,
            parse("quotas.team_workspace", &self.team_workspace)?,
        ))
    }
}

/// Cores' worth of CPU in thousandths of a core.
pub fn cpu_millis(cores: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let m = (cores.max(0.0) * 1000.0).round().min(1e15) as i64;
    m
}

/// The control group of a user's SAMP hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampHubConfig {
    /// Hard memory limit (`256MiB`).
    pub memory: String,
    /// Cores' worth of CPU time.
    pub cpu: f64,
    /// Processes and threads.
    pub max_processes: u64,
}

impl Default for SampHubConfig {
    fn default() -> Self {
        SampHubConfig {
            memory: "256MiB".to_owned(),
            cpu: 0.5,
            max_processes: 64,
        }
    }
}

impl SampHubConfig {
    pub fn memory_bytes(&self) -> Result<u64, ConfigError> {
        insitu_domain::datalab::parse_bytes(&self.memory).map_err(|reason| ConfigError::Quantity {
            setting: "labs.samp_hub.memory",
            reason,
        })
    }
}

/// User-developed datalabs: how their OCI images are built with podman,
/// which base images they build on, and what is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevlabsConfig {
    /// The podman program (it also runs the labs of datalabs with an
    /// image).
    pub podman: PathBuf,
    /// The OCI runtime podman uses.
    pub runtime: String,
    /// The templates' base image with Python 3, venv and pip (made once
    /// per machine by `scripts/devlab-images.sh`).
    pub python_image: String,
    /// The templates' base image with the desktop session's programs.
    pub desktop_image: String,
    /// Further images a Containerfile may build on (`FROM`).
    pub extra_base_images: Vec<String>,
    /// Where the built images are named: `<repository>/<datalab>:<build version>`.
    pub repository: String,
    /// The podman network build steps use: a bridge of its own, never the
    /// host's network namespace (made when missing). `none` turns the
    /// network off (builds then install nothing from PyPI or Debian).
    pub build_network: String,
    /// Memory, CPU cores and processes a build may use at once.
    pub build_memory: String,
    pub build_cpus: f64,
    pub build_max_processes: u64,
    /// A build is stopped after this long.
    pub build_timeout: String,
    /// Builds that run at once; more wait their turn.
    pub concurrent_builds: usize,
    /// Images kept per datalab: the newest successful builds, besides
    /// every build submitted for publication or published.
    pub keep_builds: usize,
    /// The largest export an import accepts.
    pub max_import_size: String,
}

impl Default for DevlabsConfig {
    fn default() -> Self {
        DevlabsConfig {
            podman: PathBuf::from("/usr/bin/podman"),
            runtime: "runc".to_owned(),
            python_image: "localhost/insitu/python:3".to_owned(),
            desktop_image: "localhost/insitu/desktop:1".to_owned(),
            extra_base_images: Vec::new(),
            repository: "localhost/insitu-devlab".to_owned(),
            build_network: "insitu-build".to_owned(),
            build_memory: "4GiB".to_owned(),
            build_cpus: 2.0,
            build_max_processes: 4096,
            build_timeout: "30m".to_owned(),
            concurrent_builds: 1,
            keep_builds: 3,
            max_import_size: "4GiB".to_owned(),
        }
    }
}

impl DevlabsConfig {
    /// Checks the settings that could stop builds or imports later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        insitu_domain::datalab::parse_duration(&self.build_timeout).map_err(|reason| {
            ConfigError::Duration {
                setting: "devlabs.build_timeout",
                reason,
            }
        })?;
        for (setting, size) in [
            ("devlabs.build_memory", &self.build_memory),
            ("devlabs.max_import_size", &self.max_import_size),
        ] {
            insitu_domain::datalab::parse_bytes(size)
                .map_err(|reason| ConfigError::Size { setting, reason })?;
        }
        for image in [&self.python_image, &self.desktop_image]
            .into_iter()
            .chain(&self.extra_base_images)
        {
            insitu_domain::datalab::check_image_reference(image).map_err(|reason| {
                ConfigError::Image {
                    setting: "devlabs base images",
                    reason,
                }
            })?;
        }
        if self.concurrent_builds == 0 || !self.build_cpus.is_finite() || self.build_cpus <= 0.0 {
            return Err(ConfigError::DevlabsLimits);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabNetworkMode {
    User,
    Host,
}

impl Default for LabsConfig {
    fn default() -> Self {
        LabsConfig {
            max_per_user: 2,
            start_timeout: "60s".to_owned(),
            bwrap: PathBuf::from("/usr/bin/bwrap"),
            tool_path: Vec::new(),
            expose: Vec::new(),
            run_as_uid: 65534,
            run_as_gid: 65534,
            idle_timeout: Some("24h".to_owned()),
            gpus: None,
            network: LabNetworkMode::User,
            enforce_limits: true,
            max_processes: 4096,
            max_starting: 10,
            network_linger: "5m".to_owned(),
            hidden: vec![PathBuf::from("/etc/insitu")],
            samp_hub: SampHubConfig::default(),
        }
    }
}

impl LabsConfig {
    pub fn idle_timeout(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        match self.idle_timeout.as_deref() {
            None | Some("0s") | Some("0") => Ok(None),
            Some(t) => insitu_domain::datalab::parse_duration(t)
                .map(|s| Some(std::time::Duration::from_secs(s)))
                .map_err(|reason| ConfigError::Duration {
                    setting: "labs.idle_timeout",
                    reason,
                }),
        }
    }

    pub fn network_linger(&self) -> Result<std::time::Duration, ConfigError> {
        insitu_domain::datalab::parse_duration(&self.network_linger)
            .map(std::time::Duration::from_secs)
            .map_err(|reason| ConfigError::Duration {
                setting: "labs.network_linger",
                reason,
            })
    }

    /// The configured GPUs, or those `nvidia-smi -L` lists.
    pub fn gpu_inventory(&self) -> Vec<String> {
        if let Some(g) = &self.gpus {
            return g.clone();
        }
        std::process::Command::new("nvidia-smi")
            .arg("-L")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("GPU ")?.split(':').next().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn start_timeout_secs(&self) -> u64 {
        insitu_domain::datalab::parse_duration(&self.start_timeout).unwrap_or(60)
    }
}

/// Pipelines and their runs on the local sandbox datazone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelinesConfig {
    /// Directory of the system pipelines shipped with the platform, one
    /// directory per pipeline (its CWL files and `pipeline.toml`).
    pub catalogue_dir: PathBuf,
    /// The CWL engine (`insitu-cwl`); unset: the one beside the `insitu`
    /// program (the server fills it in), without which nothing runs.
    pub engine: Option<PathBuf>,
    /// Runs executing at once on this datazone; the others wait in the
    /// queue, served in turn between users.
    pub slots: usize,
    /// Runs one user may have executing at once.
    pub max_running_per_user: usize,
    /// Runs one user may have waiting in the queue.
    pub max_queued_per_user: usize,
    /// Tool jobs one run executes at once (unset: the machine's cores).
    pub parallel: Option<usize>,
    /// Job directories and the cache of ended runs are removed this long
    /// after they end; outputs, logs, events and provenance stay ("0s":
    /// kept for ever).
    pub keep_intermediate: String,
}

impl Default for PipelinesConfig {
    fn default() -> Self {
        PipelinesConfig {
            catalogue_dir: PathBuf::from("catalogue/pipelines"),
            engine: None,
            slots: 4,
            max_running_per_user: 2,
            max_queued_per_user: 100,
            parallel: None,
            keep_intermediate: "7d".to_owned(),
        }
    }
}

impl PipelinesConfig {
    /// How long intermediate files are kept, `None` for ever.
    pub fn keep_intermediate(&self) -> Result<Option<std::time::Duration>, ConfigError> {
        match self.keep_intermediate.as_str() {
            "0s" | "0" => Ok(None),
            t => insitu_domain::datalab::parse_duration(t)
                .map(|s| Some(std::time::Duration::from_secs(s)))
                .map_err(|reason| ConfigError::Duration {
                    setting: "pipelines.keep_intermediate",
                    reason,
                }),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.keep_intermediate()?;
        if self.slots == 0 || self.max_running_per_user == 0 || self.parallel == Some(0) {
            return Err(ConfigError::PipelineSlots);
        }
        Ok(())
    }
}

/// How the platform's use over time (labs running, CPU, storage) is
/// sampled into the store for the operator's console, and kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageConfig {
    /// Time between samples (`5m`); each sample walks the workspaces to
    /// count their bytes.
    pub sample_every: String,
    /// How long samples are kept (`90d`).
    pub retention: String,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            sample_every: "5m".to_owned(),
            retention: "90d".to_owned(),
        }
    }
}

impl UsageConfig {
    /// (time between samples, retention), in seconds.
    pub fn parsed(&self) -> Result<(u64, u64), ConfigError> {
        let parse = |setting: &'static str, v: &str| {
            insitu_domain::datalab::parse_duration(v)
                .map_err(|reason| ConfigError::Duration { setting, reason })
        };
        Ok((
            parse("usage.sample_every", &self.sample_every)?,
            parse("usage.retention", &self.retention)?,
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Username of the administrator created on first start.
    pub username: String,
    /// Their password; when unset a random one is generated and printed once.
    pub password: Option<Secret>,
}

/// How failed logins are counted and how much password checking the
/// server does at once. Failures are counted per account and client
/// address, per client address and per account, each in a window; a check
/// is refused before the password is verified once a count is reached,
/// so parallel guesses get no more tries than sequential ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed logins for one account from one client address per window.
    pub failures_per_client: u32,
    /// Failed logins from one client address, whatever the accounts
    /// (password spraying).
    pub failures_per_address: u32,
    /// Failed logins for one account from all addresses together (guessing
    /// spread over many addresses). Reaching it makes the account wait
    /// from every address, so it is set well above `failures_per_client`.
    pub failures_per_account: u32,
    /// How long the counts last (`5m`).
    pub window: String,
    /// Most counters kept per kind; when full, expired ones and then the
    /// oldest are forgotten, so usernames or addresses an attacker invents
    /// cannot grow the server's memory.
    pub max_tracked: usize,
    /// Passwords verified or hashed at once (each Argon2 check takes about
    /// 19 MiB and a core for tens of milliseconds).
    pub concurrent_checks: usize,
    /// Checks that may wait for a free slot; past that a login is answered
    /// `rate_limited` at once instead of queueing.
    pub queued_checks: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            failures_per_client: 10,
            failures_per_address: 100,
            failures_per_account: 100,
            window: "5m".to_owned(),
            max_tracked: 10_000,
            concurrent_checks: std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            queued_checks: 64,
        }
    }
}

impl LoginConfig {
    /// The window in seconds; the configuration is checked at start.
    pub fn window_secs(&self) -> i64 {
        secs(&self.window, 300)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        insitu_domain::datalab::parse_duration(&self.window).map_err(|reason| {
            ConfigError::Duration {
                setting: "login.window",
                reason,
            }
        })?;
        if self.failures_per_client == 0
            || self.failures_per_address == 0
            || self.failures_per_account == 0
            || self.max_tracked == 0
            || self.concurrent_checks == 0
        {
            return Err(ConfigError::LoginLimitZero);
        }
        Ok(())
    }
}

/// Access requests: strangers apply for an account on a public form and
/// wait for a moderator. Applications are counted per client address and
/// per e-mail address in a window (the login's throttle, counting every
/// application), and so are status links that name no request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Whether the form takes applications.
    pub open: bool,
    /// The admission cap: approvals are refused (`admission_cap_reached`,
    /// the applicant keeps waiting) while the platform holds this many
    /// accounts, administrators included. Unset: no cap.
    pub max_accounts: Option<i64>,
    /// Most requests waiting at once (`waiting_list_full` past it).
    pub max_waiting: i64,
    /// Applications from one client address per window.
    pub applications_per_address: u32,
    /// Applications with one e-mail address per window.
    pub applications_per_email: u32,
    /// Status links naming no request, from one client address per window.
    pub unknown_links_per_address: u32,
    /// How long the counts last (`1h`).
    pub window: String,
    /// Most counters kept per kind (as `login.max_tracked`).
    pub max_tracked: usize,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            open: true,
            max_accounts: None,
            max_waiting: 10_000,
            applications_per_address: 5,
            applications_per_email: 3,
            unknown_links_per_address: 20,
            window: "1h".to_owned(),
            max_tracked: 10_000,
        }
    }
}

impl AccessConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        insitu_domain::datalab::parse_duration(&self.window).map_err(|reason| {
            ConfigError::Duration {
                setting: "access.window",
                reason,
            }
        })?;
        if self.applications_per_address == 0
            || self.applications_per_email == 0
            || self.unknown_links_per_address == 0
            || self.max_tracked == 0
            || self.max_waiting < 1
            || self.max_accounts.is_some_and(|n| n < 1)
        {
            return Err(ConfigError::AccessLimitZero);
        }
        Ok(())
    }

    /// The throttle's settings for applications: the pair (e-mail,
    /// address) and the address at `applications_per_address`, the e-mail
    /// address at `applications_per_email`.
    pub fn application_limits(&self) -> LoginConfig {
        LoginConfig {
            failures_per_client: self.applications_per_address,
            failures_per_address: self.applications_per_address,
            failures_per_account: self.applications_per_email,
            window: self.window.clone(),
            max_tracked: self.max_tracked,
            ..LoginConfig::default()
        }
    }

    /// The throttle's settings for unknown status links: per address.
    pub fn link_limits(&self) -> LoginConfig {
        LoginConfig {
            failures_per_client: self.unknown_links_per_address,
            failures_per_address: self.unknown_links_per_address,
            failures_per_account: u32::MAX,
            window: self.window.clone(),
            max_tracked: self.max_tracked,
            ..LoginConfig::default()
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifetime: "12h".to_owned(),
            idle_timeout: "2h".to_owned(),
            min_password_length: 10,
        }
    }
}

impl SessionConfig {
    /// The lifetime in seconds; the configuration is checked at start.
    pub fn lifetime_secs(&self) -> i64 {
        secs(&self.lifetime, 12 * 3600)
    }

    pub fn idle_secs(&self) -> i64 {
        secs(&self.idle_timeout, 2 * 3600)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        insitu_domain::datalab::parse_duration(&self.lifetime).map_err(|reason| {
            ConfigError::Duration {
                setting: "session.lifetime",
                reason,
            }
        })?;
        insitu_domain::datalab::parse_duration(&self.idle_timeout).map_err(|reason| {
            ConfigError::Duration {
                setting: "session.idle_timeout",
                reason,
            }
        })?;
        if self.min_password_length < 8 {
            return Err(ConfigError::MinPasswordLength);
        }
        Ok(())
    }
}

fn secs(s: &str, default: i64) -> i64 {
    insitu_domain::datalab::parse_duration(s)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(default)
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            username: "admin".to_owned(),
            password: None,
        }
    }
}

/// A setting that stops the platform from starting; the text names it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("labs.run_as_uid and labs.run_as_gid must not be 0: tools never run as root")]
    LabsAsRoot,
    #[error("{setting}: {reason}")]
    Duration {
        setting: &'static str,
        reason: QuantityError,
    },
    #[error("{setting}: {reason}")]
    Quantity {
        setting: &'static str,
        reason: QuantityError,
    },
    #[error("labs.max_starting must be at least 1")]
    MaxStarting,
    #[error("session.min_password_length must be at least 8")]
    MinPasswordLength,
    #[error(
        "login.failures_per_client, failures_per_address, failures_per_account, max_tracked and concurrent_checks must be at least 1"
    )]
    LoginLimitZero,
    #[error(
        "access.applications_per_address, applications_per_email, unknown_links_per_address, max_tracked, max_waiting and max_accounts must be at least 1"
    )]
    AccessLimitZero,
    #[error("admin.username {name:?} {reason}")]
    AdminUsername { name: String, reason: NameError },
    #[error("data volume {name:?} in the configuration: {}", list(problems))]
    Volume {
        name: String,
        problems: Vec<DefinitionError>,
    },
    #[error("data volume {0:?} is defined twice")]
    VolumeTwice(String),
    #[error("datazone {name:?} in the configuration: {}", list(problems))]
    Zone {
        name: String,
        problems: Vec<DefinitionError>,
    },
    #[error("datazone {0:?} is defined twice")]
    ZoneTwice(String),
    #[error("data volume {volume:?} is in datazone {zone:?}, which is not configured ([[zones]])")]
    VolumeZone { volume: String, zone: String },
    #[error(
        "pipelines.slots, pipelines.max_running_per_user and pipelines.parallel must be at least 1"
    )]
    PipelineSlots,
    #[error("{setting}: {reason}")]
    Size {
        setting: &'static str,
        reason: QuantityError,
    },
    #[error("{setting}: {reason}")]
    Image {
        setting: &'static str,
        reason: String,
    },
    #[error("devlabs.concurrent_builds must be at least 1 and devlabs.build_cpus above 0")]
    DevlabsLimits,
}

fn list(problems: &[DefinitionError]) -> String {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    list.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(database_url: Option<&str>) -> PlatformConfig {
        PlatformConfig {
            data_dir: PathBuf::from("/var/lib/insitu"),
            database_url: database_url.map(Secret::from),
            catalogue_dir: PathBuf::from("/srv/catalogue"),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            admin: AdminConfig::default(),
            labs: LabsConfig::default(),
            pipelines: PipelinesConfig::default(),
            volumes: Vec::new(),
            zones: Vec::new(),
            devlabs: DevlabsConfig::default(),
            quotas: QuotasConfig::default(),
            usage: UsageConfig::default(),
            access: AccessConfig::default(),
            config_file: Some(PathBuf::from("/opt/insitu/insitu.toml")),
        }
    }

    #[test]
    fn labs_never_see_the_configuration_or_the_database() {
        let data = Path::new("/var/lib/insitu");
        let paths = |url| config(url).hidden_from_labs(data);
        assert_eq!(
            paths(Some("sqlite:///srv/db/insitu.db?mode=rwc")),
            [
                "/var/lib/insitu",
                "/opt/insitu/insitu.toml",
                "/srv/db",
                "/etc/insitu"
            ]
            .map(PathBuf::from)
        );
        // The default database is in the data directory; hiding that again
        // is harmless.
        assert!(paths(None).contains(&PathBuf::from("/var/lib/insitu")));
        // At the top of the file system, the files themselves.
        let top = paths(Some("sqlite:/insitu.db"));
        for f in [
            "/insitu.db",
            "/insitu.db-wal",
            "/insitu.db-shm",
            "/insitu.db-journal",
        ] {
            assert!(top.contains(&PathBuf::from(f)), "{top:?}");
        }
        assert!(!top.contains(&PathBuf::from("/")), "{top:?}");
        // PostgreSQL keeps no file here.
        assert_eq!(paths(Some("postgres://u@db/insitu")).len(), 3);
    }
}
