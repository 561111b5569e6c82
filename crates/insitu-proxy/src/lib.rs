//! The authenticating reverse proxy that serves running labs (JupyterLab,
//! noVNC, any web tool) under `/labs/<lab-id>/` from an origin separate from
//! the platform UI. The platform, after checking its own session and the
//! user's right to the lab, hands out a single-use *ticket*
//! ([`Proxy::issue_ticket`]); the browser redeems it at
//! `/labs/<id>/_insitu/auth` for a per-lab proxy session cookie, and from
//! then on every HTTP request and WebSocket upgrade is authenticated,
//! re-authorised against the [`LabDirectory`] and streamed to the lab's
//! upstream without buffering. This crate must never depend on the store, the
//! platform's services (`insitu-core`) or the web crate: it talks to the
//! platform only through the [`LabDirectory`] trait and the [`Proxy`]
//! handle, and shares only the domain's vocabulary ([`LabState`]).
//!
//! Forwarding: the full path (with the `/labs/<id>` prefix: tools run with
//! `base_url=/labs/<id>/`) and query go to `http://<upstream>` over pooled
//! HTTP/1.1 keep-alive connections. The browser's `Host` is passed through
//! (tools such as Jupyter compare it with `Origin` on WebSocket upgrades);
//! `X-Forwarded-For` is appended to, `X-Forwarded-Host` copies `Host` and
//! `X-Forwarded-Proto` follows [`ProxyConfig::cookie_secure`]. Hop-by-hop
//! headers are dropped both ways, and so is every credential of the platform:
//! `insitu_*` cookies, `Authorization: Bearer insitu_…`, and `Set-Cookie`
//! of `insitu_*` names coming back from a lab.
//!
//! Error pages carry a stable code (see [`ErrorCode`]):
//!
//! | code | status | meaning |
//! |---|---|---|
//! | `not_found` | 404 | the path is not `/labs/<lab-id>/…` or is reserved |
//! | `lab_auth_required` | 401 | no valid proxy session cookie for this lab |
//! | `lab_ticket_invalid` | 401 | the ticket is unknown, used, expired or for another lab |
//! | `lab_forbidden` | 403 | the session's user may not use this lab |
//! | `lab_not_running` | 404 | the lab is stopped or does not exist |
//! | `lab_starting` | 503 | the lab is starting (`Retry-After` set) |
//! | `lab_upstream_unreachable` | 502 | the lab's server did not answer |

mod activity;
mod connect;
mod headers;
mod pages;
mod path;
mod server;
mod sessions;
mod splice;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::watch;

pub use pages::ErrorCode;

use activity::ActivityLimiter;
use pages::Pages;
use sessions::{SessionStore, TicketStore};

/// A lab's state, the platform's own: a running lab is forwarded to; a
/// pending or starting one gets a 503 page with `Retry-After`; a stopping,
/// stopped or failed one gets the `lab_not_running` page.
pub use insitu_domain::LabState;

/// Opens connections to labs that live in a network of their own (a
/// network namespace), where the proxy's own sockets cannot reach.
pub trait LabNetwork: Send + Sync + fmt::Debug + 'static {
    /// A TCP connection to `addr` inside that network.
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> std::pin::Pin<Box<dyn Future<Output = std::io::Result<tokio::net::TcpStream>> + Send>>;
}

/// Where a lab is served and who may use it.
#[derive(Debug, Clone)]
pub struct LabRoute {
    /// Address of the lab's HTTP server (plain HTTP/1.1).
    pub upstream: SocketAddr,
    /// The network `upstream` is in; `None` for the proxy's own.
    pub network: Option<Arc<dyn LabNetwork>>,
    /// Id of the user who owns the lab.
    pub owner: String,
    /// Current state.
    pub state: LabState,
}

impl PartialEq for LabRoute {
    fn eq(&self, other: &Self) -> bool {
        self.upstream == other.upstream
            && self.owner == other.owner
            && self.state == other.state
            && match (&self.network, &other.network) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// The platform's side of the proxy: where labs are and who owns them.
pub trait LabDirectory: Send + Sync + 'static {
    /// Looks up a lab by id; `None` when it is unknown.
    fn route(&self, lab_id: &str) -> Option<LabRoute>;
    /// Notes that the lab was used. The proxy calls it for proxied requests
    /// and relayed WebSocket data, at most once per second per lab.
    fn record_activity(&self, lab_id: &str);
}

/// Settings of the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Adds `Secure` to the session cookie and reports `X-Forwarded-Proto: https`.
    pub cookie_secure: bool,
    /// Lifetime of a proxy session (default 12 h).
    pub session_ttl: Duration,
    /// Lifetime of an unredeemed ticket (default 60 s).
    pub ticket_ttl: Duration,
    /// Address of the platform UI, linked from error pages.
    pub platform_url: String,
    /// Threads serving connections (default: half the machine's cores, at
    /// least one).
    pub threads: usize,
}

