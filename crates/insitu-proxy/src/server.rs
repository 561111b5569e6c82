//! The accept loop and the request handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, HOST, LOCATION, REFERRER_POLICY, SET_COOKIE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::headers::{self, lab_cookie_name};
use crate::pages::ErrorCode;
use crate::path::{self, Target};
use crate::sessions::{Authenticated, parse_secret};
use crate::splice::{self, WebSocketContext};
use crate::{Inner, LabRoute, LabState};

/// Body of every response: the lab's, streamed, or one of ours.
pub(crate) type ProxyBody = Either<Incoming, Full<Bytes>>;

/// How long a client may take to send request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`serve`] waits for in-flight requests after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

pub(crate) async fn serve(
    inner: Arc<Inner>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // Every connection task holds a clone; `recv` ends when all are gone.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
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
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve_connection(
            Arc::clone(&inner),
            builder.clone(),
            stream,
            peer,
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

async fn serve_connection(
    inner: Arc<Inner>,
    builder: http1::Builder,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    _alive: mpsc::Sender<()>,
) {
    let mut shutdown = inner.shutdown.subscribe();
    let peer_ip = match HeaderValue::try_from(peer.ip().to_string()) {
        Ok(value) => value,
        Err(_) => HeaderValue::from_static("unknown"),
    };
    let service = service_fn(move |request| {
        let response = handle(&inner, &peer_ip, request);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
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

/// What to do with a request once it has been checked.
enum Decision {
    Respond(Response<ProxyBody>),
    Forward {
        upstream: Upstream,
        websocket: Option<WebSocketContext>,
    },
}

/// Checks the request synchronously (path, session, lab state, ownership),
/// then forwards it. The returned future owns everything it needs.
fn handle(
    inner: &Arc<Inner>,
    peer_ip: &HeaderValue,
    mut request: Request<Incoming>,
) -> impl Future<Output = Response<ProxyBody>> + Send + 'static + use<> {
    let decision = decide(inner, &request);
    let inner = Arc::clone(inner);
    let forward = match decision {
        Decision::Respond(response) => Err(response),
        Decision::Forward {
            upstream,
            websocket,
        } => prepare(
            &inner,
            peer_ip,
            &mut request,
            &upstream,
            websocket.is_some(),
        )
        .map(|()| websocket)
        .map_err(|code| inner.page(code)),
    };
    async move {
        match forward {
            Err(response) => response,
            Ok(websocket) => forward_request(inner, request, websocket).await,
        }
    }
}

fn decide(inner: &Inner, request: &Request<Incoming>) -> Decision {
    let now = Instant::now();
    let (id, rest) = match path::parse(request.uri().path()) {
        Target::Invalid => return Decision::Respond(inner.page(ErrorCode::NotFound)),
        Target::LabRoot(id) => return Decision::Respond(inner.add_slash(id, request.uri())),
        Target::Lab { id, rest } => (id, rest),
    };
    if let Some(reserved) = rest.strip_prefix("/_insitu/") {
        return Decision::Respond(if reserved == "auth" {
            inner.redeem(id, request, now)
        } else {
            inner.page(ErrorCode::NotFound)
        });
    }
    let websocket = headers::is_websocket_upgrade(request.headers());
    let Some(session) = inner.authenticate(request, id, now, websocket) else {
        return Decision::Respond(inner.page(ErrorCode::LabAuthRequired));
    };
    let Some(route) = inner.directory.route(id) else {
        return Decision::Respond(inner.page(ErrorCode::LabNotRunning));
    };
    if !may_use(&route, &session.user_id) {
        return Decision::Respond(inner.page(ErrorCode::LabForbidden));
    }
    match route.state {
        LabState::Stopping | LabState::Stopped | LabState::Failed => {
            Decision::Respond(inner.page(ErrorCode::LabNotRunning))
        }
        LabState::Pending | LabState::Starting => {
            Decision::Respond(inner.page(ErrorCode::LabStarting))
        }
        LabState::Running => {
            inner.touch(id, now);
            Decision::Forward {
                upstream: Upstream {
                    addr: route.upstream,
                    lab_id: route.network.is_some().then(|| id.to_owned()),
                },
                websocket: match (websocket, session.revoked) {
                    (true, Some(revoked)) => Some(WebSocketContext {
                        lab_id: id.into(),
                        revoked,
                    }),
                    _ => None,
                },
            }
        }
    }
}

/// The authorisation rule, checked on every request: today only the owner
/// may use a lab. Sharing will be added here.
fn may_use(route: &LabRoute, user_id: &str) -> bool {
    route.owner == user_id
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
    inner: Arc<Inner>,
    mut request: Request<Incoming>,
    websocket: Option<WebSocketContext>,
) -> Response<ProxyBody> {
    let client_upgrade = websocket.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let mut response = match inner.client.request(request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(%error, "lab upstream unreachable");
            return inner.page(ErrorCode::LabUpstreamUnreachable);
        }
    };
    if let (Some(context), Some(client_upgrade)) = (websocket, client_upgrade)
        && response.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(splice::run(
            Arc::clone(&inner),
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

    /// A valid proxy session for lab `id` among the request's cookies.
    fn authenticate(
        &self,
        request: &Request<Incoming>,
        id: &str,
        now: Instant,
        watch_revocation: bool,
    ) -> Option<Authenticated> {
        headers::lab_cookie_values(request.headers(), id).find_map(|value| {
            let secret = parse_secret(value)?;
            self.sessions
                .authenticate(&secret, id, now, watch_revocation)
        })
    }

    /// `/labs/<id>/_insitu/auth?ticket=…&next=…`: trades a ticket for a
    /// session cookie and sends the browser on to `next` (inside the lab).
    fn redeem(&self, id: &str, request: &Request<Incoming>, now: Instant) -> Response<ProxyBody> {
        let query = request.uri().query().unwrap_or("");
        let next = path::query_param(query, "next")
            .filter(|next| path::is_safe_next(next, id))
            .map_or_else(|| format!("/labs/{id}/"), |next| next.into_owned());
        let user = path::query_param(query, "ticket")
            .and_then(|ticket| self.tickets.redeem(&ticket, id, now));
        let Some(user) = user else {
            // A reload of a used sign-in link, by a browser that already has
            // a session for this lab: just go on.
            if self.authenticate(request, id, now, false).is_some() {
                return self.redirect(StatusCode::SEE_OTHER, &next);
            }
            return self.page(ErrorCode::LabTicketInvalid);
        };
        let secret = self.sessions.create(id, &user, now);
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
                response
            }
            Err(_) => self.page(ErrorCode::NotFound),
        }
    }
}
