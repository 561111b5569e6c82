//! Tickets (single use, short-lived) and proxy sessions (per lab and user).
//!
//! Only SHA-256 digests of tickets and session secrets are kept in memory.
//! Sessions live in sharded `RwLock`ed maps so that the per-request lookup
//! never takes a global exclusive lock.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

/// Length of a ticket or session secret in bytes (256 bits).
pub(crate) const SECRET_LEN: usize = 32;
const SHARDS: usize = 16;
/// Above this many entries a shard (or the ticket map) drops expired ones on insert.
const PURGE_ABOVE: usize = 64;

type Digest = [u8; 32];

fn digest(secret: &[u8; SECRET_LEN]) -> Digest {
    Sha256::digest(secret).into()
}

/// A freshly generated secret, shown once as lowercase hex.
pub(crate) struct Secret(String);

impl Secret {
    fn generate() -> ([u8; SECRET_LEN], Secret) {
        let raw: [u8; SECRET_LEN] = rand::random();
        let mut hex = String::with_capacity(SECRET_LEN * 2);
        for byte in raw {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        (raw, Secret(hex))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Parses 64 hex digits (either case) into a secret.
pub(crate) fn parse_secret(text: &[u8]) -> Option<[u8; SECRET_LEN]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if text.len() != SECRET_LEN * 2 {
        return None;
    }
    let mut out = [0u8; SECRET_LEN];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Keys are SHA-256 digests, already uniform: hash them by their first bytes.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
}

type DigestMap<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;

struct Ticket {
    lab_id: Box<str>,
    user_id: Box<str>,
    expires: Instant,
}

/// Single-use tickets issued by the platform.
pub(crate) struct TicketStore {
    ttl: Duration,
    tickets: Mutex<DigestMap<Ticket>>,
}

impl TicketStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tickets: Mutex::new(DigestMap::default()),
        }
    }

    pub(crate) fn issue(&self, lab_id: &str, user_id: &str, now: Instant) -> Secret {
        let (raw, secret) = Secret::generate();
        let ticket = Ticket {
            lab_id: lab_id.into(),
            user_id: user_id.into(),
            expires: now + self.ttl,
        };
        let mut tickets = self.tickets.lock().unwrap_or_else(PoisonError::into_inner);
        if tickets.len() >= PURGE_ABOVE {
            tickets.retain(|_, t| t.expires > now);
        }
        tickets.insert(digest(&raw), ticket);
        secret
    }

    /// Consumes the ticket (whatever the outcome) and returns its user when
    /// it was unexpired and issued for `lab_id`.
    pub(crate) fn redeem(&self, ticket: &str, lab_id: &str, now: Instant) -> Option<Box<str>> {
        let raw = parse_secret(ticket.as_bytes())?;
        let ticket = self
            .tickets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&digest(&raw))?;
        (ticket.expires > now && *ticket.lab_id == *lab_id).then_some(ticket.user_id)
    }
}

struct Session {
    lab_id: Box<str>,
    user_id: Arc<str>,
    expires: Instant,
    /// Set to `true` on revocation; dropped (which receivers also see) when
    /// the session is removed.
    revoked: watch::Sender<bool>,
}

/// What a valid session cookie proves.
pub(crate) struct Authenticated {
    pub(crate) user_id: Arc<str>,
    /// Present when asked for (WebSocket upgrades): resolves when the session ends.
    pub(crate) revoked: Option<watch::Receiver<bool>>,
}

/// Proxy sessions, sharded by digest.
pub(crate) struct SessionStore {
    ttl: Duration,
    shards: Box<[RwLock<DigestMap<Session>>]>,
}

impl SessionStore {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(DigestMap::default()))
                .collect(),
        }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<DigestMap<Session>> {
        &self.shards[usize::from(digest[31]) % self.shards.len()]
    }

    /// Opens a session for `user_id` on `lab_id`; returns its secret.
    pub(crate) fn create(&self, lab_id: &str, user_id: &str, now: Instant) -> Secret {
        let (raw, secret) = Secret::generate();
        let key = digest(&raw);
        let (revoked, _) = watch::channel(false);
        let session = Session {
            lab_id: lab_id.into(),
            user_id: user_id.into(),
            expires: now + self.ttl,
            revoked,
        };
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= PURGE_ABOVE {
            shard.retain(|_, s| s.expires > now);
        }
        shard.insert(key, session);
        secret
    }

    /// Checks a session secret for `lab_id`.
    pub(crate) fn authenticate(
        &self,
        secret: &[u8; SECRET_LEN],
        lab_id: &str,
        now: Instant,
        watch_revocation: bool,
    ) -> Option<Authenticated> {
        let key = digest(secret);
        let shard = self.shard(&key);
        {
            let sessions = shard.read().unwrap_or_else(PoisonError::into_inner);
            let session = sessions.get(&key)?;
            if session.expires > now {
                return (*session.lab_id == *lab_id).then(|| Authenticated {
                    user_id: Arc::clone(&session.user_id),
                    revoked: watch_revocation.then(|| session.revoked.subscribe()),
                });
            }
        }
        // Expired: forget it.
        shard
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        None
    }

    /// Removes every session matching `(lab_id, user_id)` and signals its
    /// open WebSocket connections.
    pub(crate) fn revoke(&self, matches: impl Fn(&str, &str) -> bool) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, s| {
                    let keep = !matches(&s.lab_id, &s.user_id);
                    if !keep {
                        s.revoked.send_replace(true);
                    }
                    keep
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_through_hex() {
        let (raw, secret) = Secret::generate();
        assert_eq!(secret.as_str().len(), 64);
        assert_eq!(parse_secret(secret.as_str().as_bytes()), Some(raw));
        assert_eq!(parse_secret(b"zz"), None);
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }

    #[test]
    fn tickets_are_single_use_and_bound_to_a_lab() {
        let store = TicketStore::new(Duration::from_secs(60));
        let now = Instant::now();
        let t = store.issue("lab-1", "alice", now).into_string();
        assert_eq!(store.redeem(&t, "lab-1", now).as_deref(), Some("alice"));
        assert_eq!(store.redeem(&t, "lab-1", now), None);
        let t = store.issue("lab-1", "alice", now).into_string();
        assert_eq!(store.redeem(&t, "lab-2", now), None);
        assert_eq!(
            store.redeem(&t, "lab-1", now),
            None,
            "consumed by the failed attempt"
        );
        let t = store.issue("lab-1", "alice", now).into_string();
        assert_eq!(
            store.redeem(&t, "lab-1", now + Duration::from_secs(61)),
            None
        );
    }

    #[test]
    fn sessions_expire_and_are_revocable() {
        let store = SessionStore::new(Duration::from_secs(10));
        let now = Instant::now();
        let s = store.create("lab-1", "alice", now);
        let raw = parse_secret(s.as_str().as_bytes()).unwrap();
        assert!(store.authenticate(&raw, "lab-1", now, false).is_some());
        assert!(store.authenticate(&raw, "lab-2", now, false).is_none());
        let later = now + Duration::from_secs(11);
        assert!(store.authenticate(&raw, "lab-1", later, false).is_none());

        let s = store.create("lab-1", "alice", now);
        let raw = parse_secret(s.as_str().as_bytes()).unwrap();
        let auth = store.authenticate(&raw, "lab-1", now, true).unwrap();
        let rx = auth.revoked.unwrap();
        store.revoke(|_, user| user == "alice");
        assert!(*rx.borrow());
        assert!(store.authenticate(&raw, "lab-1", now, false).is_none());
    }
}
