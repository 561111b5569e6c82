//! Server configuration. Every field has a default, so the embedded default
//! needs no file at all. The settings of the platform's services (sessions,
//! the first administrator, labs) are `insitu-core`'s types.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use insitu_core::{
    AccessConfig, AdminConfig, DevlabsConfig, LabsConfig, LoginConfig, PipelinesConfig,
    PlatformConfig, QuotasConfig, SessionConfig, UsageConfig,
};
use insitu_domain::Secret;
use insitu_domain::volume::VolumeConfig;
use serde::{Deserialize, Serialize};

/// The server's settings. Every secret in it (the database URL, which may
/// hold a password, the first administrator's password, the metrics
/// secret) is a [`Secret`], so `Debug` never shows one.
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
    pub database_url: Option<Secret>,
    /// Directory of datalab definitions, one `<name>.toml` per datalab.
    pub catalogue_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub http: HttpConfig,
    pub metrics: MetricsConfig,
    pub admin: AdminConfig,
    pub labs: LabsConfig,
    pub pipelines: PipelinesConfig,
    pub proxy: ProxyConfig,
    /// Data volumes offered in the catalogue.
    pub volumes: Vec<VolumeConfig>,
    /// Datazones beside this machine's (`[[zones]]`): Slurm clusters.
    pub zones: Vec<insitu_domain::zone::ZoneConfig>,
    /// User-developed datalabs: podman, base images, build limits, what is
    /// kept.
    pub devlabs: DevlabsConfig,
    /// Each user's and each team's share: workspace sizes.
    pub quotas: QuotasConfig,
    /// OpenID providers users may log in with (`[[oidc]]`), beside local
    /// accounts: one button each on the login page.
    pub oidc: Vec<OidcProviderConfig>,
    /// How the platform's use is sampled for the operator's console
    /// (`sample_every`, `retention`).
    pub usage: UsageConfig,
    /// Applications for an account: the public form's limits, the waiting
    /// list's bound, the admission cap.
    pub access: AccessConfig,
    /// The file this configuration was read from (set by `insitu serve
    /// --config`, never by the file itself): labs never see it.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
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

/// The platform's listener: how long clients may take and how many may be
/// connected, and which reverse proxies are believed about client
/// addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// How long a client may take to send a request's headers, and how long
    /// a kept-alive connection may wait for its next request.
    pub header_timeout: String,
    /// A connection on which nothing is read or written for this long is
    /// closed (a body sent a byte at a time, a client that stops reading).
    pub idle_timeout: String,
    /// Most connections open at once; past it a new connection is answered
    /// `too_many_connections` (503) and closed.
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6
    /// client by its /64); 0: no limit. Connections from a trusted proxy
    /// are not counted against it (behind one, every client shares its
    /// address).
    pub max_connections_per_client: usize,
    /// Reverse proxies in front of the platform, as addresses or networks
    /// (`10.0.0.0/8`, `::1`). Only a connection from one of them has its
    /// `X-Forwarded-For` believed (the rightmost address that is not one of
    /// them is the client's); from anywhere else the header is ignored.
    /// Login throttling counts failures per client address.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_timeout: "15s".to_owned(),
            idle_timeout: "60s".to_owned(),
            max_connections: 1024,
            max_connections_per_client: 128,
            trusted_proxies: Vec::new(),
        }
    }
}

/// An OpenID provider users may log in with (the authorization code flow
/// with PKCE). Its redirect URI is `<public_url>/login/oidc/<name>/callback`
/// (register it with the provider); set `public_url` in production, or the
/// URI is built from the request's `Host`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// The provider's name in the platform's URLs and its links to
    /// accounts: 1-32 lowercase letters, digits, `-`, `_`. Never rename
    /// one: its links to accounts are by this name.
    pub name: String,
    /// The issuer URL; `<issuer>/.well-known/openid-configuration` is read
    /// for the endpoints and keys, and ID tokens must name it exactly.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Scopes asked for; `openid` is always added.
    #[serde(default = "default_oidc_scopes")]
    pub scopes: Vec<String>,
    /// The login button's text; default "Log in with <name>".
    #[serde(default)]
    pub label: Option<String>,
    /// Link an identity no account is linked to yet to the account with its
    /// e-mail address, when the provider says the address is verified.
    #[serde(default)]
    pub link_by_email: bool,
    /// Create an account on first login when no account is linked.
    #[serde(default)]
    pub create_accounts: bool,
    /// A claim of the ID token (a string or a list of strings) that gives
    /// the role, through `roles`; the highest role named wins, `user`
    /// when none is. Set at every login.
    #[serde(default)]
    pub roles_claim: Option<String>,
    /// Claim values and the role each gives (`"insitu-admins" = "admin"`).
    #[serde(default)]
    pub roles: std::collections::BTreeMap<String, insitu_domain::Role>,
}

fn default_oidc_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(str::to_owned).to_vec()
}

