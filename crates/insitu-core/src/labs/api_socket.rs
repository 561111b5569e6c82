//! Each lab's way to the platform: a Unix socket of its own. Labs live in
//! a network namespace holding only loopback, so they cannot reach the
//! platform's listener; instead the platform listens, for each lab, on
//! `labs/<id>/api/api.sock` in its data directory, and the sandbox shows
//! that directory read-only at [`API_SOCKET_DIR`] with
//! [`API_SOCKET_VARIABLE`] naming the socket. Whoever connects there is
//! the lab's owner: the socket it came on says so, and nothing secret is
//! in the lab's environment. What the socket serves (the pipelines and
//! runs API only) is the web crate's business, behind [`LabApi`].
//!
//! The socket is made before the tool starts and made again when a
//! restarted platform adopts the lab; it goes when the lab ends (stopped,
//! failed, culled, or its user disabled). Only the sandbox's user may
//! connect (the directory is 0700 and the socket 0600, both theirs), and
//! no sandbox sees another lab's directory: the data directory is hidden
//! from every sandbox and pipeline step.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use insitu_domain::{LabId, UserId};

use super::Labs;

pub use insitu_launcher::sandbox::API_SOCKET_DIR;

/// The variable that tells a lab's tools where the socket is.
pub const API_SOCKET_VARIABLE: &str = "INSITU_API_SOCKET";

/// The socket's file name, in its directory.
const SOCKET_NAME: &str = "api.sock";

/// Where a lab finds the socket.
pub fn api_socket_path() -> String {
    format!("{API_SOCKET_DIR}/{SOCKET_NAME}")
}

/// The platform's API as labs reach it; the web crate implements it over
/// its router, which this crate must not depend on.
pub trait LabApi: Send + Sync {
    /// Serves `listener` (non-blocking) as the socket of lab `lab_id`,
    /// whose owner is `owner`, until [`LabApi::close`]; replaces what was
    /// served for that lab before.
    fn serve(&self, lab_id: &LabId, owner: &UserId, listener: UnixListener);
    /// Stops serving a lab's socket; its open connections end.
    fn close(&self, lab_id: &LabId);
}

impl Labs {
    /// Attaches what serves the labs' sockets.
    pub fn set_api(&self, api: std::sync::Arc<dyn LabApi>) {
        let _ = self.api.set(api);
    }

    /// The directory of a lab's socket, on the host.
    pub(super) fn api_dir(&self, lab_id: &LabId) -> PathBuf {
        self.cfg
            .data_dir
            .join("labs")
            .join(lab_id.as_str())
            .join("api")
    }

    /// Makes the lab's socket and serves it, unless this process already
    /// does; returns whether it is served. Without a [`LabApi`] attached
    /// there is no socket; a failure is logged and the lab runs without
    /// one.
    pub(super) fn open_api(&self, lab_id: &LabId, owner: &UserId) -> bool {
        let Some(api) = self.api.get() else {
            return false;
        };
        let Ok(mut served) = self.api_served.lock() else {
            return false;
        };
        if served.contains(lab_id) {
            return true;
        }
        match bind(&self.api_dir(lab_id), self.cfg.run_as) {
            Ok(listener) => {
                api.serve(lab_id, owner, listener);
                served.insert(lab_id.clone());
                true
            }
            Err(e) => {
                tracing::warn!(lab = %lab_id, error = %e, "the lab gets no API socket");
                false
            }
        }
    }

    /// Stops serving a lab's socket and removes it.
    pub(super) fn close_api(&self, lab_id: &LabId) {
        if let Ok(mut served) = self.api_served.lock() {
            served.remove(lab_id);
        }
        if let Some(api) = self.api.get() {
            api.close(lab_id);
        }
        match std::fs::remove_dir_all(self.api_dir(lab_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(lab = %lab_id, error = %e, "cannot remove the lab's API socket");
            }
            _ => {}
        }
    }
}

/// A fresh socket in `dir` (made 0700, or emptied of an old socket),
/// both owned by the sandbox's user.
fn bind(dir: &Path, (uid, gid): (u32, u32)) -> std::io::Result<UnixListener> {
    std::fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(SOCKET_NAME);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
