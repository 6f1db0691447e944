//! A small per-node cache of values read from the database, each kept for a fixed time. The
//! database stays the source of truth: a change made on another node shows within the TTL.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// Entries beyond this are dropped (expired ones first) so the cache cannot grow unbounded.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The value for `key` if it was stored less than the TTL ago, with its age.
    pub fn get(&self, key: &str) -> Option<(V, Duration)> {
        let entries = self.lock();
        let (value, at) = entries.get(key)?;
        let age = at.elapsed();
        (age < self.ttl).then(|| (value.clone(), age))
    }

    pub fn insert(&self, key: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_string(), (value, Instant::now()));
    }

    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_millis(50));
        cache.insert("a", 1);
        assert_eq!(cache.get("a").map(|(v, _)| v), Some(1));
        assert_eq!(cache.get("b"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
        cache.insert("a", 2);
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
    }
}
