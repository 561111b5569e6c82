//! The test rig: a lab directory in memory, an upstream server and an HTTP client.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SET_COOKIE, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use insitu_proxy::{
    LabCredential, LabDirectory, LabNetwork, LabRoute, LabState, Proxy, ProxyConfig, SessionTable,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

pub const PLATFORM_URL: &str = "https://platform.example/";

/// Labs and activity reports, in memory.
#[derive(Default)]
pub struct Directory {
    labs: Mutex<HashMap<String, LabRoute>>,
    activity: Mutex<HashMap<String, usize>>,
}

impl Directory {
    pub fn set(&self, lab_id: &str, upstream: SocketAddr, owner: &str, state: LabState) {
        self.labs.lock().unwrap().insert(
            lab_id.to_owned(),
            LabRoute {
                upstream,
                network: None,
                owner: owner.to_owned(),
                shared_with: Vec::new(),
                state,
                credential: None,
            },
        );
    }

    /// Puts a lab in a network of its own: the proxy must go through it.
    pub fn set_network(&self, lab_id: &str, upstream: SocketAddr, network: Arc<dyn LabNetwork>) {
        self.labs.lock().unwrap().insert(
            lab_id.to_owned(),
            LabRoute {
                upstream,
                network: Some(network),
                owner: OWNER.to_owned(),
                shared_with: Vec::new(),
                state: LabState::Running,
                credential: None,
            },
        );
    }

    /// Sets a running lab of `owner` whose tool requires `credential`.
    pub fn set_credential(
        &self,
        lab_id: &str,
        upstream: SocketAddr,
        owner: &str,
        credential: Option<LabCredential>,
    ) {
        self.labs.lock().unwrap().insert(
            lab_id.to_owned(),
            LabRoute {
                upstream,
                network: None,
                owner: owner.to_owned(),
                shared_with: Vec::new(),
                state: LabState::Running,
                credential,
            },
        );
    }

    pub fn activity(&self, lab_id: &str) -> usize {
        self.activity
            .lock()
            .unwrap()
            .get(lab_id)
            .copied()
            .unwrap_or(0)
    }
}

impl LabDirectory for Directory {
    fn route(&self, lab_id: &str) -> Option<LabRoute> {
        self.labs.lock().unwrap().get(lab_id).cloned()
    }

    fn record_activity(&self, lab_id: &str) {
        *self
            .activity
            .lock()
            .unwrap()
            .entry(lab_id.to_owned())
            .or_default() += 1;
    }
}

/// A proxy in front of one upstream, with lab `lab-1` of `alice` running.
pub struct Rig {
    pub proxy: Proxy,
    pub addr: SocketAddr,
    pub directory: Arc<Directory>,
    pub upstream: Upstream,
    pub client: Client<HttpConnector, Full<Bytes>>,
    pub config: ProxyConfig,
    pub table: Option<Arc<dyn SessionTable>>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub const LAB: &str = "lab-1";
pub const OWNER: &str = "alice";

impl Rig {
    pub async fn start() -> Rig {
        Rig::with_config(ProxyConfig::new(PLATFORM_URL)).await
    }

    pub async fn with_config(config: ProxyConfig) -> Rig {
        Rig::with(|c, _| *c = config, None).await
    }

    /// A rig whose configuration `configure` adjusts, knowing the proxy's
    /// address, and whose sessions go through to `table`.
    pub async fn with(
        configure: impl FnOnce(&mut ProxyConfig, SocketAddr),
        table: Option<Arc<dyn SessionTable>>,
    ) -> Rig {
        let upstream = Upstream::start().await;
        let directory = Arc::new(Directory::default());
        directory.set(LAB, upstream.addr, OWNER, LabState::Running);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ProxyConfig::new(PLATFORM_URL);
        configure(&mut config, addr);
        let mut rig = Rig {
            proxy: Proxy::new(config.clone(), directory.clone()),
            addr,
            directory,
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            config,
            table,
            stop: None,
            served: None,
        };
        rig.serve(listener);
        rig
    }

    /// A new proxy (as after a restart of the platform) on the same
    /// directory and session table, on the same address.
    pub async fn restart(&mut self) {
        self.shut_down().await.unwrap();
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.client = Client::builder(TokioExecutor::new()).build_http();
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let directory: Arc<dyn LabDirectory> = self.directory.clone();
        self.proxy = match &self.table {
            Some(table) => {
                Proxy::with_session_table(self.config.clone(), directory, Arc::clone(table))
            }
            None => Proxy::new(self.config.clone(), directory),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        self.served = Some(tokio::spawn(self.proxy.clone().serve(listener, async {
            let _ = stopped.await;
        })));
        self.stop = Some(stop);
    }

    /// Tells the proxy to shut down; returns what `serve` returned.
    pub async fn shut_down(&mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        let served = self.served.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), served)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request to the proxy; `headers` are added as given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &'static str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, "").await
    }

    /// Redeems a fresh ticket of `user` for `lab_id`; returns the cookie pair.
    pub async fn sign_in(&self, lab_id: &str, user: &str) -> String {
        self.sign_in_at(lab_id, user, &[]).await
    }

