//! The authenticating reverse proxy that serves running labs (JupyterLab,
//! noVNC, any web tool) under `/labs/<lab-id>/` from an origin separate from
//! the platform UI. The platform, after checking its own session and the
//! user's right to the lab, hands out a single-use *ticket*
//! ([`Proxy::issue_ticket`]); the browser redeems it at
//! `/labs/<id>/_insitu/auth` for a per-lab proxy session cookie, and from
//! then on every HTTP request and WebSocket upgrade is authenticated,
//! re-authorised against the [`LabDirectory`] (the lab's owner and the
//! users it is shared with, [`LabRoute::shared_with`]) and streamed to the
//! lab's upstream without buffering. [`Proxy::connected`] tells who holds
//! sessions and open WebSockets in a lab; [`Proxy::revoke_lab_user`] cuts
//! one user off one lab. This crate must never depend on the store,
//! the platform's services (`insitu-core`) or the web crate: it talks to the
//! platform only through the [`LabDirectory`] and [`SessionTable`] traits
//! and the [`Proxy`] handle, and shares only the domain's vocabulary
//! ([`LabState`]).
//!
//! Origins: with `{lab}` in [`ProxyConfig::public_url`]
//! (`https://{lab}.labs.example.org`) every lab is served, and its tickets
//! redeemed, only on its own host; a request for another lab there gets
//! `lab_wrong_host`. A request whose `Origin` is not the lab's (the lab's
//! own host, the shared public origin, or, with no public URL set, the
//! request's `Host`) is refused, and a WebSocket upgrade must carry the
//! lab's `Origin`, in every mode: a page of one lab cannot drive another.
//!
//! Sessions: the proxy keeps them in memory and, given a [`SessionTable`],
//! writes each one through to the platform's table (digests only) so that
//! a restart, or another server process on the same database, keeps them.
//! Requests with a session in memory never touch the table; a cookie not
//! in memory is looked up once, and a session in memory is re-read at most
//! once per [`ProxyConfig::session_recheck`] (so that a revocation by
//! another process is seen). Revocation ([`Proxy::revoke_lab`],
//! [`Proxy::revoke_user`]) is immediate in memory, closes the sessions'
//! WebSockets and goes through to the table; an expired session opens
//! nothing more, but its open WebSockets live on. Each user holds at most
//! [`ProxyConfig::max_tickets_per_user`] tickets and
//! [`ProxyConfig::max_sessions_per_user`] sessions.
//!
//! Forwarding: the full path (with the `/labs/<id>` prefix: tools run with
//! `base_url=/labs/<id>/`) and query go to `http://<upstream>` over pooled
//! HTTP/1.1 keep-alive connections. The browser's `Host` is passed through
//! (tools such as Jupyter compare it with `Origin` on WebSocket upgrades);
//! `X-Forwarded-For` is appended to, `X-Forwarded-Host` copies `Host` and
//! `X-Forwarded-Proto` follows [`ProxyConfig::cookie_secure`]. Hop-by-hop
//! headers are dropped both ways, and so is every credential of the platform:
//! `insitu_*` cookies, `Authorization: Bearer insitu_…`, and `Set-Cookie`
//! of `insitu_*` names coming back from a lab. A lab whose route carries a
//! [`LabCredential`] gets it as `Authorization` on every request and
//! upgrade, in place of anything the browser sent, and its
//! `WWW-Authenticate` challenges are not passed back; the secret appears in
//! no page, redirect, log or `Debug` output of the proxy.
//!
//! Limits: a client has [`ProxyConfig::header_read_timeout`] to send a
//! request's headers, a kept-alive connection is closed after
//! [`ProxyConfig::keep_alive_timeout`] without a request, and at most
//! [`ProxyConfig::max_connections`] connections
//! ([`ProxyConfig::max_connections_per_client`] per client address) are
//! open; past that a connection gets the `too_many_connections` response
//! and is closed. WebSockets are never timed out: they count against the
//! connection limits only. [`ConnectionLimiter`] is usable by other
//! listeners.
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
//! | `lab_wrong_host` | 421 | with an origin per lab, the host is not this lab's |
//! | `lab_origin_forbidden` | 403 | the request's `Origin` is another's, or a WebSocket upgrade has none |
//! | `lab_sessions_unavailable` | 503 | the session table could not be read (`Retry-After` set) |
//! | `too_many_connections` | 503 | a connection limit is reached (`Retry-After` set; the connection is closed) |

