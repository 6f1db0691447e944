//! The outbox worker: claims due messages, sends them with a timeout, falls back or retries,
//! and records every attempt. Several nodes may run it against one PostgreSQL.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, watch, Notify},
    task::JoinSet,
    time::Instant,
};

use super::{Channel, DeliveryError, Envelope, Handoff, Message, Outbox, Providers, LEASE_MS};
use crate::{
    config::Config,
    crypto::ServerKeys,
    domain::now_ms,
    metrics::Metrics,
    storage::{DeliveryRow, Settlement, Store, Unit},
};

/// Messages claimed per round.
const BATCH: i64 = 64;
/// Due retries, fallbacks and messages whose node died are found by polling at this interval.
const POLL: Duration = Duration::from_millis(500);
const HOUSEKEEPING: Duration = Duration::from_secs(60);
/// Sent and failed messages are kept this long for inspection.
const KEEP_SETTLED_MS: i64 = 7 * 24 * 3600 * 1000;
/// OTPs and their history are kept this long after they expire.
const KEEP_OTPS_MS: i64 = 30 * 24 * 3600 * 1000;
/// Sign-ups whose identifier was never verified are dropped after a week.
const KEEP_PENDING_MS: i64 = 7 * 24 * 3600 * 1000;

pub struct Worker {
    store: Store,
    /// Messages committed on this node.
    handoff: Arc<Handoff>,
    sender: Arc<Sender>,
    /// Makes the worker look for due messages now (after a fallback).
    wake: Arc<Notify>,
    /// Throttle counters of windows that started longer ago are pruned.
    throttle_horizon_ms: i64,
    /// Rotated refresh tokens keep their successor this long (then it is forgotten).
    refresh_grace_ms: i64,
}

/// What one attempt needs.
struct Sender {
    keys: ServerKeys,
    providers: Providers,
    metrics: Arc<Metrics>,
    /// Tries per channel when a provider is unavailable.
    max_attempts: u32,
}

