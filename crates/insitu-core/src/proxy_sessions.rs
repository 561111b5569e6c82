//! The lab proxy's sessions as the platform keeps them: one row per
//! per-lab cookie handed out (its SHA-256, never the cookie), so that a
//! restart, or another server process on the same database, honours
//! cookies already given and a revocation reaches every process. The proxy
//! reaches this through the web crate's adapter; this service only speaks
//! the store's records and the domain's ids.

use insitu_domain::{LabId, UserId};
use insitu_store::{ProxySessionRecord, Store};

use crate::error::Error;

/// The table of proxy sessions; cheap to clone.
#[derive(Clone)]
pub struct ProxySessions {
    store: Store,
}

impl ProxySessions {
    pub fn new(store: Store) -> ProxySessions {
        ProxySessions { store }
    }

    /// Keeps a new session, and the user's newest `keep_per_user` only.
    pub async fn insert(
        &self,
        session: &ProxySessionRecord,
        keep_per_user: usize,
    ) -> Result<(), Error> {
        Ok(self
            .store
            .insert_proxy_session(session, keep_per_user)
            .await?)
    }

    /// The session with this digest (64 hex digits), expired or not.
    pub async fn find(&self, digest: &str) -> Result<Option<ProxySessionRecord>, Error> {
        Ok(self.store.proxy_session(digest).await?)
    }

    /// Ends every session of a lab.
    pub async fn remove_lab(&self, lab_id: &LabId) -> Result<(), Error> {
        self.store.delete_proxy_sessions_of_lab(lab_id).await?;
        Ok(())
    }

    /// Ends every session of a user.
    pub async fn remove_user(&self, user_id: &UserId) -> Result<(), Error> {
        self.store.delete_proxy_sessions_of_user(user_id).await?;
        Ok(())
    }

    /// Deletes the sessions expired at `now_ms` (Unix milliseconds);
    /// returns how many.
    pub async fn remove_expired(&self, now_ms: i64) -> Result<u64, Error> {
        Ok(self.store.delete_expired_proxy_sessions(now_ms).await?)
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
