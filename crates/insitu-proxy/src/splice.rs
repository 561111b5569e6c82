//! Relaying an upgraded (WebSocket) connection: bytes are spliced both ways
//! without decoding frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::Inner;
use crate::activity::INTERVAL;
use crate::server::Connection;

/// Size of the relay buffer of each direction.
const BUFFER: usize = 16 * 1024;
/// Once one side has closed, how long the other may take to finish.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the relay needs to know about the WebSocket's lab and session.
pub(crate) struct WebSocketContext {
    pub(crate) lab_id: Box<str>,
    /// The session's user.
    pub(crate) user_id: Arc<str>,
    /// Resolves when the session is revoked or removed.
    pub(crate) revoked: watch::Receiver<bool>,
    /// The client connection: it stays counted while the WebSocket lives.
    pub(crate) connection: Arc<Connection>,
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    context: WebSocketContext,
    client: OnUpgrade,
    upstream: OnUpgrade,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%error, lab_id = &*context.lab_id, "websocket upgrade failed");
            return;
        }
    };
    let WebSocketContext {
        lab_id,
        user_id,
        mut revoked,
        connection: _connection,
    } = context;
    let _counted = inner.websocket_opened(&lab_id, &user_id);
    let mut shutdown = inner.shutdown.subscribe();
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let to_upstream = pump(client_read, upstream_write, &inner, &lab_id);
    let to_client = pump(upstream_read, client_write, &inner, &lab_id);
    tokio::pin!(to_upstream, to_client);
    tokio::select! {
        ended = &mut to_upstream => {
            if ended.is_ok() {
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut to_client).await;
            }
        }
        ended = &mut to_client => {
            if ended.is_ok() {
                let _ = tokio::time::timeout(CLOSE_GRACE, &mut to_upstream).await;
            }
        }
        () = crate::raised(&mut revoked) => {
            tracing::debug!(lab_id = &*lab_id, "websocket closed: session ended");
        }
        () = crate::raised(&mut shutdown) => {}
    }
    // Dropping both halves closes both connections.
}

/// Copies `from` to `to` until end of stream, reporting activity.
async fn pump<R, W>(mut from: R, mut to: W, inner: &Inner, lab_id: &str) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; BUFFER];
    let mut reported: Option<Instant> = None;
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
        to.flush().await?;
        let now = Instant::now();
        if reported.is_none_or(|at| now.duration_since(at) >= INTERVAL) {
            reported = Some(now);
            inner.touch(lab_id, now);
        }
    }
}
