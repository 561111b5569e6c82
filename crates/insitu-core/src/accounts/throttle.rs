//! Login throttling and the password-checking gate.
//!
//! Failed logins are counted three ways, each in a fixed window: per
//! account and client address (one attacker guessing one password), per
//! client address (one attacker trying many accounts) and per account (many
//! addresses guessing one password). A try *reserves* its failure in all
//! three counts before the password is verified, and gives the reservation
//! back when the password was right, so N parallel guesses get no more
//! verifications than N sequential ones. An attacker locked out at their
//! address does not lock the account's owner out at theirs.
//!
//! Each map holds at most `max_tracked` counters: a new key first drops
//! expired counters, then the oldest one, so invented usernames and
//! addresses cannot grow the server's memory. Usernames that cannot be an
//! account share one counter.
//!
//! Argon2 checks cost about 19 MiB and tens of milliseconds of a core each:
//! [`PasswordGate`] runs a bounded number at once and lets a bounded number
//! wait; past that a try is refused at once.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::LoginConfig;

/// Who a failure is counted against: an IPv4 address, or the /64 network
/// of an IPv6 address (one host commonly holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(u32::from(v4)),
                None => ClientKey::V6(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

/// A fixed-window counter.
#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    since: i64,
}

/// Counters of one kind, at most `max` of them.
struct Counters<K> {
    map: HashMap<K, Window>,
    max: usize,
}

impl<K: Eq + Hash + Clone> Counters<K> {
    fn new(max: usize) -> Self {
        Counters {
            map: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Seconds until `key` may try again, when its count is at `limit`.
    fn blocked(&self, key: &K, limit: u32, now: i64, window: i64) -> Option<i64> {
        let w = self.map.get(key)?;
        (now - w.since < window && w.count >= limit).then(|| (w.since + window - now).max(1))
    }

    /// Counts one failure for `key`, making room first when the map is full.
    fn add(&mut self, key: &K, now: i64, window: i64) {
        if !self.map.contains_key(key) && self.map.len() >= self.max {
            self.map.retain(|_, w| now - w.since < window);
            if self.map.len() >= self.max
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, w)| w.since)
                    .map(|(k, _)| k.clone())
            {
                self.map.remove(&oldest);
            }
        }
        let w = self.map.entry(key.clone()).or_insert(Window {
            count: 0,
            since: now,
        });
        if now - w.since >= window {
            *w = Window {
                count: 0,
                since: now,
            };
        }
        w.count = w.count.saturating_add(1);
    }

    /// Gives back one reserved failure.
    fn give_back(&mut self, key: &K) {
        if let Some(w) = self.map.get_mut(key) {
            w.count = w.count.saturating_sub(1);
        }
    }

