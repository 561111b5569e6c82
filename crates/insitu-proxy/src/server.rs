//! The accept loop and the request handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, HOST, LOCATION, REFERRER_POLICY, SET_COOKIE, WWW_AUTHENTICATE,
};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::headers::{self, lab_cookie_name};
use crate::limits::{ConnectionPermit, Phase, TimedIo};
use crate::origin::{self, OriginCheck};
use crate::pages::ErrorCode;
use crate::path::{self, Target};
use crate::sessions::{Authenticated, Cached, parse_secret, session_digest};
use crate::splice::{self, WebSocketContext};
use crate::table::{SessionDigest, StoredSession};
use crate::{Inner, LabCredential, LabRoute, LabState};

/// Body of every response: the lab's, streamed, or one of ours.
pub(crate) type ProxyBody = Either<Incoming, Full<Bytes>>;

/// How long [`serve`] waits for in-flight requests after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about refused connections in this many seconds.
const REFUSAL_WARNING_EVERY_SECS: u64 = 10;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    // Header and keep-alive timeouts are kept by `TimedIo`: hyper's own
    // header timeout also runs while a kept-alive connection is idle.
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    // Every connection task holds a clone; `recv` ends when all are gone.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let last_warning = AtomicU64::new(0);
    let started = Instant::now();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(permit) = inner.limiter.try_acquire(peer.ip()) else {
            refuse(&inner, &stream);
            let now = started.elapsed().as_secs() + REFUSAL_WARNING_EVERY_SECS;
            let last = last_warning.load(Ordering::Relaxed);
            if now >= last + REFUSAL_WARNING_EVERY_SECS
                && last_warning
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                tracing::warn!(%peer, open = inner.limiter.open(), "connection limit reached: refusing connections");
            }
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve_connection(
            Arc::clone(&inner),
            builder.clone(),
            stream,
            peer,
            permit,
            alive.clone(),
        ));
    }
    inner.shutdown.send_replace(true);
    drop(alive);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_done.recv())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// Answers a connection past a limit with `too_many_connections`, without
/// waiting on it, and closes it.
fn refuse(inner: &Inner, stream: &TcpStream) {
    // A new socket's send buffer takes the small page at once.
    let _ = stream.try_write(inner.pages.refusal());
}

/// What one client connection shares with its requests and WebSocket.
pub(crate) struct Connection {
    peer_ip: HeaderValue,
    phase: Arc<Phase>,
    /// Its place among the open connections, held until the connection
    /// (or the WebSocket it became) ends.
    _permit: ConnectionPermit,
}

