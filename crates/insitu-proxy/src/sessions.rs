//! Tickets (single use, short-lived) and the in-memory cache of proxy
//! sessions (per lab and user).
//!
//! Only SHA-256 digests of tickets and session secrets are kept. Sessions
//! live in sharded `RwLock`ed maps so that the per-request lookup never
//! takes a global exclusive lock. Each user holds at most a bounded number
//! of tickets and sessions: a new one pushes out that user's oldest.
//! Revocations leave a tombstone for a session's lifetime so that a
//! session read back from the table afterwards, but created before, is
//! refused.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::table::{SessionDigest, StoredSession};

/// Length of a ticket or session secret in bytes (256 bits).
pub(crate) const SECRET_LEN: usize = 32;
const SHARDS: usize = 16;
/// Above this many entries a shard (or the ticket map) drops expired ones on insert.
const PURGE_ABOVE: usize = 64;
/// Above this many tombstones the old ones are dropped on insert.
const TOMBSTONES_PURGE_ABOVE: usize = 256;

type Digest = [u8; 32];

fn digest(secret: &[u8; SECRET_LEN]) -> Digest {
    Sha256::digest(secret).into()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

/// A freshly generated secret, shown once as lowercase hex.
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn generate() -> ([u8; SECRET_LEN], Secret) {
        let raw: [u8; SECRET_LEN] = rand::random();
        let hex = hex(&raw);
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

/// The digest a table knows a session secret by.
pub(crate) fn session_digest(secret: &[u8; SECRET_LEN]) -> SessionDigest {
    SessionDigest(digest(secret))
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

/// The digests each user holds, oldest first; may name digests already gone.
type PerUser = HashMap<Arc<str>, VecDeque<Digest>>;

struct Ticket {
    lab_id: Box<str>,
    user_id: Arc<str>,
    expires: Instant,
}

#[derive(Default)]
struct Tickets {
    by_digest: DigestMap<Ticket>,
    by_user: PerUser,
}

/// Single-use tickets issued by the platform, at most `max_per_user`
/// outstanding per user.
pub(crate) struct TicketStore {
    ttl: Duration,
    max_per_user: usize,
    tickets: Mutex<Tickets>,
}

impl TicketStore {
    pub(crate) fn new(ttl: Duration, max_per_user: usize) -> Self {
        Self {
            ttl,
            max_per_user: max_per_user.max(1),
            tickets: Mutex::new(Tickets::default()),
        }
    }

    pub(crate) fn issue(&self, lab_id: &str, user_id: &str, now: Instant) -> Secret {
        let (raw, secret) = Secret::generate();
        let key = digest(&raw);
        let mut tickets = lock(&self.tickets);
        let Tickets { by_digest, by_user } = &mut *tickets;
        if by_digest.len() >= PURGE_ABOVE {
            by_digest.retain(|_, t| t.expires > now);
            by_user.retain(|_, keys| {
                keys.retain(|k| by_digest.contains_key(k));
                !keys.is_empty()
            });
        }
        let user: Arc<str> = match by_user.get_key_value(user_id) {
            Some((user, _)) => Arc::clone(user),
            None => user_id.into(),
        };
        let keys = by_user.entry(Arc::clone(&user)).or_default();
        keys.retain(|k| by_digest.get(k).is_some_and(|t| t.expires > now));
        while keys.len() >= self.max_per_user {
            if let Some(oldest) = keys.pop_front() {
                by_digest.remove(&oldest);
            }
        }
        keys.push_back(key);
        by_digest.insert(
            key,
            Ticket {
                lab_id: lab_id.into(),
                user_id: user,
                expires: now + self.ttl,
            },
        );
        secret
    }

    /// Consumes the ticket (whatever the outcome) and returns its user when
    /// it was unexpired and issued for `lab_id`.
    pub(crate) fn redeem(&self, ticket: &str, lab_id: &str, now: Instant) -> Option<Arc<str>> {
        let raw = parse_secret(ticket.as_bytes())?;
        let ticket = lock(&self.tickets).by_digest.remove(&digest(&raw))?;
        (ticket.expires > now && *ticket.lab_id == *lab_id).then_some(ticket.user_id)
    }

    /// Drops expired tickets.
    pub(crate) fn purge(&self, now: Instant) {
        let mut tickets = lock(&self.tickets);
        let Tickets { by_digest, by_user } = &mut *tickets;
        by_digest.retain(|_, t| t.expires > now);
        by_user.retain(|_, keys| {
            keys.retain(|k| by_digest.contains_key(k));
            !keys.is_empty()
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.tickets).by_digest.len()
    }
}

struct Session {
    lab_id: Box<str>,
    user_id: Arc<str>,
    expires: Instant,
    /// Milliseconds since the store's epoch when the table last confirmed it.
    checked: AtomicU64,
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

/// What the cache knows of a session secret.
pub(crate) enum Cached {
    /// A live session of this lab.
    Valid(Authenticated),
    /// A live session of this lab, which the table has not confirmed for
    /// longer than the recheck interval.
    Stale(Authenticated),
    /// Expired, or a session of another lab: no use asking the table.
    Invalid,
    /// Not in memory.
    Unknown,
}

/// Revocations, by lab and by user: when each happened.
#[derive(Default)]
struct Tombstones {
    labs: HashMap<Box<str>, SystemTime>,
    users: HashMap<Box<str>, SystemTime>,
}

/// Proxy sessions in memory, sharded by digest.
pub(crate) struct SessionStore {
    ttl: Duration,
    max_per_user: usize,
    /// `None`: the sessions are only here, there is nothing to recheck.
    recheck: Option<Duration>,
    epoch: Instant,
    shards: Box<[RwLock<DigestMap<Session>>]>,
    by_user: Mutex<PerUser>,
    tombstones: Mutex<Tombstones>,
}

impl SessionStore {
    pub(crate) fn new(ttl: Duration, max_per_user: usize, recheck: Option<Duration>) -> Self {
        Self {
            ttl,
            max_per_user: max_per_user.max(1),
            recheck,
            epoch: Instant::now(),
            shards: (0..SHARDS)
                .map(|_| RwLock::new(DigestMap::default()))
                .collect(),
            by_user: Mutex::new(PerUser::new()),
            tombstones: Mutex::new(Tombstones::default()),
        }
    }

    fn shard(&self, digest: &Digest) -> &RwLock<DigestMap<Session>> {
        &self.shards[usize::from(digest[31]) % self.shards.len()]
    }

    fn millis(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// Opens a session for `user_id` on `lab_id`; returns its secret and
    /// the record to persist.
    pub(crate) fn create(
        &self,
        lab_id: &str,
        user_id: &str,
        now: Instant,
        wall: SystemTime,
    ) -> (Secret, StoredSession) {
        let (raw, secret) = Secret::generate();
        let key = digest(&raw);
        let record = StoredSession {
            digest: SessionDigest(key),
            lab_id: lab_id.to_owned(),
            user_id: user_id.to_owned(),
            created_at: wall,
            expires_at: wall + self.ttl,
        };
        self.insert(key, lab_id, user_id, now + self.ttl, now);
        (secret, record)
    }

    fn insert(&self, key: Digest, lab_id: &str, user_id: &str, expires: Instant, now: Instant) {
        let mut by_user = lock(&self.by_user);
        let user: Arc<str> = match by_user.get_key_value(user_id) {
            Some((user, _)) => Arc::clone(user),
            None => user_id.into(),
        };
        let keys = by_user.entry(Arc::clone(&user)).or_default();
        keys.retain(|k| self.holds(k));
        while keys.len() >= self.max_per_user {
            if let Some(oldest) = keys.pop_front() {
                self.remove(&oldest, true);
            }
        }
        keys.push_back(key);
        let (revoked, _) = watch::channel(false);
        let session = Session {
            lab_id: lab_id.into(),
            user_id: user,
            expires,
            checked: AtomicU64::new(self.millis(now)),
            revoked,
        };
        let mut shard = self
            .shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= PURGE_ABOVE {
            shard.retain(|_, s| s.expires > now || s.revoked.receiver_count() > 0);
        }
        shard.insert(key, session);
    }

    fn holds(&self, key: &Digest) -> bool {
        self.shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }

    /// Removes a session; with `signal`, its WebSockets are told it was revoked.
    fn remove(&self, key: &Digest, signal: bool) {
        let removed = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        if let (Some(session), true) = (removed, signal) {
            session.revoked.send_replace(true);
        }
    }

    /// Checks a session secret for `lab_id` against memory.
    pub(crate) fn authenticate(
        &self,
        secret: &[u8; SECRET_LEN],
        lab_id: &str,
        now: Instant,
        watch_revocation: bool,
    ) -> Cached {
        let key = digest(secret);
        let shard = self.shard(&key);
        {
            let sessions = shard.read().unwrap_or_else(PoisonError::into_inner);
            let Some(session) = sessions.get(&key) else {
                return Cached::Unknown;
            };
            if session.expires <= now && session.revoked.receiver_count() > 0 {
                // Expired, but its WebSockets live on until they close.
                return Cached::Invalid;
            }
            if session.expires > now {
                if *session.lab_id != *lab_id {
                    return Cached::Invalid;
                }
                let authenticated = Authenticated {
                    user_id: Arc::clone(&session.user_id),
                    revoked: watch_revocation.then(|| session.revoked.subscribe()),
                };
                let stale = self.recheck.is_some_and(|recheck| {
                    let age = self
                        .millis(now)
                        .saturating_sub(session.checked.load(Ordering::Relaxed));
                    u128::from(age) >= recheck.as_millis()
                });
                return if stale {
                    Cached::Stale(authenticated)
                } else {
                    Cached::Valid(authenticated)
                };
            }
        }
        // Expired, with no WebSocket open: forget it.
        self.remove(&key, false);
        Cached::Invalid
    }

    /// Takes in a session read from the table when it is live, of `lab_id`
    /// and not revoked since it was created.
    pub(crate) fn admit(
        &self,
        stored: &StoredSession,
        lab_id: &str,
        now: Instant,
        wall: SystemTime,
        watch_revocation: bool,
    ) -> Option<Authenticated> {
        let left = stored.expires_at.duration_since(wall).ok()?;
        let expires = now + left.min(self.ttl);
        if stored.lab_id != lab_id || left.is_zero() || self.is_revoked(stored) {
            return None;
        }
        let key = stored.digest.0;
        self.insert(key, &stored.lab_id, &stored.user_id, expires, now);
        // A revocation that ran between the check above and the insert did
        // not see the session in memory: look again.
        if self.is_revoked(stored) {
            self.remove(&key, true);
            return None;
        }
        let sessions = self
            .shard(&key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let session = sessions.get(&key)?;
        Some(Authenticated {
            user_id: Arc::clone(&session.user_id),
            revoked: watch_revocation.then(|| session.revoked.subscribe()),
        })
    }

    /// The table still holds the session: trust it for another interval.
    pub(crate) fn confirm(&self, digest: &SessionDigest, now: Instant) {
        if let Some(session) = self
            .shard(&digest.0)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest.0)
        {
            session.checked.store(self.millis(now), Ordering::Relaxed);
        }
    }

    /// The table no longer holds the session (revoked by another process):
    /// drop it and close its WebSockets.
    pub(crate) fn forget(&self, digest: &SessionDigest) {
        self.remove(&digest.0, true);
    }

    fn is_revoked(&self, stored: &StoredSession) -> bool {
        let tombstones = lock(&self.tombstones);
        let after = |at: Option<&SystemTime>| at.is_some_and(|at| *at >= stored.created_at);
        after(tombstones.labs.get(stored.lab_id.as_str()))
            || after(tombstones.users.get(stored.user_id.as_str()))
    }

    /// Removes every session of a lab and signals its open WebSocket
    /// connections; sessions of the lab created until now are refused
    /// from the table too.
    pub(crate) fn revoke_lab(&self, lab_id: &str, wall: SystemTime) {
        self.tombstone(|t| &mut t.labs, lab_id, wall);
        self.revoke(|session| *session.lab_id == *lab_id);
    }

    /// Same, for every session of a user.
    pub(crate) fn revoke_user(&self, user_id: &str, wall: SystemTime) {
        self.tombstone(|t| &mut t.users, user_id, wall);
        self.revoke(|session| *session.user_id == *user_id);
    }

    /// Removes the sessions of one user in one lab and signals their open
    /// WebSocket connections.
    pub(crate) fn revoke_lab_user(&self, lab_id: &str, user_id: &str) {
        self.revoke(|session| *session.lab_id == *lab_id && *session.user_id == *user_id);
    }

    /// The live sessions of a lab, counted per user id.
    pub(crate) fn of_lab(&self, lab_id: &str, now: Instant) -> Vec<(String, usize)> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for shard in &self.shards {
            let sessions = shard.read().unwrap_or_else(PoisonError::into_inner);
            for s in sessions.values() {
                if *s.lab_id == *lab_id && (s.expires > now || s.revoked.receiver_count() > 0) {
                    *counts.entry(s.user_id.to_string()).or_default() += 1;
                }
            }
        }
        counts.into_iter().collect()
    }

    fn tombstone(
        &self,
        map: impl Fn(&mut Tombstones) -> &mut HashMap<Box<str>, SystemTime>,
        id: &str,
        wall: SystemTime,
    ) {
        let mut tombstones = lock(&self.tombstones);
        let map = map(&mut tombstones);
        if map.len() >= TOMBSTONES_PURGE_ABOVE {
            let ttl = self.ttl;
            map.retain(|_, at| wall.duration_since(*at).map_or(true, |age| age <= ttl));
        }
        map.insert(id.into(), wall);
    }

    fn revoke(&self, matches: impl Fn(&Session) -> bool) {
        for shard in &self.shards {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, s| {
                    let keep = !matches(s);
                    if !keep {
                        s.revoked.send_replace(true);
                    }
                    keep
                });
        }
    }

    /// Drops expired sessions (those with open WebSockets once these
    /// close: a session's expiry never cuts a WebSocket), old tombstones
    /// and users with no session left; returns the digests of the sessions
    /// with open WebSockets that are due for a recheck.
    pub(crate) fn sweep(&self, now: Instant, wall: SystemTime) -> Vec<SessionDigest> {
        let mut due = Vec::new();
        let recheck_ms = self
            .recheck
            .map(|r| u64::try_from(r.as_millis()).unwrap_or(u64::MAX));
        let now_ms = self.millis(now);
        for shard in &self.shards {
            let mut sessions = shard.write().unwrap_or_else(PoisonError::into_inner);
            sessions.retain(|_, s| s.expires > now || s.revoked.receiver_count() > 0);
            if let Some(recheck_ms) = recheck_ms {
                due.extend(
                    sessions
                        .iter()
                        .filter(|(_, s)| {
                            s.revoked.receiver_count() > 0
                                && now_ms.saturating_sub(s.checked.load(Ordering::Relaxed))
                                    >= recheck_ms
                        })
                        .map(|(key, _)| SessionDigest(*key)),
                );
            }
        }
        lock(&self.by_user).retain(|_, keys| {
            keys.retain(|k| self.holds(k));
            !keys.is_empty()
        });
        let ttl = self.ttl;
        let mut tombstones = lock(&self.tombstones);
        let fresh = |at: &mut SystemTime| wall.duration_since(*at).map_or(true, |age| age <= ttl);
        tombstones.labs.retain(|_, at| fresh(at));
        tombstones.users.retain(|_, at| fresh(at));
        due
    }

    /// How many sessions are in memory.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(secret: &Secret) -> [u8; SECRET_LEN] {
        parse_secret(secret.as_str().as_bytes()).unwrap()
    }

    fn valid(cached: Cached) -> Option<Authenticated> {
        match cached {
            Cached::Valid(a) => Some(a),
            _ => None,
        }
    }

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
        let store = TicketStore::new(Duration::from_secs(60), 16);
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
    fn a_user_holds_a_bounded_number_of_tickets() {
        let store = TicketStore::new(Duration::from_secs(60), 4);
        let now = Instant::now();
        let first = store.issue("lab-1", "mallory", now).into_string();
        for _ in 0..10_000 {
            store.issue("lab-1", "mallory", now);
        }
        assert_eq!(store.len(), 4, "memory does not grow with issued tickets");
        assert_eq!(store.redeem(&first, "lab-1", now), None, "the oldest went");
        let alice = store.issue("lab-1", "alice", now).into_string();
        assert_eq!(store.len(), 5, "other users keep theirs");
        assert!(store.redeem(&alice, "lab-1", now).is_some());
        store.purge(now + Duration::from_secs(61));
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn sessions_expire_and_are_revocable() {
        let store = SessionStore::new(Duration::from_secs(10), 64, None);
        let now = Instant::now();
        let wall = SystemTime::now();
        let (s, _) = store.create("lab-1", "alice", now, wall);
        let raw1 = raw(&s);
        assert!(valid(store.authenticate(&raw1, "lab-1", now, false)).is_some());
        assert!(matches!(
            store.authenticate(&raw1, "lab-2", now, false),
            Cached::Invalid
        ));
        let later = now + Duration::from_secs(11);
        assert!(matches!(
            store.authenticate(&raw1, "lab-1", later, false),
            Cached::Invalid
        ));
        assert!(matches!(
            store.authenticate(&raw1, "lab-1", now, false),
            Cached::Unknown
        ));

        let (s, _) = store.create("lab-1", "alice", now, wall);
        let raw2 = raw(&s);
        let auth = valid(store.authenticate(&raw2, "lab-1", now, true)).unwrap();
        let rx = auth.revoked.unwrap();
        store.revoke_user("alice", wall);
        assert!(*rx.borrow());
        assert!(matches!(
            store.authenticate(&raw2, "lab-1", now, false),
            Cached::Unknown
        ));
    }

    #[test]
    fn a_user_holds_a_bounded_number_of_sessions() {
        let store = SessionStore::new(Duration::from_secs(60), 3, None);
        let now = Instant::now();
        let wall = SystemTime::now();
        let (first, _) = store.create("lab-1", "mallory", now, wall);
        let watched = valid(store.authenticate(&raw(&first), "lab-1", now, true)).unwrap();
        for _ in 0..1_000 {
            store.create("lab-1", "mallory", now, wall);
        }
        assert_eq!(store.len(), 3);
        assert!(
            *watched.revoked.unwrap().borrow(),
            "the evicted session's WebSockets are closed"
        );
        store.create("lab-1", "alice", now, wall);
        assert_eq!(store.len(), 4);
        store.sweep(now, wall);
        assert_eq!(lock(&store.by_user).len(), 2);
    }

    #[test]
    fn sessions_read_back_are_admitted_unless_revoked_or_expired() {
        let store = SessionStore::new(Duration::from_secs(60), 64, Some(Duration::from_secs(30)));
        let now = Instant::now();
        let wall = SystemTime::now();
        let stored = |lab: &str, created: SystemTime| StoredSession {
            digest: SessionDigest(rand::random()),
            lab_id: lab.into(),
            user_id: "alice".into(),
            created_at: created,
            expires_at: created + Duration::from_secs(60),
        };
        let s = stored("lab-1", wall);
        assert!(store.admit(&s, "lab-1", now, wall, false).is_some());
        assert!(store.holds(&s.digest.0));
        assert!(
            store
                .admit(&stored("lab-2", wall), "lab-1", now, wall, false)
                .is_none()
        );
        let old = stored("lab-1", wall - Duration::from_secs(61));
        assert!(
            store.admit(&old, "lab-1", now, wall, false).is_none(),
            "expired"
        );

        let before = stored("lab-1", wall);
        store.revoke_lab("lab-1", wall + Duration::from_secs(1));
        assert!(store.admit(&before, "lab-1", now, wall, false).is_none());
        let after = stored("lab-1", wall + Duration::from_secs(2));
        assert!(store.admit(&after, "lab-1", now, wall, false).is_some());
    }

    #[test]
    fn an_expired_session_keeps_its_open_websockets() {
        let store = SessionStore::new(Duration::from_secs(10), 64, None);
        let now = Instant::now();
        let wall = SystemTime::now();
        let (s, _) = store.create("lab-1", "alice", now, wall);
        let raw = raw(&s);
        let watched = valid(store.authenticate(&raw, "lab-1", now, true)).unwrap();
        let rx = watched.revoked.unwrap();
        let later = now + Duration::from_secs(11);
        assert!(matches!(
            store.authenticate(&raw, "lab-1", later, false),
            Cached::Invalid
        ));
        store.sweep(later, wall);
        assert!(!*rx.borrow());
        assert!(rx.has_changed().is_ok(), "the session is still there");
        drop(rx);
        store.sweep(later, wall);
        assert_eq!(store.len(), 0, "dropped once its WebSockets closed");
    }

    #[test]
    fn cached_sessions_go_stale_after_the_recheck_interval() {
        let store = SessionStore::new(Duration::from_secs(600), 64, Some(Duration::from_secs(30)));
        let now = Instant::now();
        let (s, record) = store.create("lab-1", "alice", now, SystemTime::now());
        let raw = raw(&s);
        assert!(matches!(
            store.authenticate(&raw, "lab-1", now, false),
            Cached::Valid(_)
        ));
        let later = now + Duration::from_secs(31);
        assert!(matches!(
            store.authenticate(&raw, "lab-1", later, false),
            Cached::Stale(_)
        ));
        store.confirm(&record.digest, later);
        assert!(matches!(
            store.authenticate(&raw, "lab-1", later, false),
            Cached::Valid(_)
        ));

        let watched = valid(store.authenticate(&raw, "lab-1", later, true)).unwrap();
        let much_later = later + Duration::from_secs(31);
        assert_eq!(store.sweep(much_later, SystemTime::now()), [record.digest]);
        store.forget(&record.digest);
        assert!(*watched.revoked.unwrap().borrow());
    }
}