    /// Same, with extra request headers (a `Host`, say).
    pub async fn sign_in_at(&self, lab_id: &str, user: &str, headers: &[(&str, &str)]) -> String {
        let ticket = self.proxy.issue_ticket(lab_id, user);
        let reply = self
            .get(
                &format!("/labs/{lab_id}/_insitu/auth?ticket={ticket}"),
                headers,
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text());
        let set_cookie = reply.header(SET_COOKIE.as_str()).unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts that this is the proxy's error page with `code`.
    pub fn assert_page(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert!(
            self.header("content-type")
                .unwrap()
                .starts_with("text/html"),
            "{:?}",
            self.headers
        );
        assert!(
            self.text().contains(&format!("<code>{code}</code>")),
            "{}",
            self.text()
        );
    }
}

/// The lab's server: echoes requests as JSON, streams bodies, speaks WebSocket.
pub struct Upstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::serve(None).await
    }

    /// An upstream that answers only requests (and upgrades) carrying
    /// `Authorization: <authorization>`, and 401 with a challenge otherwise.
    pub async fn start_guarded(authorization: &str) -> Upstream {
        Upstream::serve(Some(Arc::from(authorization))).await
    }

    async fn serve(required: Option<Arc<str>>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let required = required.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let required = required.clone();
                        async move {
                            match required {
                                Some(required) if !authorized(&request, &required) => {
                                    Ok(challenge())
                                }
                                _ => upstream(request).await,
                            }
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Upstream { addr, connections }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Exactly one `Authorization`, equal to `required`.
fn authorized(request: &Request<Incoming>, required: &str) -> bool {
    let mut values = request.headers().get_all("authorization").iter();
    values.next().is_some_and(|v| v == required) && values.next().is_none()
}

fn challenge() -> Response<UpstreamBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(b"denied"))));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"lab\""),
    );
    response
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

type UpstreamBody = Either<Full<Bytes>, Zeros>;

async fn upstream(request: Request<Incoming>) -> Result<Response<UpstreamBody>, Infallible> {
    let path = request.uri().path().to_owned();
    if path.ends_with("/ws") {
        return Ok(websocket_echo(request));
    }
    if path.ends_with("/upload") {
        let mut body = request.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                received += data.len() as u64;
            }
        }
        return Ok(json(&serde_json::json!({ "received": received })));
    }
    if path.ends_with("/download") {
        let bytes: u64 = request
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("bytes="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Ok(Response::new(Either::Right(Zeros::new(bytes))));
    }
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in request.headers() {
        headers
            .entry(name.to_string())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let mut response = json(&serde_json::json!({
        "method": method,
        "uri": uri,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    }));
    let h = response.headers_mut();
    h.insert("x-upstream", HeaderValue::from_static("echo"));
    h.append(
        SET_COOKIE,
        HeaderValue::from_static("insitu_lab_lab_2=planted; Path=/labs/lab-2/"),
    );
    h.append(
        SET_COOKIE,
        HeaderValue::from_static("_xsrf=lab; Path=/labs/lab-1/"),
    );
    Ok(response)
}

fn json(value: &serde_json::Value) -> Response<UpstreamBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(value.to_string()))));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn websocket_echo(mut request: Request<Incoming>) -> Response<UpstreamBody> {
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY) else {
        let mut response = Response::new(Either::Left(Full::default()));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = on_upgrade.await.unwrap();
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            let echoed = match message {
                Message::Text(_) | Message::Binary(_) => ws.send(message).await.is_ok(),
                Message::Close(_) => false,
                _ => true,
            };
            if !echoed {
                break;
            }
        }
    });
    let mut response = Response::new(Either::Left(Full::default()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(
        SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).unwrap(),
    );
    h.insert("x-upstream", HeaderValue::from_static("ws"));
    response
}

/// A body of `remaining` zero bytes in 64 KiB chunks, never held in memory.
pub struct Zeros {
    remaining: u64,
}

static CHUNK: [u8; 64 * 1024] = [0; 64 * 1024];

impl Zeros {
    pub fn new(bytes: u64) -> Zeros {
        Zeros { remaining: bytes }
    }
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK.len() as u64) as usize;
        self.remaining -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK[..n])))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// Resident set size of this process, in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Waits until `check` holds, for up to two seconds.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `path` on the proxy with `headers` (a cookie, an
/// `Origin`, a `Host`); the refusal's status otherwise.
pub async fn open_websocket(
    rig: &Rig,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, StatusCode> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}{}", rig.addr, path)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
            Ok(socket)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status()),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// Sends `message` and expects it back within five seconds.
pub async fn echo(socket: &mut Socket, message: Message) {
    socket.send(message.clone()).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("an echo in time")
        .unwrap()
        .unwrap();
    assert_eq!(reply, message);
}

/// Writes `request` (raw HTTP/1.1) and reads one response: its status and
/// body; `None` when the connection is closed (or reset) instead.
pub async fn raw_exchange(
    stream: &mut tokio::net::TcpStream,
    request: &str,
) -> Option<(u16, String)> {
    use tokio::io::AsyncWriteExt;
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(stream).await
}

/// Reads one response with a `Content-Length` body; `None` on end of
/// stream or error.
pub async fn read_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, String)> {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned();
    Some((status, body))
}

/// Whether the peer closes `stream` (end of stream or reset) within `within`.
pub async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
