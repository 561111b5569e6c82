//! Limits that keep a flood of connections or a slow client from taking
//! the proxy down: how many connections may be open (overall and per
//! client address), how long a client may take to send a request's
//! headers, and how long a kept-alive connection may sit idle.
//!
//! [`ConnectionLimiter`] is public so that the platform's own listener can
//! apply the same limits.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Who a connection is counted against: an IPv4 address, or the /64
/// network of an IPv6 address (one host commonly holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for Client {
    fn from(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => {
                    let bits = u128::from(v6) >> 64;
                    Client::V6(u64::try_from(bits).unwrap_or(u64::MAX))
                }
            },
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<Client, usize>,
}

struct Shared {
    max_total: usize,
    max_per_client: usize,
    counts: Mutex<Counts>,
}

/// Counts open connections and refuses those past a limit: `max_total`
/// overall and `max_per_client` per client address (an IPv6 client by its
/// /64). A limit of 0 means none. Cheap to clone; clones share the counts.
#[derive(Clone)]
pub struct ConnectionLimiter {
    shared: Arc<Shared>,
}

/// One counted connection; dropping it frees its place.
pub struct ConnectionPermit {
    shared: Arc<Shared>,
    client: Client,
}

impl ConnectionLimiter {
    /// A limiter; 0 for either limit means no limit.
    pub fn new(max_total: usize, max_per_client: usize) -> Self {
        ConnectionLimiter {
            shared: Arc::new(Shared {
                max_total: if max_total == 0 {
                    usize::MAX
                } else {
                    max_total
                },
                max_per_client: if max_per_client == 0 {
                    usize::MAX
                } else {
                    max_per_client
                },
                counts: Mutex::new(Counts::default()),
            }),
        }
    }

    /// A place for a new connection from `peer`, or `None` when a limit is
    /// reached.
    pub fn try_acquire(&self, peer: IpAddr) -> Option<ConnectionPermit> {
        let client = Client::from(peer);
        let mut counts = self
            .shared
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.shared.max_total {
            return None;
        }
        let mine = counts.per_client.entry(client).or_insert(0);
        if *mine >= self.shared.max_per_client {
            return None;
        }
        *mine += 1;
        counts.total += 1;
        Some(ConnectionPermit {
            shared: Arc::clone(&self.shared),
            client,
        })
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl std::fmt::Debug for ConnectionLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimiter")
            .field("max_total", &self.shared.max_total)
            .field("max_per_client", &self.shared.max_per_client)
            .field("open", &self.open())
            .finish()
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self
            .shared
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(mine) = counts.per_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

impl std::fmt::Debug for ConnectionPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionPermit")
    }
}

const WAITING: u32 = 0;
const BUSY: u32 = 1;
const UPGRADED: u32 = 2;
const PHASE_MASK: u32 = 3;

/// Where a connection is in its life, shared by its socket ([`TimedIo`])
/// and the request handler: waiting for a request (timed), serving one (not
/// timed: bodies may stream for long), or handed over to a WebSocket (never
/// timed). The upper bits count requests, so the socket sees each new wait.
#[derive(Default)]
pub(crate) struct Phase {
    state: AtomicU32,
    /// The socket's reader, parked while a request was served: woken when
    /// the wait for the next request begins, so that it is timed.
    reader: Mutex<Option<Waker>>,
}

impl Phase {
    /// A request's headers have been read.
    pub(crate) fn begin_request(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & PHASE_MASK != UPGRADED).then_some((v & !PHASE_MASK) | BUSY)
            });
    }

    /// The response has been sent: the connection waits for the next request.
    pub(crate) fn end_request(&self) {
        let ended = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & PHASE_MASK != UPGRADED)
                    .then_some(((v & !PHASE_MASK).wrapping_add(PHASE_MASK + 1)) | WAITING)
            });
        if ended.is_ok() {
            let reader = self
                .reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(reader) = reader {
                reader.wake();
            }
        }
    }

    /// Parks the socket's reader until the next wait begins.
    fn park(&self, waker: &Waker) {
        let mut reader = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        match &*reader {
            Some(parked) if parked.will_wake(waker) => {}
            _ => *reader = Some(waker.clone()),
        }
    }

    /// The connection now carries a WebSocket.
    pub(crate) fn upgrade(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some((v & !PHASE_MASK) | UPGRADED)
            });
        // The parked reader is the HTTP connection's task, which ends now:
        // a waker kept here would keep its memory for the WebSocket's life.
        drop(
            self.reader
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }

    fn load(&self) -> (u32, u32) {
        let v = self.state.load(Ordering::Acquire);
        (v & PHASE_MASK, v >> 2)
    }
}