mod activity;
mod connect;
mod credential;
mod headers;
mod limits;
mod origin;
mod pages;
mod path;
mod server;
mod sessions;
mod splice;
mod table;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{Semaphore, watch};

pub use credential::{CredentialError, LabCredential, LabSecret};
pub use limits::{ConnectionLimiter, ConnectionPermit};
pub use origin::{PublicUrl, PublicUrlError};
pub use pages::ErrorCode;
pub use table::{
    MemorySessionTable, SessionDigest, SessionTable, SessionTableError, StoredSession, TableFuture,
};

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

/// A user connected to a lab (see [`Proxy::connected`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connected {
    pub user_id: String,
    /// Live proxy sessions (browsers signed in to the lab).
    pub sessions: usize,
    /// Open WebSockets.
    pub websockets: usize,
}

impl Connected {
    fn new(user_id: String) -> Connected {
        Connected {
            user_id,
            sessions: 0,
            websockets: 0,
        }
    }
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
    /// Ids of the users the owner shares the running lab with: they use
    /// it as the owner does, through sessions of their own.
    pub shared_with: Vec<String>,
    /// Current state.
    pub state: LabState,
    /// What the lab's tool requires on every request (its own secret in
    /// the tool's form), added by the proxy; `None` for a tool that
    /// requires nothing.
    pub credential: Option<LabCredential>,
}

impl PartialEq for LabRoute {
    fn eq(&self, other: &Self) -> bool {
        self.upstream == other.upstream
            && self.owner == other.owner
            && self.shared_with == other.shared_with
            && self.state == other.state
            && self.credential == other.credential
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
    /// The proxy's URL as browsers reach it. With `{lab}` in it, each lab is
    /// served only on its own host. Unset: WebSocket `Origin`s are compared
    /// with the request's `Host`.
    pub public_url: Option<PublicUrl>,
    /// How long a client may take to send a request's headers, from the
    /// connection's start or the request's first byte (default 15 s).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request
    /// (default 75 s). WebSockets are never timed out.
    pub keep_alive_timeout: Duration,
    /// Most connections open at once, WebSockets included; 0: no limit
    /// (default 10,000; each also holds a connection to its lab, so the
    /// process needs twice as many file descriptors).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv6
    /// client by its /64); 0: no limit (default 1,000). Behind a reverse
    /// proxy every client has its address: set it to 0 there.
    pub max_connections_per_client: usize,
    /// Most proxy sessions a user holds; a new one ends the oldest (default 64).
    pub max_sessions_per_user: usize,
    /// Most unredeemed tickets a user holds; a new one voids the oldest
    /// (default 16).
    pub max_tickets_per_user: usize,
    /// With a [`SessionTable`], how long a session in memory is trusted
    /// before the table is asked again whether it still holds it (default
    /// 60 s): the longest a revocation by another server process takes to
    /// be seen here.
    pub session_recheck: Duration,
}

impl ProxyConfig {
    /// Default lifetime of a proxy session.
    pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);
    /// Default lifetime of a ticket.
    pub const DEFAULT_TICKET_TTL: Duration = Duration::from_secs(60);
    /// Default time allowed for request headers.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(15);
    /// Default time an idle kept-alive connection is kept.
    pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
    /// Default limit of open connections.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// Default limit of open connections per client address.
    pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 1_000;
    /// Default limit of sessions per user.
    pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 64;
    /// Default limit of outstanding tickets per user.
    pub const DEFAULT_MAX_TICKETS_PER_USER: usize = 16;
    /// Default interval between checks of a cached session against the table.
    pub const DEFAULT_SESSION_RECHECK: Duration = Duration::from_secs(60);