impl OidcProviderConfig {
    pub fn label(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("Log in with {}", self.name))
    }

    /// The reasons this provider's settings stop the server from starting.
    pub fn validate(&self) -> Result<(), WebConfigError> {
        let bad = |reason: &str| WebConfigError::Oidc {
            name: self.name.clone(),
            reason: reason.to_owned(),
        };
        let name_ok = (1..=32).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(bad(
                "name must be 1-32 lowercase letters, digits, '-' or '_'",
            ));
        }
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            return Err(bad("issuer must be an http(s) URL"));
        }
        if self.client_id.is_empty() {
            return Err(bad("client_id is empty"));
        }
        if self.roles_claim.is_some() && self.roles.is_empty() {
            return Err(bad(
                "roles_claim needs roles, the claim values and the role each gives",
            ));
        }
        Ok(())
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsAccess {
    /// Anyone.
    Public,
    /// Administrators (session or API token).
    Admin,
    /// A scraper sending `Authorization: Bearer <metrics.token>`.
    Token,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub access: MetricsAccess,
    /// The bearer secret for `access = "token"` (at least 16 characters).
    pub token: Option<Secret>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            access: MetricsAccess::Public,
            token: None,
        }
    }
}

/// A setting of the web layer that stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("{setting}: {reason}")]
    Duration {
        setting: &'static str,
        reason: insitu_domain::datalab::QuantityError,
    },
    #[error("http.max_connections must be at least 1")]
    NoConnections,
    #[error("http.trusted_proxies: {0:?} is not an address or a network (10.0.0.0/8)")]
    TrustedProxy(String),
    #[error("metrics.access = \"token\" needs metrics.token of at least 16 characters")]
    MetricsToken,
    #[error("oidc provider {name:?}: {reason}")]
    Oidc { name: String, reason: String },
}

/// An address or network (`10.0.0.0/8`) of a trusted reverse proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Network { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The listener's settings, checked and parsed.
#[derive(Debug, Clone)]
pub struct Listening {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub trusted_proxies: Vec<Network>,
}

impl HttpConfig {
    pub fn parse(&self) -> Result<Listening, WebConfigError> {
        let duration = |setting: &'static str, value: &str| {
            insitu_domain::datalab::parse_duration(value)
                .map(Duration::from_secs)
                .map_err(|reason| WebConfigError::Duration { setting, reason })
        };
        if self.max_connections == 0 {
            return Err(WebConfigError::NoConnections);
        }
        Ok(Listening {
            header_timeout: duration("http.header_timeout", &self.header_timeout)?,
            idle_timeout: duration("http.idle_timeout", &self.idle_timeout)?,
            max_connections: self.max_connections,
            max_connections_per_client: self.max_connections_per_client,
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .map(|p| Network::parse(p).ok_or_else(|| WebConfigError::TrustedProxy(p.clone())))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> Result<(), WebConfigError> {
        match (&self.access, &self.token) {
            (MetricsAccess::Token, None) => Err(WebConfigError::MetricsToken),
            (MetricsAccess::Token, Some(t)) if t.expose().chars().count() < 16 => {
                Err(WebConfigError::MetricsToken)
            }
            _ => Ok(()),
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
                .map(Duration::from_secs)
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
            login: LoginConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            admin: AdminConfig::default(),
            labs: LabsConfig::default(),
            pipelines: PipelinesConfig::default(),
            proxy: ProxyConfig::default(),
            volumes: Vec::new(),
            zones: Vec::new(),
            devlabs: DevlabsConfig::default(),
            quotas: QuotasConfig::default(),
            oidc: Vec::new(),
            usage: UsageConfig::default(),
            access: AccessConfig::default(),
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
            login: self.login.clone(),
            admin: self.admin.clone(),
            labs: self.labs.clone(),
            pipelines: self.pipelines.clone(),
            volumes: self.volumes.clone(),
            zones: self.zones.clone(),
            devlabs: self.devlabs.clone(),
            quotas: self.quotas.clone(),
            usage: self.usage.clone(),
            access: self.access.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn debug_shows_no_secret_of_the_configuration() {
        let mut c = ServerConfig {
            database_url: Some(Secret::new(
                "postgres://insitu:pg-password-7f3a@db.example.org/insitu?password=pg-query-secret-9c1e",
            )),
            ..ServerConfig::default()
        };
        c.admin.password = Some(Secret::new("first-admin-password-5d2b"));
        c.metrics.access = MetricsAccess::Token;
        c.metrics.token = Some(Secret::new("metrics-bearer-secret-8e4f"));
        for shown in [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.platform()),
        ] {
            for secret in [
                "pg-password-7f3a",
                "pg-query-secret-9c1e",
                "first-admin-password-5d2b",
                "metrics-bearer-secret-8e4f",
            ] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.200.1.2".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one = Network::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "example.org", "10.0.0.0/x", ""] {
            assert_eq!(Network::parse(bad), None, "{bad}");
        }
    }
}
