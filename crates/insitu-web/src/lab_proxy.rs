//! The lab proxy wired to the labs service: the proxy finds labs through
//! [`Directory`] and keeps its sessions in the platform's table through
//! [`Sessions`], and labs reach the proxy through [`Door`]. The labs
//! service knows nothing of the proxy's crate; these adapters are the
//! only place the two meet.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use insitu_core::ProxySessionRecord;
use insitu_core::labs::{LabProxy, Labs, ToolAccess, UserNetwork};
use insitu_core::proxy_sessions::ProxySessions;
use insitu_domain::{LabId, ToolCredential, UserId};
use insitu_proxy::{
    LabCredential, LabDirectory, LabNetwork, LabRoute, LabSecret, Proxy, PublicUrl, SessionDigest,
    SessionTable, SessionTableError, StoredSession, TableFuture,
};

/// The labs, as the proxy looks them up.
pub struct Directory(pub Arc<Labs>);

impl LabDirectory for Directory {
    fn route(&self, lab_id: &str) -> Option<LabRoute> {
        let route = self.0.route(lab_id)?;
        Some(LabRoute {
            upstream: route.upstream,
            network: route
                .network
                .map(|n| Arc::new(Namespace(n)) as Arc<dyn LabNetwork>),
            owner: route.owner.to_string(),
            state: route.state,
            credential: route.access.as_ref().and_then(credential),
        })
    }

    fn record_activity(&self, lab_id: &str) {
        if let Ok(id) = lab_id.parse::<LabId>() {
            self.0.record_activity(&id);
        }
    }
}

/// The `Authorization` the proxy presents for a tool that takes a secret.
/// A secret the proxy refuses gives none: the tool then refuses every
/// request, which is where it must fail.
fn credential(access: &ToolAccess) -> Option<LabCredential> {
    let secret = LabSecret::new(access.secret.expose()).ok()?;
    match access.form {
        ToolCredential::None => None,
        ToolCredential::JupyterToken => Some(LabCredential::jupyter_token(&secret)),
        ToolCredential::Bearer => Some(LabCredential::bearer(&secret)),
        ToolCredential::Basic => LabCredential::basic(ToolCredential::BASIC_USER, &secret).ok(),
    }
}

/// A user's network namespace, where the proxy connects to their labs.
#[derive(Debug)]
struct Namespace(Arc<UserNetwork>);

impl LabNetwork for Namespace {
    fn connect(
        &self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<tokio::net::TcpStream>> + Send>> {
        let network = Arc::clone(&self.0);
        Box::pin(async move { network.connect(addr).await })
    }
}

/// The proxy's session table, kept by the platform in its store.
pub struct Sessions(pub ProxySessions);

impl SessionTable for Sessions {
    fn insert(&self, session: StoredSession, keep_per_user: usize) -> TableFuture<'_, ()> {
        Box::pin(async move {
            let record = ProxySessionRecord {
                digest: session.digest.to_hex(),
                lab_id: session.lab_id.parse().map_err(SessionTableError::new)?,
                user_id: session.user_id.parse().map_err(SessionTableError::new)?,
                created_at_ms: unix_ms(session.created_at),
                expires_at_ms: unix_ms(session.expires_at),
            };
            self.0
                .insert(&record, keep_per_user)
                .await
                .map_err(SessionTableError::new)
        })
    }

    fn find(&self, digest: SessionDigest) -> TableFuture<'_, Option<StoredSession>> {
        Box::pin(async move {
            let found = self
                .0
                .find(&digest.to_hex())
                .await
                .map_err(SessionTableError::new)?;
            Ok(found.map(|r| StoredSession {
                digest,
                lab_id: r.lab_id.to_string(),
                user_id: r.user_id.to_string(),
                created_at: from_unix_ms(r.created_at_ms),
                expires_at: from_unix_ms(r.expires_at_ms),
            }))
        })
    }

    fn remove_lab<'a>(&'a self, lab_id: &'a str) -> TableFuture<'a, ()> {
        Box::pin(async move {
            // Not an id: no session can name it.
            let Ok(id) = lab_id.parse::<LabId>() else {
                return Ok(());
            };
            self.0.remove_lab(&id).await.map_err(SessionTableError::new)
        })
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> TableFuture<'a, ()> {
        Box::pin(async move {
            let Ok(id) = user_id.parse::<UserId>() else {
                return Ok(());
            };
            self.0
                .remove_user(&id)
                .await
                .map_err(SessionTableError::new)
        })
    }

    fn remove_expired(&self, now: SystemTime) -> TableFuture<'_, ()> {
        Box::pin(async move {
            self.0
                .remove_expired(unix_ms(now))
                .await
                .map(|_| ())
                .map_err(SessionTableError::new)
        })
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_unix_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The proxy, as labs use it: tickets into a lab, and revocation when it
/// stops or its user is logged out or disabled.
pub struct Door {
    pub proxy: Proxy,
    /// The proxy's URL as browsers reach it: each lab's origin.
    pub url: PublicUrl,
}

impl LabProxy for Door {
    fn entry_link(&self, lab_id: &LabId, user_id: &UserId) -> String {
        let ticket = self.proxy.issue_ticket(lab_id.as_str(), user_id.as_str());
        let lab = self.url.lab_url(lab_id.as_str());
        format!("{lab}_insitu/auth?ticket={ticket}&next=/labs/{lab_id}/")
    }

    fn revoke_lab(&self, lab_id: &LabId) {
        // In effect here at once; the table follows in the background.
        drop(self.proxy.revoke_lab(lab_id.as_str()));
    }

    fn revoke_user(&self, user_id: &UserId) {
        drop(self.proxy.revoke_user(user_id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insitu_core::labs::ToolSecret;

    #[test]
    fn each_form_gets_the_proxys_credential_and_the_probes() {
        for form in [
            ToolCredential::JupyterToken,
            ToolCredential::Basic,
            ToolCredential::Bearer,
        ] {
            let access = ToolAccess {
                form,
                secret: ToolSecret::generate(),
            };
            let ours = credential(&access).unwrap();
            let secret = LabSecret::new(access.secret.expose()).unwrap();
            let expected = match form {
                ToolCredential::JupyterToken => LabCredential::jupyter_token(&secret),
                ToolCredential::Bearer => LabCredential::bearer(&secret),
                _ => LabCredential::basic("insitu", &secret).unwrap(),
            };
            assert_eq!(ours, expected, "{form}");
            // What the readiness probe sends is what the proxy sends.
            assert!(
                format!("{ours:?}").starts_with(&format!(
                    "LabCredential({} ",
                    access.authorization().unwrap().split(' ').next().unwrap()
                )),
                "{form}"
            );
        }
    }

    #[test]
    fn times_keep_their_milliseconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_unix_ms(unix_ms(t)), t);
    }
}