impl ProxyConfig {
    /// Default lifetime of a proxy session.
    pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
    /// Default lifetime of a ticket.
    pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(60);

    /// Secure cookies and default lifetimes, linking error pages to `platform_url`.
    pub fn new(platform_url: impl Into<String>) -> Self {
        Self {
            cookie_secure: true,
            session_ttl: Self::DEFAULT_SESSION_TTL,
            ticket_ttl: Self::DEFAULT_TICKET_TTL,
            platform_url: platform_url.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self::new("/")
    }
}

/// Cheap, cloneable handle on the proxy, shared by the platform (tickets,
/// revocation) and the server task ([`Proxy::serve`]).
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ProxyConfig,
    pub(crate) directory: Arc<dyn LabDirectory>,
    pub(crate) sessions: SessionStore,
    pub(crate) tickets: TicketStore,
    pub(crate) activity: ActivityLimiter,
    pub(crate) pages: Pages,
    pub(crate) client: Client<connect::LabConnector, Incoming>,
    pub(crate) forwarded_proto: HeaderValue,
    /// Flips to `true` when [`Proxy::serve`] is told to shut down; upgraded
    /// (WebSocket) connections watch it too.
    pub(crate) shutdown: watch::Sender<bool>,
}

impl Inner {
    /// Reports activity on a lab to the directory, rate-limited per lab.
    pub(crate) fn touch(&self, lab_id: &str, now: Instant) {
        if self.activity.should_record(lab_id, now) {
            self.directory.record_activity(lab_id);
        }
    }
}

/// Resolves once `flag` is `true` or its sender is gone.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is not `Send`: drop it here.
    let _ = flag.wait_for(|raised| *raised).await;
}

impl Proxy {
    /// Creates the proxy; nothing listens until [`Proxy::serve`].
    pub fn new(config: ProxyConfig, directory: Arc<dyn LabDirectory>) -> Proxy {
        let connector = connect::LabConnector::new(Arc::clone(&directory));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let forwarded_proto = HeaderValue::from_static(if config.cookie_secure {
            "https"
        } else {
            "http"
        });
        let (shutdown, _) = watch::channel(false);
        let inner = Inner {
            pages: Pages::new(&config.platform_url),
            sessions: SessionStore::new(config.session_ttl),
            tickets: TicketStore::new(config.ticket_ttl),
            activity: ActivityLimiter::new(activity::INTERVAL),
            config,
            directory,
            client,
            forwarded_proto,
            shutdown,
        };
        Proxy {
            inner: Arc::new(inner),
        }
    }

    /// Called by the platform (same process) after it checked the user's
    /// platform session and ownership: returns a single-use random ticket for
    /// `lab_id`, valid for `ticket_ttl`, to put in
    /// `/labs/<lab_id>/_insitu/auth?ticket=…&next=…`.
    pub fn issue_ticket(&self, lab_id: &str, user_id: &str) -> String {
        self.inner
            .tickets
            .issue(lab_id, user_id, Instant::now())
            .into_string()
    }

    /// Revokes every proxy session for a lab (lab stopped), closing its
    /// open WebSocket connections.
    pub fn revoke_lab(&self, lab_id: &str) {
        self.inner.sessions.revoke(|lab, _| lab == lab_id);
        tracing::debug!(lab_id, "revoked proxy sessions of lab");
    }

    /// Revokes every proxy session for a user (account disabled), closing
    /// their open WebSocket connections.
    pub fn revoke_user(&self, user_id: &str) {
        self.inner.sessions.revoke(|_, user| user == user_id);
        tracing::debug!(user_id, "revoked proxy sessions of user");
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, lets in-flight requests finish (for up to 10 s) and
    /// closes WebSocket connections. Call it once per proxy: the shutdown
    /// also ends the connections of any other `serve` of the same proxy.
    ///
    /// The proxy runs on threads of its own ([`ProxyConfig::threads`]),
    /// each a single-threaded event loop accepting from the same listener,
    /// as nginx's workers do: a request and the lab connection it uses stay
    /// on one thread, which keeps latency low and even.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let listener = listener.into_std()?;
        let mut workers = Vec::new();
        for n in 0..self.inner.config.threads.max(1) {
            let listener = listener.try_clone()?;
            let inner = Arc::clone(&self.inner);
            let (done, finished) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name(format!("lab-proxy-{n}"))
                .spawn(move || {
                    let _ = done.send(run_worker(inner, listener));
                })?;
            workers.push(finished);
        }
        shutdown.await;
        self.inner.shutdown.send_replace(true);
        let mut result = Ok(());
        for w in workers {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(std::io::Error::other("a proxy thread ended abruptly")),
            }
        }
        result
    }
}

/// One proxy thread: its own single-threaded runtime serving `listener`
/// until the proxy's shutdown flag is raised.
fn run_worker(inner: Arc<Inner>, listener: std::net::TcpListener) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut flag = inner.shutdown.subscribe();
        server::serve(inner, listener, async move { raised(&mut flag).await }).await
    })
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}