async fn serve_connection(
    inner: Arc<Inner>,
    builder: http1::Builder,
    stream: TcpStream,
    peer: SocketAddr,
    permit: ConnectionPermit,
    _alive: mpsc::Sender<()>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    let phase = Arc::new(Phase::default());
    let connection = Arc::new(Connection {
        peer_ip: HeaderValue::try_from(peer.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
        phase: Arc::clone(&phase),
        _permit: permit,
    });
    let io = TimedIo::new(
        stream,
        phase,
        inner.config.header_read_timeout,
        inner.config.keep_alive_timeout,
    );
    let service = service_fn(move |request| {
        connection.phase.begin_request();
        let response = handle(&inner, &connection, request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = crate::raised(&mut shutdown) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// A response body that tells the connection when it is done with, so
/// that the wait for the next request is timed from then.
pub(crate) struct TrackedBody {
    body: ProxyBody,
    phase: Arc<Phase>,
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = <ProxyBody as Body>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.phase.end_request();
    }
}

/// What to do with a request once it has been checked.
enum Decision {
    Respond(Response<ProxyBody>),
    Forward {
        upstream: Upstream,
        credential: Option<LabCredential>,
        websocket: Option<WebSocketContext>,
    },
}

/// The checks that could be made without the session table, and what
/// is left.
enum Step {
    Done(Decision),
    /// Ask the table about session cookies, then go on.
    Lookup(Box<Lookup>),
    /// Write a new session through to the table, then send `response`.
    Persist(StoredSession, Response<ProxyBody>),
}

/// Session cookies of a request that memory could not settle.
struct Lookup {
    lab_id: Box<str>,
    websocket: bool,
    /// A session in memory that the table has not confirmed lately.
    stale: Option<(SessionDigest, Authenticated)>,
    /// A cookie memory does not know.
    unknown: Option<SessionDigest>,
    /// After a sign-in link was reused: where to go with a valid session.
    reuse_next: Option<String>,
}

impl Lookup {
    /// Whether there is a cookie to ask the table about.
    fn asks_anything(&self) -> bool {
        self.stale.is_some() || self.unknown.is_some()
    }
}

/// Checks the request (path, host, origin, session, lab state,
/// ownership), then forwards it. The returned future owns everything it
/// needs; it reaches the session table only for a session not in memory.
fn handle(
    inner: &Arc<Inner>,
    connection: &Arc<Connection>,
    mut request: Request<Incoming>,
) -> impl Future<Output = Response<TrackedBody>> + Send + 'static + use<> {
    let step = decide(inner, connection, &request, Instant::now());
    let inner = Arc::clone(inner);
    let connection = Arc::clone(connection);
    async move {
        let decision = match step {
            Step::Done(decision) => decision,
            Step::Lookup(lookup) => resolve(&inner, &connection, *lookup).await,
            Step::Persist(record, response) => {
                persist(&inner, record).await;
                Decision::Respond(response)
            }
        };
        let response = match decision {
            Decision::Respond(response) => response,
            Decision::Forward {
                upstream,
                credential,
                websocket,
            } => {
                let credentialed = credential.is_some();
                match prepare(
                    &inner,
                    &connection.peer_ip,
                    &mut request,
                    &upstream,
                    credential,
                    websocket.is_some(),
                ) {
                    Ok(()) => {
                        forward_request(&inner, &connection, request, websocket, credentialed).await
                    }
                    Err(code) => inner.page(code),
                }
            }
        };
        response.map(|body| TrackedBody {
            body,
            phase: Arc::clone(&connection.phase),
        })
    }
}

fn decide(
    inner: &Inner,
    connection: &Arc<Connection>,
    request: &Request<Incoming>,
    now: Instant,
) -> Step {
    let respond = |code| Step::Done(Decision::Respond(inner.page(code)));
    let (id, rest) = match path::parse(request.uri().path()) {
        Target::Invalid => return respond(ErrorCode::NotFound),
        Target::LabRoot(id) => {
            return Step::Done(Decision::Respond(inner.add_slash(id, request.uri())));
        }
        Target::Lab { id, rest } => (id, rest),
    };
    let host = origin::request_host(request.uri(), request.headers());
    let public = inner.config.public_url.as_ref();
    if let Some(public) = public.filter(|p| p.per_lab())
        && host.and_then(|h| public.lab_of_host(h)) != Some(id)
    {
        return respond(ErrorCode::LabWrongHost);
    }
    let websocket = headers::is_websocket_upgrade(request.headers());
    match origin::check_origin(public, id, host, request.headers()) {
        OriginCheck::Own => {}
        OriginCheck::Absent if !websocket => {}
        OriginCheck::Absent | OriginCheck::Foreign => {
            return respond(ErrorCode::LabOriginForbidden);
        }
    }
    if let Some(reserved) = rest.strip_prefix("/_insitu/") {
        return if reserved == "auth" {
            inner.redeem(id, request, now)
        } else {
            respond(ErrorCode::NotFound)
        };
    }
    match inner.authenticate(request, id, now, websocket) {
        Ok(session) => Step::Done(authorize(inner, connection, id, session, websocket, now)),
        Err(lookup) if inner.table.is_some() && lookup.asks_anything() => Step::Lookup(lookup),
        Err(_) => respond(ErrorCode::LabAuthRequired),
    }
}

/// The rest of the checks once the session is known: lab state and
/// ownership.
fn authorize(
    inner: &Inner,
    connection: &Arc<Connection>,
    id: &str,
    session: Authenticated,
    websocket: bool,
    now: Instant,
) -> Decision {
    let respond = |code| Decision::Respond(inner.page(code));
    let Some(route) = inner.directory.route(id) else {
        return respond(ErrorCode::LabNotRunning);
    };
    if !may_use(&route, &session.user_id) {
        return respond(ErrorCode::LabForbidden);
    }
    match route.state {
        LabState::Stopping | LabState::Stopped | LabState::Failed => {
            respond(ErrorCode::LabNotRunning)
        }
        LabState::Pending | LabState::Starting => respond(ErrorCode::LabStarting),
        // A lab whose scheduler cannot be asked may well run: its users
        // keep it (a connection fails if it does not).
        LabState::Running | LabState::Unknown => {
            inner.touch(id, now);
            Decision::Forward {
                upstream: Upstream {
                    addr: route.upstream,
                    lab_id: route.network.is_some().then(|| id.to_owned()),
                },
                credential: route.credential,
                websocket: match (websocket, session.revoked) {
                    (true, Some(revoked)) => Some(WebSocketContext {
                        lab_id: id.into(),
                        user_id: Arc::clone(&session.user_id),
                        revoked,
                        connection: Arc::clone(connection),
                    }),
                    _ => None,
                },
            }
        }
    }
}

/// Settles a [`Lookup`] with the session table.
async fn resolve(inner: &Arc<Inner>, connection: &Arc<Connection>, lookup: Lookup) -> Decision {
    let Lookup {
        lab_id,
        websocket,
        stale,
        unknown,
        reuse_next,
    } = lookup;
    let session = match inner.look_up(&lab_id, websocket, stale, unknown).await {
        Ok(session) => session,
        Err(code) => return Decision::Respond(inner.page(code)),
    };
    match (session, reuse_next) {
        (Some(_), Some(next)) => Decision::Respond(inner.redirect(StatusCode::SEE_OTHER, &next)),
        (None, Some(_)) => Decision::Respond(inner.page(ErrorCode::LabTicketInvalid)),
        (Some(session), None) => authorize(
            inner,
            connection,
            &lab_id,
            session,
            websocket,
            Instant::now(),
        ),
        (None, None) => Decision::Respond(inner.page(ErrorCode::LabAuthRequired)),
    }
}

/// Writes a new session through to the table. A failure leaves the
/// session working in this process only.
async fn persist(inner: &Inner, record: StoredSession) {
    let Some(table) = inner.table.clone() else {
        return;
    };
    let keep = inner.config.max_sessions_per_user;
    let lab_id = record.lab_id.clone();
    let stored = inner
        .on_table(async move { table.insert(record, keep).await })
        .await;
    if let Err(error) = stored {
        tracing::warn!(%error, lab_id, "proxy session kept in memory only");
    }
}

/// The authorisation rule, checked on every request and WebSocket
/// upgrade: the owner, and the users the owner shares the lab with.
fn may_use(route: &LabRoute, user_id: &str) -> bool {
    route.owner == user_id || route.shared_with.iter().any(|u| u == user_id)
}

/// Where a checked request goes.
struct Upstream {
    addr: SocketAddr,
    /// Set for a lab in a network of its own: the connector asks the
    /// directory for that network.
    lab_id: Option<String>,
}

impl Upstream {
    /// The authority the client pools connections by: the address, or, for
    /// a lab in its own network, `<lab-id>.lab:<port>` (resolved by
    /// [`crate::connect::LabConnector`]), so that equal addresses in
    /// different networks never share a connection.
    fn authority(&self) -> String {
        match &self.lab_id {
            Some(id) => format!(
                "{id}{}:{}",
                crate::connect::LAB_HOST_SUFFIX,
                self.addr.port()
            ),
            None => self.addr.to_string(),
        }
    }
}

/// Rewrites the request for the lab's upstream.
fn prepare(
    inner: &Inner,
    peer_ip: &HeaderValue,
    request: &mut Request<Incoming>,
    upstream: &Upstream,
    credential: Option<LabCredential>,
    websocket: bool,
) -> Result<(), ErrorCode> {
    let mut parts = std::mem::take(request.uri_mut()).into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(
        Authority::from_maybe_shared(Bytes::from(upstream.authority()))
            .map_err(|_| ErrorCode::LabUpstreamUnreachable)?,
    );
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| ErrorCode::NotFound)?;
    *request.version_mut() = Version::HTTP_11;

    let headers = request.headers_mut();
    headers::strip_hop_by_hop(headers, websocket);
    headers::strip_platform_credentials(headers);
    if let Some(credential) = credential {
        // The lab's credential replaces whatever the browser sent.
        headers.insert(AUTHORIZATION, credential.header().clone());
    }
    let forwarded_for = match headers.get(&X_FORWARDED_FOR) {
        Some(previous) => {
            let mut value = Vec::with_capacity(previous.len() + 2 + peer_ip.len());
            value.extend_from_slice(previous.as_bytes());
            value.extend_from_slice(b", ");
            value.extend_from_slice(peer_ip.as_bytes());
            HeaderValue::from_maybe_shared(Bytes::from(value)).unwrap_or_else(|_| peer_ip.clone())
        }
        None => peer_ip.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    headers.insert(X_FORWARDED_PROTO.clone(), inner.forwarded_proto.clone());
    match headers.get(HOST).cloned() {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    Ok(())
}

async fn forward_request(
    inner: &Arc<Inner>,
    connection: &Connection,
    mut request: Request<Incoming>,
    websocket: Option<WebSocketContext>,
    credentialed: bool,
) -> Response<ProxyBody> {
    let client_upgrade = websocket.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let mut response = match inner.client.request(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(%error, "lab upstream unreachable");
            return inner.page(ErrorCode::LabUpstreamUnreachable);
        }
    };
    if credentialed {
        // A challenge is for the proxy, which holds the lab's credential:
        // a browser would only prompt for it.
        response.headers_mut().remove(WWW_AUTHENTICATE);
    }
    if let (Some(context), Some(client_upgrade)) = (websocket, client_upgrade)
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        connection.phase.upgrade();
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(splice::run(
            Arc::clone(inner),
            context,
            client_upgrade,
            upstream_upgrade,
        ));
        let (mut parts, _) = response.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers, true);
        headers::strip_insitu_set_cookies(&mut parts.headers);
        return Response::from_parts(parts, Either::Right(Full::default()));
    }
    let headers = response.headers_mut();
    headers::strip_hop_by_hop(headers, false);
    headers::strip_insitu_set_cookies(headers);
    response.map(Either::Left)
}

impl Inner {
    pub(crate) fn page(&self, code: ErrorCode) -> Response<ProxyBody> {
        let mut response = Response::new(Either::Right(Full::default()));
        *response.status_mut() = code.status();
        let body = self.pages.get(code, response.headers_mut());
        *response.body_mut() = Either::Right(Full::new(body));
        response
    }

    fn redirect(&self, status: StatusCode, location: &str) -> Response<ProxyBody> {
        let Ok(location) = HeaderValue::from_str(location) else {
            return self.page(ErrorCode::NotFound);
        };
        let mut response = Response::new(Either::Right(Full::default()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(LOCATION, location);
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }

    /// `/labs/<id>` → `/labs/<id>/` (the cookie's path needs the slash).
    fn add_slash(&self, id: &str, uri: &Uri) -> Response<ProxyBody> {
        let location = match uri.query() {
            Some(query) => format!("/labs/{id}/?{query}"),
            None => format!("/labs/{id}/"),
        };
        self.redirect(StatusCode::PERMANENT_REDIRECT, &location)
    }

    /// A valid proxy session for lab `id` among the request's cookies, as
    /// far as memory knows; otherwise what is left to ask the table.
    fn authenticate(
        &self,
        request: &Request<Incoming>,
        id: &str,
        now: Instant,
        watch_revocation: bool,
    ) -> Result<Authenticated, Box<Lookup>> {
        let mut stale = None;
        let mut unknown = None;
        for value in headers::lab_cookie_values(request.headers(), id) {
            let Some(secret) = parse_secret(value) else {
                continue;
            };
            match self
                .sessions
                .authenticate(&secret, id, now, watch_revocation)
            {
                Cached::Valid(session) => return Ok(session),
                Cached::Stale(session) => {
                    stale.get_or_insert_with(|| (session_digest(&secret), session));
                }
                Cached::Invalid => {}
                Cached::Unknown => {
                    unknown.get_or_insert_with(|| session_digest(&secret));
                }
            }
        }
        Err(Box::new(Lookup {
            lab_id: id.into(),
            websocket: watch_revocation,
            stale,
            unknown,
            reuse_next: None,
        }))
    }

    /// Asks the table about a stale session (trusted still if the table
    /// cannot answer) and then about an unknown one.
    async fn look_up(
        &self,
        lab_id: &str,
        websocket: bool,
        stale: Option<(SessionDigest, Authenticated)>,
        unknown: Option<SessionDigest>,
    ) -> Result<Option<Authenticated>, ErrorCode> {
        if let Some((digest, session)) = stale {
            match self.find(digest).await {
                Ok(Some(stored)) if stored.lab_id == lab_id => {
                    self.sessions.confirm(&digest, Instant::now());
                    return Ok(Some(session));
                }
                Ok(_) => self.sessions.forget(&digest),
                Err(error) => {
                    tracing::warn!(%error, lab_id, "cannot recheck a proxy session: trusting it");
                    return Ok(Some(session));
                }
            }
        }
        let Some(digest) = unknown else {
            return Ok(None);
        };
        match self.find(digest).await {
            Ok(Some(stored)) => Ok(self.sessions.admit(
                &stored,
                lab_id,
                Instant::now(),
                SystemTime::now(),
                websocket,
            )),
            Ok(None) => Ok(None),
            Err(error) => {
                tracing::warn!(%error, lab_id, "cannot read the proxy session table");
                Err(ErrorCode::LabSessionsUnavailable)
            }
        }
    }

    async fn find(
        &self,
        digest: SessionDigest,
    ) -> Result<Option<StoredSession>, crate::SessionTableError> {
        let Some(table) = self.table.clone() else {
            return Ok(None);
        };
        let _permit = self
            .lookups
            .acquire()
            .await
            .map_err(crate::SessionTableError::new)?;
        self.on_table(async move { table.find(digest).await }).await
    }

    /// `/labs/<id>/_insitu/auth?ticket=…&next=…`: trades a ticket for a
    /// session cookie and sends the browser on to `next` (inside the lab).
    fn redeem(&self, id: &str, request: &Request<Incoming>, now: Instant) -> Step {
        let query = request.uri().query().unwrap_or("");
        let next = path::query_param(query, "next")
            .filter(|next| path::is_safe_next(next, id))
            .map_or_else(|| format!("/labs/{id}/"), |next| next.into_owned());
        let user = path::query_param(query, "ticket")
            .and_then(|ticket| self.tickets.redeem(&ticket, id, now));
        let Some(user) = user else {
            // A reload of a used sign-in link, by a browser that already has
            // a session for this lab: just go on.
            return match self.authenticate(request, id, now, false) {
                Ok(_) => Step::Done(Decision::Respond(
                    self.redirect(StatusCode::SEE_OTHER, &next),
                )),
                Err(mut lookup) if self.table.is_some() && lookup.asks_anything() => {
                    lookup.reuse_next = Some(next);
                    Step::Lookup(lookup)
                }
                Err(_) => Step::Done(Decision::Respond(self.page(ErrorCode::LabTicketInvalid))),
            };
        };
        let (secret, record) = self.sessions.create(id, &user, now, SystemTime::now());
        let cookie = format!(
            "{name}={secret}; Path=/labs/{id}/; HttpOnly; SameSite=Lax{secure}",
            name = lab_cookie_name(id),
            secret = secret.as_str(),
            secure = if self.config.cookie_secure {
                "; Secure"
            } else {
                ""
            },
        );
        let mut response = self.redirect(StatusCode::SEE_OTHER, &next);
        match HeaderValue::try_from(cookie) {
            Ok(cookie) => {
                response.headers_mut().insert(SET_COOKIE, cookie);
                tracing::debug!(lab_id = id, user_id = &*user, "proxy session opened");
                Step::Persist(record, response)
            }
            Err(_) => Step::Done(Decision::Respond(self.page(ErrorCode::NotFound))),
        }
    }
}
