//! Server configuration. Every field has a default, so the embedded default
//! needs no file at all. The settings of the platform's services (sessions,
//! the first administrator, labs) are `insitu-core`'s types.

use std::net::SocketAddr;
use std::path::PathBuf;

use insitu_core::{AdminConfig, LabsConfig, PipelinesConfig, PlatformConfig, SessionConfig};
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
    pub pipelines: PipelinesConfig,
    pub proxy: ProxyConfig,
    /// Data volumes offered in the catalogue.
    pub volumes: Vec<VolumeConfig>,
}

/// The lab proxy: labs are served from this second origin, never from the
/// platform's own, so code in a lab cannot use the user's platform session.
/// With `{lab}` in `public_url` (`http://{lab}.localhost:8081`,
/// `https://{lab}.labs.example.org` with a wildcard DNS name and
/// certificate) every lab gets an origin of its own, and is served only
/// there, so one lab's pages cannot read or drive another's either.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Address the lab proxy listens on.
    pub listen: SocketAddr,
    /// The proxy's URL as browsers reach it (production: a separate host
    /// name, e.g. `https://labs.insitu.example.org`, or one per lab,
    /// `https://{lab}.labs.insitu.example.org`); `https` turns on `Secure`
    /// lab cookies. Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Threads serving lab connections, each an event loop of its own;
    /// unset: half the machine's cores, at least one.
    pub threads: Option<usize>,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: String,
    /// How long a kept-alive connection may wait for its next request
    /// (WebSockets are never timed out).
    pub keep_alive_timeout: String,
    /// Most connections open at once, WebSockets included (0: no limit).
    pub max_connections: usize,
    /// Most connections open at once from one client address, an IPv6
    /// client by its /64 (0: no limit; set 0 behind a reverse proxy).
    pub max_connections_per_client: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        use insitu_proxy::ProxyConfig as Proxy;
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_url: None,
            threads: None,
            header_read_timeout: format!("{}s", Proxy::DEFAULT_HEADER_READ_TIMEOUT.as_secs()),
            keep_alive_timeout: format!("{}s", Proxy::DEFAULT_KEEP_ALIVE_TIMEOUT.as_secs()),
            max_connections: Proxy::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: Proxy::DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

/// A `[proxy]` setting that stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ProxySettingError {
    #[error("proxy.public_url: {0}")]
    PublicUrl(#[from] insitu_proxy::PublicUrlError),
    #[error("proxy.{setting}: {reason}")]
    Duration {
        setting: &'static str,
        reason: insitu_domain::datalab::QuantityError,
    },
}

impl ProxyConfig {
    /// The configured public URL, checked; `None` when unset.
    pub fn public_url(&self) -> Result<Option<insitu_proxy::PublicUrl>, ProxySettingError> {
        Ok(self
            .public_url
            .as_deref()
            .map(insitu_proxy::PublicUrl::parse)
            .transpose()?)
    }

    /// The proxy's settings: these, linking error pages to `platform_url`.
    pub fn settings(
        &self,
        platform_url: String,
    ) -> Result<insitu_proxy::ProxyConfig, ProxySettingError> {
        let duration = |setting: &'static str, text: &str| {
            insitu_domain::datalab::parse_duration(text)
                .map(std::time::Duration::from_secs)
                .map_err(|reason| ProxySettingError::Duration { setting, reason })
        };
        let public_url = self.public_url()?;
        let mut proxy = insitu_proxy::ProxyConfig::new(platform_url);
        proxy.cookie_secure = public_url.as_ref().is_some_and(|u| u.is_https());
        proxy.public_url = public_url;
        if let Some(t) = self.threads {
            proxy.threads = t.max(1);
        }
        proxy.header_read_timeout = duration("header_read_timeout", &self.header_read_timeout)?;
        proxy.keep_alive_timeout = duration("keep_alive_timeout", &self.keep_alive_timeout)?;
        proxy.max_connections = self.max_connections;
        proxy.max_connections_per_client = self.max_connections_per_client;
        Ok(proxy)
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
            pipelines: PipelinesConfig::default(),
            proxy: ProxyConfig::default(),
            volumes: Vec::new(),
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
            pipelines: self.pipelines.clone(),
            volumes: self.volumes.clone(),
        }
    }

    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{bound}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_proxy_settings_default_to_the_proxys_own() {
        let ours = ProxyConfig::default().settings("/".to_owned()).unwrap();
        let theirs = insitu_proxy::ProxyConfig::new("/");
        assert_eq!(ours.header_read_timeout, theirs.header_read_timeout);
        assert_eq!(ours.keep_alive_timeout, theirs.keep_alive_timeout);
        assert_eq!(ours.max_connections, theirs.max_connections);
        assert_eq!(
            ours.max_connections_per_client,
            theirs.max_connections_per_client
        );
        assert!(ours.public_url.is_none() && !ours.cookie_secure);
    }

    #[test]
    fn the_proxy_settings_are_checked_and_applied() {
        let config = ProxyConfig {
            public_url: Some("https://{lab}.labs.example.org".into()),
            header_read_timeout: "5s".into(),
            keep_alive_timeout: "2m".into(),
            max_connections: 7,
            max_connections_per_client: 0,
            ..ProxyConfig::default()
        };
        let proxy = config
            .settings("https://insitu.example.org".into())
            .unwrap();
        let public = proxy.public_url.unwrap();
        assert!(public.per_lab() && proxy.cookie_secure);
        assert_eq!(
            public.lab_url("abc"),
            "https://abc.labs.example.org/labs/abc/"
        );
        assert_eq!(proxy.header_read_timeout, Duration::from_secs(5));
        assert_eq!(proxy.keep_alive_timeout, Duration::from_secs(120));
        assert_eq!(
            (proxy.max_connections, proxy.max_connections_per_client),
            (7, 0)
        );

        let bad_url = ProxyConfig {
            public_url: Some("https://{lab}.labs.example.org/path".into()),
            ..ProxyConfig::default()
        };
        let err = bad_url.settings("/".into()).unwrap_err().to_string();
        assert!(
            err.starts_with("proxy.public_url: invalid proxy public URL"),
            "{err}"
        );
        let bad_time = ProxyConfig {
            keep_alive_timeout: "soon".into(),
            ..ProxyConfig::default()
        };
        let err = bad_time.settings("/".into()).unwrap_err().to_string();
        assert!(err.starts_with("proxy.keep_alive_timeout:"), "{err}");
    }
}
