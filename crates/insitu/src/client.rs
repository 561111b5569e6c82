//! The command-line client's connection to a platform: credentials kept in
//! the user's configuration directory (mode 0600), typed calls to the API,
//! and API errors mapped to exit codes scripts can rely on.

use std::path::PathBuf;

use insitu_api::{ApiError, ErrorCode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Exit codes of the client commands.
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything not covered below.
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// Not logged in, or the token was refused.
    pub const UNAUTHENTICATED: u8 = 3;
    /// Logged in, but the role does not allow it.
    pub const FORBIDDEN: u8 = 4;
    /// The named datalab, volume, user or token does not exist.
    pub const NOT_FOUND: u8 = 5;
    /// The server could not be reached.
    pub const UNREACHABLE: u8 = 6;
}

#[derive(Debug)]
pub enum ClientError {
    NotLoggedIn,
    Api(ApiError),
    Unreachable(String),
    Other(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotLoggedIn => write!(
                f,
                "not logged in: run `insitu login <url>` or set INSITU_URL and INSITU_TOKEN"
            ),
            ClientError::Api(e) => write!(f, "{} ({})", e.message, e.code.as_str()),
            ClientError::Unreachable(m) => write!(f, "cannot reach the platform: {m}"),
            ClientError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotLoggedIn => exit::UNAUTHENTICATED,
            ClientError::Unreachable(_) => exit::UNREACHABLE,
            ClientError::Other(_) => exit::FAILURE,
            ClientError::Api(e) => match e.code {
                ErrorCode::Unauthenticated
                | ErrorCode::InvalidCredentials
                | ErrorCode::AccountDisabled => exit::UNAUTHENTICATED,
                ErrorCode::Forbidden
                | ErrorCode::CsrfFailed
                | ErrorCode::NotTeamOwner
                | ErrorCode::NotOnLabSocket => exit::FORBIDDEN,
                c if c.status() == 404 => exit::NOT_FOUND,
                _ => exit::FAILURE,
            },
        }
    }
}

/// What `insitu login` stores.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

pub fn config_dir() -> Result<PathBuf, ClientError> {
    if let Some(d) = std::env::var_os("INSITU_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("insitu"));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".config").join("insitu"))
        .ok_or_else(|| {
            ClientError::Other(
                "cannot find a configuration directory: set HOME or XDG_CONFIG_HOME".into(),
            )
        })
}

pub fn credentials_path() -> Result<PathBuf, ClientError> {
    Ok(config_dir()?.join("credentials.toml"))
}

/// Writes the credentials file readable by its owner only.
pub fn save_credentials(c: &Credentials) -> Result<PathBuf, ClientError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = credentials_path()?;
    let io = |e: std::io::Error| ClientError::Other(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let text = toml::to_string(c).map_err(|e| ClientError::Other(e.to_string()))?;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Credentials from `INSITU_URL` + `INSITU_TOKEN`, else from the file.
pub fn load_credentials() -> Result<Credentials, ClientError> {
    if let (Ok(url), Ok(token)) = (std::env::var("INSITU_URL"), std::env::var("INSITU_TOKEN")) {
        return Ok(Credentials { url, token });
    }
    let path = credentials_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| ClientError::Other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClientError::NotLoggedIn),
        Err(e) => Err(ClientError::Other(format!(
            "reading {}: {e}",
            path.display()
        ))),
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the platform at `base`: an `http(s)://` URL, or
    /// `unix:/path/to/socket` for the socket a lab reaches the platform
    /// through.
    pub fn new(base: &str, token: Option<String>) -> Result<Client, ClientError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("insitu-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120));
        let base = match base.strip_prefix("unix:") {
            Some(socket) => {
                builder = builder.unix_socket(socket);
                "http://localhost"
            }
            None => base,
        };
        let http = builder
            .build()
            .map_err(|e| ClientError::Other(format!("HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// A client of the platform named by `INSITU_URL` and `INSITU_TOKEN`;
    /// else, in a lab, of its API socket (`INSITU_API_SOCKET`, where the
    /// caller is the lab's owner and needs no token); else of the platform
    /// `insitu login` saved.
    pub fn logged_in() -> Result<Client, ClientError> {
        let explicit = std::env::var_os("INSITU_URL").is_some();
        if !explicit
            && let Some(socket) = std::env::var("INSITU_API_SOCKET")
                .ok()
                .filter(|s| !s.is_empty())
        {
            return Client::new(&format!("unix:{socket}"), None);
        }
        let c = load_credentials()?;
        Client::new(&c.url, Some(c.token))
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(format!("{}: {e}", self.base)))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ApiError>(&text) {
            Ok(e) => Err(ClientError::Api(e)),
            Err(_) if status == StatusCode::NOT_FOUND => Err(ClientError::Other(format!(
                "{} does not look like an Insitu platform (HTTP 404 on {path})",
                self.base
            ))),
            Err(_) => Err(ClientError::Other(format!(
                "HTTP {status} from {}{path}",
                self.base
            ))),
        }
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, body).await?;
        resp.json::<T>()
            .await
            .map_err(|e| ClientError::Other(format!("unexpected answer from {path}: {e}")))
    }

    /// The body of a GET as bytes (a build's log, say).
    pub async fn bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.send(Method::GET, path, None).await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Unreachable(format!("{}: {e}", self.base)))
    }

    pub async fn call_no_body(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send(method, path, None).await.map(drop)
    }

    /// A GET whose body is written to `out` as it arrives.
    pub async fn download(
        &self,
        path: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, ClientError> {
        let mut resp = self.send(Method::GET, path, None).await?;
        let mut n = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Unreachable(format!("{}: {e}", self.base)))?
        {
            out.write_all(&chunk)
                .map_err(|e| ClientError::Other(format!("writing the download: {e}")))?;
            n += chunk.len() as u64;
        }
        Ok(n)
    }
}