    /// Secure cookies and default lifetimes and limits, linking error pages
    /// to `platform_url`.
    pub fn new(platform_url: impl Into<String>) -> Self {
        Self {
            cookie_secure: true,
            session_ttl: Self::DEFAULT_SESSION_TTL,
            ticket_ttl: Self::DEFAULT_TICKET_TTL,
            platform_url: platform_url.into(),
            threads: std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            public_url: None,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: Self::DEFAULT_KEEP_ALIVE_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: Self::DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_sessions_per_user: Self::DEFAULT_MAX_SESSIONS_PER_USER,
            max_tickets_per_user: Self::DEFAULT_MAX_TICKETS_PER_USER,
            session_recheck: Self::DEFAULT_SESSION_RECHECK,
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self::new("/")
    }
}

/// Most session-table lookups in flight at once (cookies not in memory).
const TABLE_LOOKUPS: usize = 32;
/// Longest pause between two sweeps of expired sessions and tickets.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

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
    pub(crate) table: Option<Arc<dyn SessionTable>>,
    /// Where table calls run: the runtime the proxy was created (or first
    /// served) on, which the table's connections belong to.
    table_runtime: OnceLock<tokio::runtime::Handle>,
    pub(crate) lookups: Semaphore,
    pub(crate) limiter: ConnectionLimiter,
    /// Open WebSockets per lab and user.
    websockets: Mutex<HashMap<WebSocketKey, usize>>,
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

    /// Runs a table call on the table's runtime.
    pub(crate) async fn on_table<T, F>(&self, call: F) -> Result<T, SessionTableError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, SessionTableError>> + Send + 'static,
    {
        match self.table_runtime.get() {
            Some(runtime) => runtime.spawn(call).await.map_err(SessionTableError::new)?,
            None => call.await,
        }
    }

    /// Counts a WebSocket of `user_id` in `lab_id` until the guard is
    /// dropped.
    pub(crate) fn websocket_opened(
        self: &Arc<Self>,
        lab_id: &str,
        user_id: &Arc<str>,
    ) -> WebSocketGuard {
        let key: WebSocketKey = (lab_id.into(), Arc::clone(user_id));
        *self
            .websockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default() += 1;
        WebSocketGuard {
            inner: Arc::clone(self),
            key,
        }
    }
}

/// One open WebSocket of a lab, counted while it lives.
pub(crate) struct WebSocketGuard {
    inner: Arc<Inner>,
    key: WebSocketKey,
}

/// A lab's id and a user's: what open WebSockets are counted by.
type WebSocketKey = (Box<str>, Arc<str>);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        let mut open = self
            .inner
            .websockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Resolves once `flag` is `true` or its sender is gone.
pub(crate) async fn raised(flag: &mut watch::Receiver<bool>) {
    // The guard returned by `wait_for` is not `Send`: drop it here.
    let _ = flag.wait_for(|raised| *raised).await;
}

/// A revocation: in effect in this process when returned (sessions gone
/// from memory, their WebSockets closed); [`Revocation::persisted`] waits
/// until the session table has dropped them too. Dropping it does not
/// cancel the table's part.
#[derive(Debug)]
pub struct Revocation {
    table: Option<tokio::task::JoinHandle<Result<(), SessionTableError>>>,
}

impl Revocation {
    /// Waits for the session table (at once without one).
    pub async fn persisted(self) -> Result<(), SessionTableError> {
        match self.table {
            Some(task) => task.await.map_err(SessionTableError::new)?,
            None => Ok(()),
        }
    }
}

impl Proxy {
    /// Creates the proxy with sessions in memory only (they end with the
    /// process); nothing listens until [`Proxy::serve`].
    pub fn new(config: ProxyConfig, directory: Arc<dyn LabDirectory>) -> Proxy {
        Proxy::build(config, directory, None)
    }

