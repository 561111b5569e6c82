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
use insitu_proxy::{LabDirectory, LabNetwork, LabRoute, LabState, Proxy, ProxyConfig};
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
                state,
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
                state: LabState::Running,
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
        let upstream = Upstream::start().await;
        let directory = Arc::new(Directory::default());
        directory.set(LAB, upstream.addr, OWNER, LabState::Running);
        let proxy = Proxy::new(config, directory.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(proxy.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        Rig {
            proxy,
            addr,
            directory,
            upstream,
            client: Client::builder(TokioExecutor::new()).build_http(),
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Tells the proxy to shut down; returns what `serve` returned.
    pub async fn shut_down(&mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        let served = self.served.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), served)
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
        let ticket = self.proxy.issue_ticket(lab_id, user);
        let reply = self
            .get(&format!("/labs/{lab_id}/_insitu/auth?ticket={ticket}"), &[])
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
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service_fn(upstream))
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
