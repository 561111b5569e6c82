//! Server configuration. Every field has a default, so the embedded default
//! needs no file at all. The settings of the platform's services (sessions,
//! the first administrator, labs) are `insitu-core`'s types.

use std::net::SocketAddr;
use std::path::PathBuf;

use insitu_core::{AdminConfig, LabsConfig, PlatformConfig, SessionConfig};
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
    /// The file this configuration was read from (set by `insitu serve
    /// --config`, never by the file itself): labs never see it.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
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
            config_file: None,
        }
    }
}

impl ServerConfig {
    /// What the platform's services are built from.
    pub fn platform(&self) -> PlatformConfig {
        PlatformConfig {
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            catalogue_dir: self.catalogue_dir.clone(),
            session: self.session.clone(),
            admin: self.admin.clone(),
            labs: self.labs.clone(),
            volumes: self.volumes.clone(),
            config_file: self.config_file.clone(),
        }
    }

    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}