    fn forget(&mut self, key: &K) {
        self.map.remove(key);
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

struct Maps {
    pairs: Counters<(String, ClientKey)>,
    addresses: Counters<ClientKey>,
    accounts: Counters<String>,
}

/// Failed logins, counted before each password check.
pub struct Throttle {
    cfg: LoginConfig,
    window: i64,
    maps: Mutex<Maps>,
}

/// A failure reserved for one try; [`Throttle::succeeded`] gives it back.
#[derive(Debug)]
pub struct Reservation {
    account: String,
    client: ClientKey,
}

/// The account key of a username as typed: its lowercase form when it can
/// be an account, one shared key otherwise (so invented names that cannot
/// exist do not each take a counter).
fn account_key(username: &str, valid: bool) -> String {
    if valid {
        username.to_lowercase()
    } else {
        String::new()
    }
}

impl Throttle {
    pub fn new(cfg: LoginConfig) -> Throttle {
        let max = cfg.max_tracked;
        Throttle {
            window: cfg.window_secs(),
            maps: Mutex::new(Maps {
                pairs: Counters::new(max),
                addresses: Counters::new(max),
                accounts: Counters::new(max),
            }),
            cfg,
        }
    }

    /// Reserves a failure for a try on `username` (valid or not as an
    /// account name) from `client`, or says how long to wait.
    pub fn reserve(
        &self,
        username: &str,
        valid: bool,
        client: IpAddr,
        now: i64,
    ) -> Result<Reservation, i64> {
        let account = account_key(username, valid);
        let client = ClientKey::from(client);
        let pair = (account.clone(), client);
        let mut m = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let (w, c) = (self.window, &self.cfg);
        let wait = [
            m.pairs.blocked(&pair, c.failures_per_client, now, w),
            m.addresses.blocked(&client, c.failures_per_address, now, w),
            m.accounts.blocked(&account, c.failures_per_account, now, w),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        m.pairs.add(&pair, now, w);
        m.addresses.add(&client, now, w);
        m.accounts.add(&account, now, w);
        Ok(Reservation { account, client })
    }

    /// The password was right: the reservation is given back and the
    /// account's failures from this client are forgotten.
    pub fn succeeded(&self, r: &Reservation) {
        let mut m = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        m.pairs.forget(&(r.account.clone(), r.client));
        m.addresses.give_back(&r.client);
        m.accounts.give_back(&r.account);
    }

    /// The try was not made (the gate was full, the database failed): its
    /// reservation is given back whole.
    pub fn release(&self, r: &Reservation) {
        let mut m = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        m.pairs.give_back(&(r.account.clone(), r.client));
        m.addresses.give_back(&r.client);
        m.accounts.give_back(&r.account);
    }

    /// Counters held, per kind (pairs, addresses, accounts).
    pub fn tracked(&self) -> (usize, usize, usize) {
        let m = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        (m.pairs.len(), m.addresses.len(), m.accounts.len())
    }
}

/// Bounds the password checks (Argon2) running and waiting at once.
#[derive(Clone)]
pub struct PasswordGate {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

/// A place to check one password; dropping it frees the place.
pub struct GatePass {
    _running: OwnedSemaphorePermit,
    _admitted: OwnedSemaphorePermit,
}

/// Too many password checks are running and waiting.
#[derive(Debug)]
pub struct Busy;

impl PasswordGate {
    pub fn new(running: usize, waiting: usize) -> PasswordGate {
        let running = running.max(1);
        PasswordGate {
            running: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(Semaphore::new(running.saturating_add(waiting))),
        }
    }

    /// Waits for a free place, or refuses at once when the queue is full.
    pub async fn enter(&self) -> Result<GatePass, Busy> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        let running = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        Ok(GatePass {
            _running: running,
            _admitted: admitted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LoginConfig {
        LoginConfig {
            failures_per_client: 3,
            failures_per_address: 5,
            failures_per_account: 8,
            window: "60s".into(),
            max_tracked: 100,
            concurrent_checks: 1,
            queued_checks: 1,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reservations_count_before_the_check_and_success_gives_them_back() {
        let t = Throttle::new(cfg());
        // Three tries in flight at once use up the pair's budget.
        for _ in 0..3 {
            t.reserve("ann", true, ip("10.0.0.1"), 0).unwrap();
        }
        assert_eq!(t.reserve("ann", true, ip("10.0.0.1"), 1).unwrap_err(), 59);
        assert!(t.reserve("Ann", true, ip("10.0.0.1"), 1).is_err(), "case");
        // Another address is not held back by it.
        let r = t.reserve("ann", true, ip("10.0.0.2"), 1).unwrap();
        t.succeeded(&r);
        // The window passes.
        assert!(t.reserve("ann", true, ip("10.0.0.1"), 61).is_ok());
    }

    #[test]
    fn addresses_and_accounts_have_budgets_of_their_own() {
        let t = Throttle::new(cfg());
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            t.reserve(name, true, ip("10.0.0.9"), 0).unwrap();
        }
        assert!(
            t.reserve("a6", true, ip("10.0.0.9"), 0).is_err(),
            "spraying"
        );
        for n in 0..8 {
            t.reserve("bob", true, ip(&format!("10.1.0.{n}")), 0)
                .unwrap();
        }
        assert!(
            t.reserve("bob", true, ip("10.2.0.1"), 0).is_err(),
            "distributed guessing"
        );
        // An IPv6 host is counted by its /64.
        let t = Throttle::new(cfg());
        for n in 1..=3 {
            t.reserve("cy", true, ip(&format!("2001:db8::{n}")), 0)
                .unwrap();
        }
        assert!(t.reserve("cy", true, ip("2001:db8::ffff"), 0).is_err());
        assert!(t.reserve("cy", true, ip("2001:db8:0:1::1"), 0).is_ok());
    }

    #[test]
    fn the_maps_stay_bounded_under_many_usernames_and_addresses() {
        let mut c = cfg();
        c.failures_per_address = u32::MAX;
        c.failures_per_account = u32::MAX;
        let t = Throttle::new(c);
        for n in 0..20_000u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n % 5_000));
            let _ = t.reserve(&format!("user-{n}"), true, addr, i64::from(n / 1000));
        }
        let (pairs, addresses, accounts) = t.tracked();
        assert!(pairs <= 100 && addresses <= 100 && accounts <= 100);
        // Names that cannot be accounts share one counter.
        let t = Throttle::new(cfg());
        for n in 0..50 {
            let _ = t.reserve(&format!("../{n}"), false, ip("10.0.0.1"), 0);
        }
        assert_eq!(t.tracked().2, 1);
    }

    #[tokio::test]
    async fn the_gate_refuses_at_once_when_its_queue_is_full() {
        let gate = PasswordGate::new(1, 1);
        let first = gate.enter().await.unwrap();
        let g = gate.clone();
        let waiting = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        tokio::task::yield_now().await;
        while gate.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(gate.enter().await.is_err(), "a third is refused at once");
        drop(first);
        assert!(waiting.await.unwrap().is_ok(), "the waiting one gets in");
    }
}
