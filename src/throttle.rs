//! Fixed-window throttles whose counters live in the database, so every node shares them and
//! they survive restarts. To keep the database off the hot path, a node takes hits from the
//! shared counter in small leases (a twentieth of the limit, at most 100) and spends them
//! locally: the limit is never exceeded across nodes; at worst a node's unspent lease makes
//! the others throttle a little early within that window.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{config::Config, domain::now_ms, error::Error, storage::Store};

/// The limits every surface applies (as the configuration sets them), with the shared
/// counters behind them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Limits {
    throttle: Arc<Throttle>,
    store: Store,
    config: Arc<Config>,
}

impl Limits {
    pub fn new(config: Arc<Config>, store: Store) -> Self {
        Limits {
            throttle: Arc::default(),
            store,
            config,
        }
    }

    /// The request throttle of `bucket` (a key, an app, a client address):
    /// `rate_limit_calls` per `rate_limit_period_seconds`.
    pub async fn request(&self, bucket: &str) -> Result<(), Error> {
        let (limit, period) = (
            self.config.rate_limit_calls,
            self.config.rate_limit_period_seconds,
        );
        self.throttle.hit(&self.store, bucket, limit, period).await
    }

    /// The country policy (`country_allow`, `country_deny`) for a number of `region`: SMS
    /// and calls reach only the countries it allows, on every path that sends them.
    pub fn country(&self, region: Option<&str>) -> Result<(), Error> {
        if self.config.country_allowed(region) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "numbers of this country cannot receive codes here".into(),
            ))
        }
    }

    /// The per-recipient message limits, a guard against SMS pumping and mail bombing: one per
    /// tenant (a tyntec account, a Passage app), so that one tenant's sends cannot lock a
    /// person out of another's, and a higher one across tenants.
    pub async fn recipient(&self, tenant: &str, recipient: &str) -> Result<(), Error> {
        let per_tenant = self.config.delivery_limit_per_recipient;
        let global = self.config.delivery_limit_per_recipient_global;
        let bucket = format!("recipient:{tenant}:{recipient}");
        self.throttle
            .hit(&self.store, &bucket, per_tenant, 3600)
            .await?;
        let bucket = format!("recipient:{recipient}");
        self.throttle.hit(&self.store, &bucket, global, 3600).await
    }
}

#[derive(Debug, Default)]
struct Throttle {
    leases: Mutex<HashMap<String, Lease>>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    window_start: i64,
    remaining: i64,
}

/// Above this many buckets, leases of past windows are dropped.
const MAX_BUCKETS: usize = 10_000;

impl Throttle {
    /// Counts one hit in `bucket` for a window of `period_secs`; `RateLimited` once `limit` hits
    /// were counted in the current window. A limit of 0 turns the throttle off.
    async fn hit(
        &self,
        store: &Store,
        bucket: &str,
        limit: u32,
        period_secs: u64,
    ) -> Result<(), Error> {
        if limit == 0 || period_secs == 0 {
            return Ok(());
        }
        let now = now_ms();
        let period_ms = (period_secs as i64).saturating_mul(1000);
        let window_start = now - now.rem_euclid(period_ms);
        if self.take_local(bucket, window_start) {
            return Ok(());
        }
        let limit = i64::from(limit);
        let chunk = (limit / 20).clamp(1, 100);
        let count = store.count_hits(bucket, window_start, chunk).await?;
        // This lease holds the hits (count - chunk, count]; those above the limit are void.
        let granted = chunk.min(limit - (count - chunk)).max(0);
        if granted == 0 {
            let retry_after_ms = (window_start + period_ms - now).max(1000);
            return Err(Error::RateLimited {
                retry_after: Duration::from_millis(retry_after_ms as u64),
            });
        }
        self.add_lease(bucket, window_start, granted - 1);
        Ok(())
    }

    fn take_local(&self, bucket: &str, window_start: i64) -> bool {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        match leases.get_mut(bucket) {
            Some(lease) if lease.window_start == window_start && lease.remaining > 0 => {
                lease.remaining -= 1;
                true
            }
            _ => false,
        }
    }

    fn add_lease(&self, bucket: &str, window_start: i64, remaining: i64) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() >= MAX_BUCKETS {
            let now = now_ms();
            // A lease from a window that started over an hour ago is spent.
            leases.retain(|_, l| l.window_start > now - 3_600_000);
            // Still full (many clients within the hour): forget the leases. Their unspent hits
            // are lost, so limits only get stricter, and memory stays bounded.
            if leases.len() >= MAX_BUCKETS {
                leases.clear();
            }
        }
        let lease = leases.entry(bucket.to_string()).or_insert(Lease {
            window_start,
            remaining: 0,
        });
        if lease.window_start != window_start {
            *lease = Lease {
                window_start,
                remaining: 0,
            };
        }
        lease.remaining += remaining;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_stay_bounded_however_many_clients_come_within_the_hour() {
        let throttle = Throttle::default();
        let window = now_ms();
        for i in 0..3 * MAX_BUCKETS {
            throttle.add_lease(&format!("client-{i}"), window, 1);
        }
        let held = throttle
            .leases
            .lock()
            .map(|l| l.len())
            .unwrap_or(usize::MAX);
        assert!(held <= MAX_BUCKETS, "{held}");
        assert!(throttle.take_local(&format!("client-{}", 3 * MAX_BUCKETS - 1), window));
    }
}