/// A client socket that enforces the header-read and keep-alive timeouts:
/// while the connection waits for a request, a read that would block fails
/// with `TimedOut` once the deadline passes. The deadline is
/// `header_read_timeout` after the connection opened (first request) or
/// after the first byte of a later request arrived, and
/// `keep_alive_timeout` after the previous response while no byte of the
/// next request has come.
pub(crate) struct TimedIo<S> {
    io: S,
    phase: Arc<Phase>,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    /// The request count of the wait being timed.
    generation: u32,
    first_request: bool,
    waiting_since: Instant,
    head_started: Option<Instant>,
    /// The deadline's timer, made when first needed and dropped once the
    /// connection carries a WebSocket.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> TimedIo<S> {
    pub(crate) fn new(
        io: S,
        phase: Arc<Phase>,
        header_read_timeout: Duration,
        keep_alive_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        TimedIo {
            io,
            phase,
            header_read_timeout,
            keep_alive_timeout,
            generation: 0,
            first_request: true,
            waiting_since: now,
            head_started: None,
            sleep: None,
        }
    }

    fn deadline(&self) -> Instant {
        match self.head_started {
            Some(started) => started + self.header_read_timeout,
            None if self.first_request => self.waiting_since + self.header_read_timeout,
            None => self.waiting_since + self.keep_alive_timeout,
        }
    }

    /// Notes a new wait (after a response) by its request count.
    fn sync(&mut self, generation: u32) {
        if generation != self.generation {
            self.generation = generation;
            self.first_request = false;
            self.waiting_since = Instant::now();
            self.head_started = None;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (mut phase, mut generation) = this.phase.load();
        if phase == UPGRADED {
            this.sleep = None;
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        if phase == BUSY {
            let read = Pin::new(&mut this.io).poll_read(cx, buf);
            if read.is_ready() {
                return read;
            }
            // Nothing to read while the response is written: be woken
            // when it is done, and time the wait from then. The request
            // may have ended in between: look again after parking.
            this.phase.park(cx.waker());
            (phase, generation) = this.phase.load();
            if phase != WAITING {
                return Poll::Pending;
            }
        }
        this.sync(generation);
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.head_started.is_none() && buf.filled().len() > before {
                    this.head_started = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let deadline = this.deadline();
                let sleep = match &mut this.sleep {
                    Some(sleep) => {
                        if sleep.deadline() != deadline {
                            sleep.as_mut().reset(deadline);
                        }
                        sleep
                    }
                    None => this
                        .sleep
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        if this.head_started.is_some() || this.first_request {
                            "request headers not received in time"
                        } else {
                            "idle keep-alive connection"
                        },
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn counts_connections_overall_and_per_client() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        let a1 = limiter.try_acquire(a).unwrap();
        let _a2 = limiter.try_acquire(a).unwrap();
        assert!(limiter.try_acquire(a).is_none(), "per client");
        let _b1 = limiter.try_acquire(b).unwrap();
        assert!(limiter.try_acquire(b).is_none(), "overall");
        assert_eq!(limiter.open(), 3);
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.try_acquire(a).is_some());
    }

    #[test]
    fn an_ipv6_client_is_its_64_network() {
        let limiter = ConnectionLimiter::new(0, 1);
        let one: Ipv6Addr = "2001:db8:1:2::1".parse().unwrap();
        let same_net: Ipv6Addr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap();
        let _p = limiter.try_acquire(IpAddr::V6(one)).unwrap();
        assert!(limiter.try_acquire(IpAddr::V6(same_net)).is_none());
        assert!(limiter.try_acquire(IpAddr::V6(other_net)).is_some());
        let mapped = Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped();
        let _m = limiter.try_acquire(IpAddr::V6(mapped)).unwrap();
        assert!(
            limiter
                .try_acquire(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
                .is_none()
        );
    }

    #[test]
    fn phases_count_requests_and_stick_once_upgraded() {
        let phase = Phase::default();
        assert_eq!(phase.load(), (WAITING, 0));
        phase.begin_request();
        assert_eq!(phase.load(), (BUSY, 0));
        phase.end_request();
        assert_eq!(phase.load(), (WAITING, 1));
        phase.begin_request();
        phase.upgrade();
        assert_eq!(phase.load().0, UPGRADED);
        phase.end_request();
        phase.begin_request();
        assert_eq!(phase.load().0, UPGRADED);
    }
}
