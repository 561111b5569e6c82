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