    /// Creates the proxy with its sessions written through to `table`, so
    /// that they survive a restart and are shared with other processes on
    /// the same table. Table calls run on the current runtime (or, outside
    /// one, on the one [`Proxy::serve`] is first called on).
    pub fn with_session_table(
        config: ProxyConfig,
        directory: Arc<dyn LabDirectory>,
        table: Arc<dyn SessionTable>,
    ) -> Proxy {
        Proxy::build(config, directory, Some(table))
    }

    fn build(
        config: ProxyConfig,
        directory: Arc<dyn LabDirectory>,
        table: Option<Arc<dyn SessionTable>>,
    ) -> Proxy {
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
        let table_runtime = OnceLock::new();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = table_runtime.set(runtime);
        }
        let recheck = table.is_some().then_some(config.session_recheck);
        let inner = Inner {
            pages: Pages::new(&config.platform_url),
            sessions: SessionStore::new(config.session_ttl, config.max_sessions_per_user, recheck),
            tickets: TicketStore::new(config.ticket_ttl, config.max_tickets_per_user),
            table,
            table_runtime,
            lookups: Semaphore::new(TABLE_LOOKUPS),
            limiter: ConnectionLimiter::new(
                config.max_connections,
                config.max_connections_per_client,
            ),
            websockets: Mutex::new(HashMap::new()),
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
    /// `/labs/<lab_id>/_insitu/auth?ticket=…&next=…` on the lab's origin
    /// ([`PublicUrl::lab_url`]).
    pub fn issue_ticket(&self, lab_id: &str, user_id: &str) -> String {
        self.inner
            .tickets
            .issue(lab_id, user_id, Instant::now())
            .into_string()
    }

    /// Revokes every proxy session for a lab (lab stopped), closing its
    /// open WebSocket connections, in memory at once and in the session
    /// table (await [`Revocation::persisted`] to know it is done there).
    pub fn revoke_lab(&self, lab_id: &str) -> Revocation {
        self.inner.sessions.revoke_lab(lab_id, SystemTime::now());
        tracing::debug!(lab_id, "revoked proxy sessions of lab");
        let lab_id = lab_id.to_owned();
        self.revoke_in_table(move |table| async move { table.remove_lab(&lab_id).await })
    }

    /// Revokes every proxy session for a user (account disabled), closing
    /// their open WebSocket connections, as [`Proxy::revoke_lab`] does.
    pub fn revoke_user(&self, user_id: &str) -> Revocation {
        self.inner.sessions.revoke_user(user_id, SystemTime::now());
        tracing::debug!(user_id, "revoked proxy sessions of user");
        let user_id = user_id.to_owned();
        self.revoke_in_table(move |table| async move { table.remove_user(&user_id).await })
    }

    fn revoke_in_table<F, Fut>(&self, call: F) -> Revocation
    where
        F: FnOnce(Arc<dyn SessionTable>) -> Fut,
        Fut: Future<Output = Result<(), SessionTableError>> + Send + 'static,
    {
        let Some(table) = self.inner.table.clone() else {
            return Revocation { table: None };
        };
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.inner.table_runtime.get().cloned());
        let call = call(table);
        let logged = async move {
            let result = call.await;
            if let Err(error) = &result {
                tracing::error!(%error, "proxy sessions revoked in memory but not in the table");
            }
            result
        };
        match runtime {
            Some(runtime) => Revocation {
                table: Some(runtime.spawn(logged)),
            },
            None => {
                tracing::error!("proxy sessions revoked in memory only: no runtime for the table");
                Revocation { table: None }
            }
        }
    }

    /// Connections open to the proxy, WebSockets included.
    pub fn open_connections(&self) -> usize {
        self.inner.limiter.open()
    }

    /// WebSockets open to a lab through the proxy.
    pub fn open_websockets(&self, lab_id: &str) -> usize {
        self.connected(lab_id).iter().map(|c| c.websockets).sum()
    }

