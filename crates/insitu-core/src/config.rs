//! Settings of the platform's services, and what is wrong with them. Every
//! field has a default, so the embedded default needs no file at all.

use std::path::PathBuf;

use insitu_domain::datalab::QuantityError;
use insitu_domain::volume::VolumeConfig;
use insitu_domain::{DefinitionError, NameError};
use serde::{Deserialize, Serialize};

/// What the platform's services are built from (the server's
/// configuration less what only HTTP needs).
#[derive(Clone)]
pub struct PlatformConfig {
    /// Where the platform keeps its state (SQLite file, workspaces, lab
    /// logs).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Defaults to
    /// `sqlite://<data_dir>/insitu.db`.
    pub database_url: Option<String>,
    /// Directory of datalab definitions, one `<name>.toml` per datalab.
    pub catalogue_dir: PathBuf,
    pub session: SessionConfig,
    pub admin: AdminConfig,
    pub labs: LabsConfig,
    pub pipelines: PipelinesConfig,
    /// Data volumes offered in the catalogue.
    pub volumes: Vec<VolumeConfig>,
}

impl PlatformConfig {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("insitu.db").display()))
    }
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(insitu_store::redact_url),
            )
            .field("catalogue_dir", &self.catalogue_dir)
            .field("session", &self.session)
            .field("admin", &self.admin)
            .field("labs", &self.labs)
            .field("pipelines", &self.pipelines)
            .field("volumes", &self.volumes)
            .finish()
    }
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
    /// The `insitu` command-line client that labs find on their `PATH` to
    /// submit and follow runs (unset: none; the server fills in its own
    /// program).
    pub lab_cli: Option<PathBuf>,
    /// Where the socket labs reach the platform through is made (shown
    /// read-only in every lab); unset: `/run/insitu-<digest of the data
    /// directory>`.
    pub lab_socket_dir: Option<PathBuf>,
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
            lab_cli: None,
            lab_socket_dir: None,
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

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Username of the administrator created on first start.
    pub username: String,
    /// Their password; when unset a random one is generated and printed once.
    pub password: Option<String>,
}

impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
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
    #[error("session.min_password_length must be at least 8")]
    MinPasswordLength,
    #[error("admin.username {name:?} {reason}")]
    AdminUsername { name: String, reason: NameError },
    #[error("data volume {name:?} in the configuration: {}", list(problems))]
    Volume {
        name: String,
        problems: Vec<DefinitionError>,
    },
    #[error("data volume {0:?} is defined twice")]
    VolumeTwice(String),
    #[error(
        "pipelines.slots, pipelines.max_running_per_user and pipelines.parallel must be at least 1"
    )]
    PipelineSlots,
}

fn list(problems: &[DefinitionError]) -> String {
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    list.join("; ")
}
