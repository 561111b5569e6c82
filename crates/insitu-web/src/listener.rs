//! The platform's listener: HTTP/1.1 connections served by hyper with a
//! timer, so a client that sends its headers slowly (slowloris), sits idle
//! on a kept-alive connection, trickles a body or stops reading a response
//! is cut off. At most `max_connections` connections are open at once, and
//! `max_connections_per_client` from one client address (the lab proxy's
//! [`ConnectionLimiter`], counting an IPv6 client by its /64; trusted
//! proxies are counted in the total only); past that a connection is
//! answered `too_many_connections` and closed. Each request carries the
//! peer's address (`ConnectInfo`), from which `client` works out the
//! client's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use insitu_api::{ApiError, ErrorCode};
use insitu_proxy::ConnectionLimiter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::Listening;

/// How often at most refusals are logged.
const REFUSALS_LOGGED_EVERY: Duration = Duration::from_secs(10);
/// Refused connections answered at once (each read for at most a second,
/// so that the answer follows the request); past that they are closed
/// without a word.
const REFUSALS_ANSWERED: usize = 256;
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// How long open requests may take to finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets open
/// requests finish (for up to 10 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Listening,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let all = ConnectionLimiter::new(limits.max_connections, 0);
    let per_client = ConnectionLimiter::new(0, limits.max_connections_per_client);
    let refusal: Arc<[u8]> = refusal().into();
    let answering = Arc::new(Semaphore::new(REFUSALS_ANSWERED));
    let mut last_logged: Option<Instant> = None;
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let trusted = limits.trusted_proxies.iter().any(|n| n.contains(peer.ip()));
        let slot = all.try_acquire(peer.ip()).and_then(|total| {
            let mine = if trusted {
                None
            } else {
                Some(per_client.try_acquire(peer.ip())?)
            };
            Some((total, mine))
        });
        let Some(slot) = slot else {
            if let Ok(answering) = Arc::clone(&answering).try_acquire_owned() {
                let refusal = Arc::clone(&refusal);
                tokio::spawn(async move {
                    refuse(stream, &refusal).await;
                    drop(answering);
                });
            }
            if last_logged.is_none_or(|t| t.elapsed() >= REFUSALS_LOGGED_EVERY) {
                last_logged = Some(Instant::now());
                tracing::warn!(peer = %peer, open = all.open(), "connection limit reached: refusing connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let io = TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout));
        let connection =
            graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("requests still open after the shutdown's grace period");
        }
    }
    Ok(())
}

/// Reads the request's head (for a second at most), answers with
/// `refusal` and closes.
async fn refuse(mut stream: TcpStream, refusal: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 4096];
    let read = async {
        let mut seen = 0;
        while seen < head.len() {
            match stream.read(&mut head[seen..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen += n,
            }
            if head[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_TIME, read).await;
    let _ = tokio::time::timeout(REFUSAL_TIME, stream.write_all(refusal)).await;
    let _ = stream.shutdown().await;
}

/// The whole answer to a connection past the limits.
fn refusal() -> Vec<u8> {
    let code = ErrorCode::TooManyConnections;
    let body = serde_json::to_string(&ApiError::new(
        code,
        "the server holds as many connections as it allows; retry shortly",
    ))
    .unwrap_or_default();
    format!(
        "HTTP/1.1 {} Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        code.status(),
        body.len()
    )
    .into_bytes()
}

/// A connection that fails with `TimedOut` once nothing has been read or
/// written for `timeout` while the server waits on it.
struct IdleTimeout {
    inner: TcpStream,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> IdleTimeout {
        IdleTimeout {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    fn moved(&mut self) {
        let next = Instant::now() + self.timeout;
        self.deadline.as_mut().reset(next);
    }

    /// Pending, unless the connection has been idle for too long.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.moved();
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The peer's address, as the listener recorded it (absent when a request
/// did not come through it, as in unit tests of the router).
pub fn peer(req: &axum::http::request::Parts) -> Option<SocketAddr> {
    req.extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}
