//! Server configuration. Every field has a default, so the embedded default
//! needs no file at all.

use std::net::SocketAddr;
use std::path::PathBuf;

use insitu_domain::volume::VolumeConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the platform listens on.
    pub listen: SocketAddr,
    /// The URL users open; used in links and to decide on `Secure` cookies.
    /// Defaults to `http://<listen>`.
    pub public_url: Option<String>,
    /// Where the platform keeps its state (SQLite file, generated data).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Defaults to
    /// `sqlite://<data_dir>/insitu.db`.
    pub database_url: Option<String>,
    /// Directory of datalab definitions, one `<name>.toml` per datalab.
    pub catalogue_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub session: SessionConfig,
    pub admin: AdminConfig,
    pub labs: LabsConfig,
    pub proxy: ProxyConfig,
    /// Data volumes offered in the catalogue.
    pub volumes: Vec<VolumeConfig>,
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

/// The lab proxy: labs are served from this second origin, never from the
/// platform's own, so code in a lab cannot use the user's platform session.
/// With `{lab}` in `public_url` (`http://{lab}.localhost:8081`,
/// `https://{lab}.labs.example.org` with a wildcard DNS name and
/// certificate) every lab gets an origin of its own, so one lab's pages
/// cannot read another's either.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address the lab proxy listens on.
    pub listen: SocketAddr,
    /// The proxy's URL as browsers reach it (production: a separate host
    /// name, e.g. `https://labs.insitu.example.org`, or one per lab,
    /// `https://{lab}.labs.insitu.example.org`). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Threads serving lab connections, each an event loop of its own;
    /// unset: half the machine's cores, at least one.
    pub threads: Option<usize>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_url: None,
            threads: None,
        }
    }
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
    pub fn idle_timeout(&self) -> anyhow::Result<Option<std::time::Duration>> {
        match self.idle_timeout.as_deref() {
            None | Some("0s") | Some("0") => Ok(None),
            Some(t) => insitu_domain::datalab::parse_duration(t)
                .map(|s| Some(std::time::Duration::from_secs(s)))
                .map_err(|e| anyhow::anyhow!("labs.idle_timeout: {e}")),
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

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("var"),
            database_url: None,
            catalogue_dir: PathBuf::from("catalogue/datalabs"),
            max_body_bytes: 256 * 1024,
            session: SessionConfig::default(),
            admin: AdminConfig::default(),
            labs: LabsConfig::default(),
            proxy: ProxyConfig::default(),
            volumes: Vec::new(),
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

    pub fn validate(&self) -> anyhow::Result<()> {
        insitu_domain::datalab::parse_duration(&self.lifetime)
            .map_err(|e| anyhow::anyhow!("session.lifetime: {e}"))?;
        insitu_domain::datalab::parse_duration(&self.idle_timeout)
            .map_err(|e| anyhow::anyhow!("session.idle_timeout: {e}"))?;
        if self.min_password_length < 8 {
            anyhow::bail!("session.min_password_length must be at least 8");
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

impl ServerConfig {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("insitu.db").display()))
    }

    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}
