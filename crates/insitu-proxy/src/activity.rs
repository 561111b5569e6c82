//! Per-lab rate limit for [`crate::LabDirectory::record_activity`].

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// At most one activity report per lab in this interval.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
const SHARDS: usize = 16;
/// Above this many labs a shard forgets the ones idle for an hour on insert.
const PURGE_ABOVE: usize = 256;
const FORGET_AFTER_MS: u64 = 60 * 60 * 1000;

type LabMap = HashMap<Box<str>, AtomicU64>;

pub(crate) struct ActivityLimiter {
    epoch: Instant,
    interval_ms: u64,
    /// Lab id → milliseconds since `epoch` of the last report, plus one.
    shards: Box<[RwLock<LabMap>]>,
    shard_hasher: BuildHasherDefault<DefaultHasher>,
}

impl ActivityLimiter {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            shards: (0..SHARDS).map(|_| RwLock::new(LabMap::new())).collect(),
            shard_hasher: BuildHasherDefault::default(),
        }
    }

    /// Whether activity on `lab_id` at `now` should be reported (and, if so,
    /// remembers that it was).
    pub(crate) fn should_record(&self, lab_id: &str, now: Instant) -> bool {
        let stamp = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX - 1)
            + 1;
        let index = usize::try_from(self.shard_hasher.hash_one(lab_id)).unwrap_or(0) % SHARDS;
        let shard = &self.shards[index];
        {
            let labs = shard.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(last) = labs.get(lab_id) {
                return self.claim(last, stamp);
            }
        }
        let mut labs = shard.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = labs.get(lab_id) {
            return self.claim(last, stamp);
        }
        if labs.len() >= PURGE_ABOVE {
            labs.retain(|_, last| {
                stamp.saturating_sub(last.load(Ordering::Relaxed)) < FORGET_AFTER_MS
            });
        }
        labs.insert(lab_id.into(), AtomicU64::new(stamp));
        true
    }

    fn claim(&self, last: &AtomicU64, stamp: u64) -> bool {
        let previous = last.load(Ordering::Relaxed);
        stamp.saturating_sub(previous) >= self.interval_ms
            && last
                .compare_exchange(previous, stamp, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_at_most_once_per_interval_per_lab() {
        let limiter = ActivityLimiter::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(limiter.should_record("a", t0));
        assert!(!limiter.should_record("a", t0 + Duration::from_millis(500)));
        assert!(limiter.should_record("b", t0 + Duration::from_millis(500)));
        assert!(limiter.should_record("a", t0 + Duration::from_millis(1001)));
        assert!(!limiter.should_record("a", t0 + Duration::from_millis(1500)));
    }
}