    /// Who is connected to a lab: each user with a live session or an
    /// open WebSocket in it (in this process), by user id.
    pub fn connected(&self, lab_id: &str) -> Vec<Connected> {
        let mut by_user: std::collections::BTreeMap<String, Connected> =
            std::collections::BTreeMap::new();
        for (user_id, sessions) in self.inner.sessions.of_lab(lab_id, Instant::now()) {
            by_user
                .entry(user_id.clone())
                .or_insert_with(|| Connected::new(user_id))
                .sessions += sessions;
        }
        let open = self
            .inner
            .websockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for ((lab, user_id), count) in open.iter() {
            if &**lab == lab_id {
                by_user
                    .entry(user_id.to_string())
                    .or_insert_with(|| Connected::new(user_id.to_string()))
                    .websockets += count;
            }
        }
        by_user.into_values().collect()
    }

    /// Ends the sessions of one user in one lab (a share revoked), closing
    /// their open WebSockets, in this process at once. The caller removes
    /// them from the session table and from the lab's route: a session
    /// that comes back from the table is then refused by the route.
    pub fn revoke_lab_user(&self, lab_id: &str, user_id: &str) {
        self.inner.sessions.revoke_lab_user(lab_id, user_id);
        tracing::debug!(lab_id, user_id, "revoked proxy sessions of a user in a lab");
    }

    /// Serves connections from `listener` until `shutdown` completes, then
    /// stops accepting, lets in-flight requests finish (for up to 10 s) and
    /// closes WebSocket connections. Call it once per proxy: the shutdown
    /// also ends the connections of any other `serve` of the same proxy.
    ///
    /// The proxy runs on threads of its own ([`ProxyConfig::threads`]),
    /// each a single-threaded event loop accepting from the same listener,
    /// as nginx's workers do: a request and the lab connection it uses stay
    /// on one thread, which keeps latency low and even. Expired sessions
    /// and tickets are swept on the caller's runtime.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _ = self.inner.table_runtime.set(runtime);
        }
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
        let sweeper = tokio::spawn(sweep_until_shutdown(Arc::clone(&self.inner)));
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
        sweeper.abort();
        result
    }
}

/// Every so often: drops expired sessions and tickets, rechecks sessions
/// with open WebSockets against the table and purges it of expired rows.
async fn sweep_until_shutdown(inner: Arc<Inner>) {
    let every = if inner.table.is_some() {
        inner
            .config
            .session_recheck
            .clamp(Duration::from_secs(1), SWEEP_EVERY)
    } else {
        SWEEP_EVERY
    };
    let mut flag = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => sweep(&inner).await,
            () = raised(&mut flag) => return,
        }
    }
}

async fn sweep(inner: &Inner) {
    let now = Instant::now();
    let wall = SystemTime::now();
    inner.tickets.purge(now);
    let due = inner.sessions.sweep(now, wall);
    let Some(table) = &inner.table else {
        return;
    };
    for digest in due {
        match table.find(digest).await {
            Ok(Some(_)) => inner.sessions.confirm(&digest, Instant::now()),
            Ok(None) => {
                tracing::debug!("proxy session gone from the table: its WebSockets close");
                inner.sessions.forget(&digest);
            }
            Err(error) => tracing::warn!(%error, "cannot recheck a proxy session"),
        }
    }
    if let Err(error) = table.remove_expired(wall).await {
        tracing::warn!(%error, "cannot purge expired proxy sessions");
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
            .field("sessions", &self.inner.sessions.len())
            .field("session_table", &self.inner.table.is_some())
            .field("connections", &self.inner.limiter)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README and the architecture notes quote these.
    #[test]
    fn the_defaults_are_those_documented() {
        let config = ProxyConfig::new("/");
        assert_eq!(config.header_read_timeout, Duration::from_secs(15));
        assert_eq!(config.keep_alive_timeout, Duration::from_secs(75));
        assert_eq!(config.max_connections, 10_000);
        assert_eq!(config.max_connections_per_client, 1_000);
        assert_eq!(config.max_tickets_per_user, 16);
        assert_eq!(config.max_sessions_per_user, 64);
        assert_eq!(config.session_recheck, Duration::from_secs(60));
        assert!(config.public_url.is_none());
    }
}