impl Worker {
    pub fn new(
        outbox: &Outbox,
        providers: Providers,
        metrics: Arc<Metrics>,
        config: &Config,
    ) -> Self {
        let max_attempts = config.delivery_max_attempts;
        // Counters are kept for two of the longest throttle windows (the per-recipient one
        // is an hour).
        let longest_window = config
            .rate_limit_period_seconds
            .max(config.verify_failure_window_seconds)
            .max(3600);
        Worker {
            throttle_horizon_ms: 2 * 1000 * longest_window as i64,
            refresh_grace_ms: 1000 * config.refresh_grace_seconds as i64,
            store: outbox.store.clone(),
            handoff: outbox.handoff.clone(),
            sender: Arc::new(Sender {
                keys: outbox.keys.clone(),
                providers,
                metrics,
                max_attempts,
            }),
            wake: Arc::new(Notify::new()),
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut in_flight = JoinSet::new();
        let (settled_tx, settled_rx) = mpsc::unbounded_channel();
        let settler = tokio::spawn(settle(self.store.clone(), self.wake.clone(), settled_rx));
        let handoff = self.handoff.clone();
        // Due messages are claimed every POLL however busy the hand-over keeps the worker,
        // and at once when asked (a fallback).
        let mut next_claim = Instant::now();
        let mut claim_now = true;
        loop {
            let mut claimed = Vec::new();
            if claim_now || Instant::now() >= next_claim {
                next_claim = Instant::now() + POLL;
                match self.store.claim_deliveries(now_ms(), LEASE_MS, BATCH).await {
                    Ok(rows) => claimed = rows,
                    Err(e) => tracing::warn!(error = %e, "outbox claim failed"),
                }
            }
            let full_batch = claimed.len() as i64 == BATCH;
            claimed.extend(handoff.take());
            for row in claimed {
                let sender = self.sender.clone();
                let settled = settled_tx.clone();
                in_flight.spawn(async move {
                    let outcome = sender.attempt(row).await;
                    let _ = settled.send(outcome);
                });
            }
            // Reap finished sends without waiting for the slow ones.
            while in_flight.try_join_next().is_some() {}
            if full_batch {
                claim_now = true;
                continue;
            }
            claim_now = tokio::select! {
                _ = handoff.notified() => false,
                _ = self.wake.notified() => true,
                _ = tokio::time::sleep_until(next_claim) => false,
                _ = housekeeping.tick() => {
                    self.housekeeping().await;
                    false
                }
                _ = stop.changed() => break,
            };
        }
        // Send what was handed over, let sends under way finish and be recorded; what is left
        // is claimed again after the lease.
        for row in handoff.take() {
            let outcome = self.sender.attempt(row).await;
            let _ = settled_tx.send(outcome);
        }
        while in_flight.join_next().await.is_some() {}
        drop(settled_tx);
        let _ = settler.await;
    }

    async fn housekeeping(&self) {
        let now = now_ms();
        if let Err(e) = self.store.prune_deliveries(now - KEEP_SETTLED_MS).await {
            tracing::warn!(error = %e, "pruning the outbox failed");
        }
        if let Err(e) = self.store.prune_otps(now - KEEP_OTPS_MS).await {
            tracing::warn!(error = %e, "pruning old OTPs failed");
        }
        // A day's margin keeps an expired secret answerable as "expired" for a while.
        if let Err(e) = self
            .store
            .prune_passage_secrets(now - 24 * 3600 * 1000)
            .await
        {
            tracing::warn!(error = %e, "pruning expired Passage codes and links failed");
        }
        if let Err(e) = self.store.prune_pending_users(now - KEEP_PENDING_MS).await {
            tracing::warn!(error = %e, "pruning abandoned sign-ups failed");
        }
        let rotated_before = now - self.refresh_grace_ms;
        if let Err(e) = self.store.forget_successors(rotated_before).await {
            tracing::warn!(error = %e, "forgetting rotated refresh tokens' successors failed");
        }
        let horizon = now - self.throttle_horizon_ms;
        if let Err(e) = self.store.prune_rate_counters(horizon).await {
            tracing::warn!(error = %e, "pruning throttle counters failed");
        }
    }
}

/// How one attempt ended, to be written.
struct Settled {
    delivery_id: String,
    settlement: Settlement,
    kind: &'static str,
    provider: &'static str,
    detail: Option<String>,
    at: i64,
}

/// Writes settlements as they arrive, everything that is waiting in one unit: under load one
/// write records many attempts.
async fn settle(store: Store, wake: Arc<Notify>, mut settled: mpsc::UnboundedReceiver<Settled>) {
    let mut batch = Vec::new();
    while settled.recv_many(&mut batch, 64).await > 0 {
        let fell_back = batch
            .iter()
            .any(|s| matches!(s.settlement, Settlement::Fallback { .. }));
        let statements = batch
            .drain(..)
            .map(|s| {
                Store::settle_delivery(
                    &s.delivery_id,
                    &s.settlement,
                    (s.kind, s.provider, s.detail.as_deref()),
                    s.at,
                )
            })
            .collect();
        if let Err(e) = store.commit(Unit::all(statements)).await {
            // The leases run out and the messages are tried again: at-least-once.
            tracing::error!(error = %e, "could not record delivery attempts");
        }
        if fell_back {
            wake.notify_one();
        }
    }
}

impl Sender {
    /// One attempt at one message.
    async fn attempt(&self, row: DeliveryRow) -> Settled {
        let providers = &self.providers;
        let outcome = match self.open(&row) {
            Ok((channel, message)) => {
                let provider = providers.for_channel(channel);
                let sent = tokio::time::timeout(providers.timeout, provider.send(&message)).await;
                let result = sent.unwrap_or_else(|_| {
                    Err(DeliveryError::Unavailable(format!(
                        "no answer within {} s",
                        providers.timeout.as_secs()
                    )))
                });
                self.metrics.delivery(
                    provider.name(),
                    channel.as_str(),
                    if result.is_ok() { "sent" } else { "failed" },
                );
                (provider.name(), result)
            }
            Err(reason) => ("none", Err(DeliveryError::Rejected(reason))),
        };
        let now = now_ms();
        let (provider, result) = outcome;
        let (settlement, kind, detail) = match result {
            Ok(receipt) => (
                Settlement::Sent,
                "SENT",
                receipt
                    .provider_message_id
                    .map(|id| format!("provider message id {id}")),
            ),
            Err(err) => match row.fallback_channel {
                // OTPs are short-lived: a failing first channel hands over at once.
                Some(fallback) => (
                    Settlement::Fallback { channel: fallback },
                    "FALLBACK",
                    Some(format!("{err}; trying {fallback}")),
                ),
                None => match err {
                    DeliveryError::Unavailable(_)
                        if row.attempts < i64::from(self.max_attempts) =>
                    {
                        // 1 s, 2 s, 4 s, ... capped at a minute.
                        let backoff = 1000i64 << (row.attempts - 1).clamp(0, 6);
                        (
                            Settlement::Retry {
                                at: now + backoff.min(60_000),
                            },
                            "DELIVERY_FAILED",
                            Some(format!("{err}; retrying")),
                        )
                    }
                    _ => (Settlement::Failed, "UNDELIVERABLE", Some(err.to_string())),
                },
            },
        };
        Settled {
            delivery_id: row.id,
            settlement,
            kind,
            provider,
            detail,
            at: now,
        }
    }

    /// Opens the sealed payload and builds the message for the row's current channel.
    fn open(&self, row: &DeliveryRow) -> Result<(Channel, Message), String> {
        let channel = row.channel;
        let json = self
            .keys
            .open(&row.id, &row.payload)
            .map_err(|_| "payload does not open with this server secret".to_string())?;
        let env: Envelope = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        // After a fallback the row's channel is the fallback channel and `fallback_channel` is
        // cleared: use the fallback wording.
        let fell_back = row.fallback_channel.is_none() && env.fallback_text.is_some();
        let text = match (&env.fallback_text, fell_back) {
            (Some(t), true) => t.clone(),
            _ => env.text.clone(),
        };
        let sender = if channel == Channel::Voice {
            env.caller.clone().or(env.sender.clone())
        } else {
            env.sender.clone()
        };
        Ok((
            channel,
            Message {
                channel,
                to: row.recipient.clone(),
                text,
                subject: env.subject.clone(),
                sender,
                language: env.language.clone(),
                reference: row.otp_id.clone().unwrap_or_else(|| row.id.clone()),
            },
        ))
    }
}
