//! Fixed-window throttles whose counters live in the database, so every node shares them and
//! they survive restarts. To keep the database off the hot path, a node takes request hits
//! from the shared counter in small leases (a twentieth of the limit, at most 100) and spends
//! them locally: the limit is never exceeded across nodes; at worst a node's unspent lease
//! makes the others throttle a little early within that window. Sending limits and failure
//! budgets count each hit in the database (a message's limits in one statement): they must be
//! exact.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{config::Config, domain::now_ms, error::Error, metrics::Metrics, storage::Store};

/// The limits every surface applies (as the configuration sets them), with the shared
/// counters behind them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Limits {
    throttle: Arc<Throttle>,
    store: Store,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
}

impl Limits {
    pub fn new(config: Arc<Config>, store: Store, metrics: Arc<Metrics>) -> Self {
        Limits {
            throttle: Arc::default(),
            store,
            config,
            metrics,
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
            self.metrics.send_refused("country");
            Err(Error::Forbidden(
                "numbers of this country cannot receive codes here".into(),
            ))
        }
    }

    /// The sending limits, guards against SMS pumping and mail bombing, for a message from
    /// `tenant` (a tyntec account, a Passage app) to `to`: the tenant's hourly cap; the
    /// recipient's, per tenant (so that one tenant's sends cannot lock a person out of
    /// another's) and across tenants; and for numbers (`phone`) their prefix's.
    pub async fn sending(&self, tenant: &str, to: &str, phone: bool) -> Result<(), Error> {
        let c = &self.config;
        let prefix = to
            .get(..1 + c.delivery_prefix_digits as usize)
            .filter(|_| phone)
            .unwrap_or(to);
        let checks = [
            (
                "tenant",
                format!("sends:{tenant}"),
                c.delivery_limit_per_tenant,
            ),
            (
                "recipient",
                format!("recipient:{tenant}:{to}"),
                c.delivery_limit_per_recipient,
            ),
            (
                "recipient",
                format!("recipient:{to}"),
                c.delivery_limit_per_recipient_global,
            ),
            (
                "prefix",
                format!("prefix:{prefix}"),
                if phone {
                    c.delivery_limit_per_prefix
                } else {
                    0
                },
            ),
        ];
        let counted: Vec<_> = checks.iter().filter(|(_, _, limit)| *limit > 0).collect();
        if counted.is_empty() {
            return Ok(());
        }
        // Every counter in one statement: one database round trip per message.
        let window = Window::current(3600);
        let buckets: Vec<&str> = counted.iter().map(|(_, b, _)| b.as_str()).collect();
        let counts = self.store.count_hits_of(&buckets, window.start).await?;
        for ((limit_name, bucket, limit), count) in counted.iter().zip(counts) {
            if count > i64::from(*limit) {
                tracing::debug!(bucket = %bucket, "sending limit reached");
                self.metrics.send_refused(limit_name);
                return Err(window.exhausted());
            }
        }
        Ok(())
    }
}

/// A fixed window of a throttle or budget: windows of one length start at multiples of it,
/// so that every node counts in the same one.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: i64,
    end: i64,
}

impl Window {
    /// The window of `period_secs` (at least one second) that holds now.
    fn current(period_secs: u64) -> Window {
        let now = now_ms();
        let length = (period_secs.max(1) as i64).saturating_mul(1000);
        let start = now - now.rem_euclid(length);
        Window {
            start,
            end: start + length,
        }
    }

    /// The refusal until this window ends (at least a second).
    fn exhausted(&self) -> Error {
        let retry_after_ms = (self.end - now_ms()).max(1000);
        Error::RateLimited {
            retry_after: Duration::from_millis(retry_after_ms as u64),
        }
    }
}

impl Limits {
    /// The current window of the failure budgets.
    pub fn failure_window(&self) -> Window {
        Window::current(self.config.verify_failure_window_seconds)
    }

    /// Refuses a verification once `failures` wrong codes were counted in `window` for one
    /// person (`verify_failure_limit`; 0 turns it off): with a code resent ten times an
    /// hour, per-code attempts alone would allow dozens of guesses an hour.
    pub fn within_failure_budget(&self, failures: i64, window: Window) -> Result<(), Error> {
        let limit = i64::from(self.config.verify_failure_limit);
        if limit == 0 || failures < limit {
            Ok(())
        } else {
            Err(window.exhausted())
        }
    }

    /// Counts a wrong code against `subject` (a user id, a phone number) within `tenant` (a
    /// Passage app, a tyntec account), in the counter `verify:{tenant}:{subject}` that the
    /// storage layer reads back with the code.
    pub async fn count_failure(
        &self,
        tenant: &str,
        subject: &str,
        window: Window,
    ) -> Result<(), Error> {
        if self.config.verify_failure_limit > 0 {
            let bucket = format!("verify:{tenant}:{subject}");
            self.store.count_hits(&bucket, window.start, 1).await?;
        }
        Ok(())
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
    /// were counted in the current window. A limit of 0 turns the throttle off. Hits are taken
    /// from the shared counter in leases.
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
        let window = Window::current(period_secs);
        let window_start = window.start;
        if self.take_local(bucket, window_start) {
            return Ok(());
        }
        let limit = i64::from(limit);
        let chunk = (limit / 20).clamp(1, 100);
        let count = store.count_hits(bucket, window_start, chunk).await?;
        // This lease holds the hits (count - chunk, count]; those above the limit are void.
        let granted = chunk.min(limit - (count - chunk)).max(0);
        // Concurrent requests of this node may have leased more than they spent.
        if granted == 0 && !self.take_local(bucket, window_start) {
            return Err(window.exhausted());
        }
        if granted > 1 {
            self.add_lease(bucket, window_start, granted - 1);
        }
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
