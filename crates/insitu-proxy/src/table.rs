//! Where proxy sessions persist: a table the platform keeps (in its store,
//! shared by every server process on the same database), behind
//! [`SessionTable`]. The proxy keeps its own in-memory cache in front of it
//! and reads the table only for sessions it does not hold.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

/// SHA-256 of a session's secret: what a table keeps instead of the
/// secret, and the key it is found by.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionDigest(pub [u8; 32]);

impl SessionDigest {
    /// The digest as 64 lowercase hex digits (for a text column).
    pub fn to_hex(&self) -> String {
        crate::sessions::hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(text: &str) -> Option<SessionDigest> {
        crate::sessions::parse_secret(text.as_bytes()).map(SessionDigest)
    }
}

impl fmt::Debug for SessionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.to_hex();
        write!(f, "SessionDigest({}…)", &hex[..12])
    }
}

/// A proxy session as a table keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// SHA-256 of the cookie's secret; the secret itself is never stored.
    pub digest: SessionDigest,
    /// The lab it opens.
    pub lab_id: String,
    /// The user it was issued to.
    pub user_id: String,
    /// When the ticket was redeemed.
    pub created_at: SystemTime,
    /// When it stops being valid.
    pub expires_at: SystemTime,
}

/// A failure of the table (its database unreachable, say).
#[derive(Debug, thiserror::Error)]
#[error("proxy session table: {0}")]
pub struct SessionTableError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl SessionTableError {
    /// Wraps any error.
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SessionTableError(error.into())
    }
}

/// What a [`SessionTable`] method returns.
pub type TableFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, SessionTableError>> + Send + 'a>>;

/// The platform's persistent table of proxy sessions. The proxy writes to
/// it when a ticket is redeemed and when sessions are revoked, reads it
/// only for a cookie it has no session for in memory (after a restart, or
/// one opened by another server process) and, at most once per
/// [`ProxyConfig::session_recheck`](crate::ProxyConfig::session_recheck),
/// for a session it holds (so a revocation by another process is seen).
/// Calls run on the runtime [`Proxy`](crate::Proxy) was created on.
pub trait SessionTable: Send + Sync + 'static {
    /// Stores a new session, then deletes the oldest sessions of the same
    /// user beyond the newest `keep_per_user`.
    fn insert(&self, session: StoredSession, keep_per_user: usize) -> TableFuture<'_, ()>;
    /// The session with this digest, expired or not.
    fn find(&self, digest: SessionDigest) -> TableFuture<'_, Option<StoredSession>>;
    /// Deletes every session of a lab.
    fn remove_lab<'a>(&'a self, lab_id: &'a str) -> TableFuture<'a, ()>;
    /// Deletes every session of a user.
    fn remove_user<'a>(&'a self, user_id: &'a str) -> TableFuture<'a, ()>;
    /// Deletes the sessions that expired before `now`.
    fn remove_expired(&self, now: SystemTime) -> TableFuture<'_, ()>;
}

/// A [`SessionTable`] in memory: for one process that need not keep
/// sessions across restarts, and for tests (two proxies sharing one stand
/// for a restart).
#[derive(Default)]
pub struct MemorySessionTable {
    sessions: Mutex<HashMap<SessionDigest, StoredSession>>,
}

impl MemorySessionTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionDigest, StoredSession>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemorySessionTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySessionTable")
            .field("sessions", &self.len())
            .finish()
    }
}

impl SessionTable for MemorySessionTable {
    fn insert(&self, session: StoredSession, keep_per_user: usize) -> TableFuture<'_, ()> {
        let mut sessions = self.lock();
        let user = session.user_id.clone();
        sessions.insert(session.digest, session);
        let mut mine: Vec<(SystemTime, SessionDigest)> = sessions
            .values()
            .filter(|s| s.user_id == user)
            .map(|s| (s.created_at, s.digest))
            .collect();
        if mine.len() > keep_per_user {
            mine.sort_unstable();
            for (_, digest) in &mine[..mine.len() - keep_per_user] {
                sessions.remove(digest);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn find(&self, digest: SessionDigest) -> TableFuture<'_, Option<StoredSession>> {
        let found = self.lock().get(&digest).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn remove_lab<'a>(&'a self, lab_id: &'a str) -> TableFuture<'a, ()> {
        self.lock().retain(|_, s| s.lab_id != lab_id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_user<'a>(&'a self, user_id: &'a str) -> TableFuture<'a, ()> {
        self.lock().retain(|_, s| s.user_id != user_id);
        Box::pin(std::future::ready(Ok(())))
    }

    fn remove_expired(&self, now: SystemTime) -> TableFuture<'_, ()> {
        self.lock().retain(|_, s| s.expires_at > now);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn session(n: u8, lab: &str, user: &str, created: SystemTime) -> StoredSession {
        StoredSession {
            digest: SessionDigest([n; 32]),
            lab_id: lab.into(),
            user_id: user.into(),
            created_at: created,
            expires_at: created + Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn the_memory_table_keeps_the_newest_sessions_per_user() {
        let table = MemorySessionTable::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for n in 0..5u8 {
            let at = t0 + Duration::from_secs(u64::from(n));
            table.insert(session(n, "a", "alice", at), 3).await.unwrap();
        }
        table.insert(session(9, "b", "bob", t0), 3).await.unwrap();
        assert_eq!(table.len(), 4);
        assert!(table.find(SessionDigest([0; 32])).await.unwrap().is_none());
        assert!(table.find(SessionDigest([1; 32])).await.unwrap().is_none());
        assert!(table.find(SessionDigest([4; 32])).await.unwrap().is_some());

        table.remove_lab("a").await.unwrap();
        assert_eq!(table.len(), 1);
        table
            .remove_expired(t0 + Duration::from_secs(61))
            .await
            .unwrap();
        assert!(table.is_empty());
    }

    #[test]
    fn digests_print_as_hex() {
        let digest = SessionDigest([0xab; 32]);
        assert_eq!(digest.to_hex(), "ab".repeat(32));
        assert_eq!(SessionDigest::from_hex(&digest.to_hex()), Some(digest));
        assert_eq!(format!("{digest:?}"), "SessionDigest(abababababab…)");
    }
}
