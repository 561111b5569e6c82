//! Network namespaces that sandboxes live in.
//!
//! All labs of one user share one named network namespace
//! (`/run/netns/<name>`, made with iproute2's `ip netns add`) holding only a
//! loopback interface: the user's tools reach one another on 127.0.0.1
//! (a SAMP hub, a notebook talking to a desktop tool), no other user's lab
//! can reach them, and they cannot reach the platform's own ports or other
//! services on the host's loopback.
//!
//! The platform never enters the namespace itself. A worker thread per
//! namespace is moved into it once (`setns` changes only the calling thread)
//! and does two jobs there: it spawns a sandbox's supervisor, which, with
//! the sandbox, inherits the namespace (the thread is no parent of the
//! sandbox, and its end ends nothing), and it opens TCP connections to the
//! labs inside, which stay in that namespace when handed back to the async
//! proxy.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Where iproute2 keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";

type Job = Box<dyn FnOnce() + Send>;

/// A named network namespace with its worker thread (shared by clones;
/// the thread ends with the last clone).
#[derive(Debug, Clone)]
pub struct NetNs {
    name: String,
    path: PathBuf,
    worker: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error("cannot run `ip` (iproute2) to make the network namespace {name}: {source}")]
    Ip {
        name: String,
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    IpFailed { args: String, stderr: String },
    #[error("cannot enter the network namespace {name}: {source}")]
    Enter {
        name: String,
        source: std::io::Error,
    },
    #[error("the worker of network namespace {0} has ended")]
    WorkerGone(String),
}

fn ip(args: &[&str], name: &str) -> Result<(), NetNsError> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|source| NetNsError::Ip {
            name: name.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetNsError::IpFailed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

impl NetNs {
    /// Opens the namespace `name`, making it (with loopback up) when it does
    /// not exist yet. Names are made of `[A-Za-z0-9_-]`.
    pub fn ensure(name: &str) -> Result<NetNs, NetNsError> {
        let path = Path::new(NETNS_DIR).join(name);
        if !path.exists() {
            match ip(&["netns", "add", name], name) {
                // Another launch made it at the same moment.
                Err(NetNsError::IpFailed { .. }) if path.exists() => {}
                other => other?,
            }
            ip(&["-n", name, "link", "set", "lo", "up"], name)?;
        }
        Ok(NetNs {
            name: name.to_owned(),
            path,
            worker: Arc::new(Mutex::new(None)),
        })
    }

    /// Whether the namespace `name` exists.
    pub fn exists(name: &str) -> bool {
        Path::new(NETNS_DIR).join(name).exists()
    }

    /// Deletes the namespace `name` (its processes keep it alive until they
    /// end).
    pub fn delete(name: &str) -> Result<(), NetNsError> {
        if !NetNs::exists(name) {
            return Ok(());
        }
        ip(&["netns", "delete", name], name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sender(&self) -> Result<mpsc::Sender<Job>, NetNsError> {
        let mut guard = self
            .worker
            .lock()
            .map_err(|_| NetNsError::WorkerGone(self.name.clone()))?;
        if let Some(tx) = guard.as_ref() {
            return Ok(tx.clone());
        }
        let file = std::fs::File::open(&self.path).map_err(|source| NetNsError::Enter {
            name: self.name.clone(),
            source,
        })?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<()>>();
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                let entered = move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(LinkNameSpaceType::Network),
                )
                .map_err(std::io::Error::from);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if ok {
                    for job in rx {
                        job();
                    }
                }
            })
            .map_err(|source| NetNsError::Enter {
                name: self.name.clone(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                return Err(NetNsError::Enter {
                    name: self.name.clone(),
                    source,
                });
            }
            Err(_) => return Err(NetNsError::WorkerGone(self.name.clone())),
        }
        *guard = Some(tx.clone());
        Ok(tx)
    }

    /// Runs `f` on the thread that lives in the namespace and waits for it.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, NetNsError> {
        let (tx, rx) = mpsc::channel();
        self.sender()?
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| NetNsError::WorkerGone(self.name.clone()))?;
        rx.recv()
            .map_err(|_| NetNsError::WorkerGone(self.name.clone()))
    }

    /// Opens a TCP connection to `addr` inside the namespace, for use from
    /// tokio anywhere.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.sender()
            .map_err(std::io::Error::other)?
            .send(Box::new(move || {
                let stream = std::net::TcpStream::connect_timeout(&addr, timeout)
                    .and_then(|s| s.set_nonblocking(true).map(|()| s));
                let _ = tx.send(stream);
            }))
            .map_err(|_| std::io::Error::other(NetNsError::WorkerGone(self.name.clone())))?;
        let stream = rx
            .await
            .map_err(|_| std::io::Error::other(NetNsError::WorkerGone(self.name.clone())))??;
        tokio::net::TcpStream::from_std(stream)
    }
}
