//! The delivery outbox: messages written with the OTP (or link) they carry, claimed by a
//! worker, and settled with an event per attempt.

use super::rows::row_type;
use super::{dialect, Filtered, Statement, Store};
use crate::{domain::Channel, error::Error};

row_type! {
    /// A message to send. `payload` is sealed with the server key: it holds a one-time code.
    #[derive(Debug, Clone)]
    pub struct DeliveryRow {
        pub id: String,
        pub otp_id: Option<String>,
        pub channel: Channel,
        /// Channel to try when `channel`'s provider refuses the message (AUTO: voice after SMS).
        pub fallback_channel: Option<Channel>,
        pub recipient: String,
        pub payload: Vec<u8>,
        /// Attempts so far, this claim included.
        pub attempts: i64,
    }
}

/// How one attempt ended, as the worker decided.
#[derive(Debug, Clone)]
pub enum Settlement {
    Sent,
    /// Try again at `at` on the same channel.
    Retry {
        at: i64,
    },
    /// Switch to the fallback channel and send at once.
    Fallback {
        channel: Channel,
    },
    /// Give up.
    Failed,
}

impl Store {
    /// A new message, claimed until `locked_until` by the node that wrote it (its first
    /// attempt is counted).
    pub fn insert_delivery(d: &DeliveryRow, now: i64, locked_until: i64) -> Filtered {
        Statement::filtered(
            "insert into deliveries (id, otp_id, channel, fallback_channel, recipient, payload,
               status, next_attempt_at, created_at, updated_at, locked_until, attempts)
             select $1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7, $8, 1",
            "true",
        )
        .text(d.id.clone())
        .text(d.otp_id.clone())
        .text(d.channel.as_str().to_string())
        .text(d.fallback_channel.map(|c| c.as_str().to_string()))
        .text(d.recipient.clone())
        .blob(d.payload.clone())
        .int(now)
        .int(locked_until)
    }

    /// Claims up to `limit` due messages for `lease_ms`; a claim that is not settled in time
    /// (the node died) becomes due again.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, Error> {
        Statement::new(dialect::claim_due_sql(self.backend))
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.write)
            .await
    }

    /// Records one attempt's outcome; the `deliveries_attempt_event` trigger turns it into an
    /// OTP event (kind, the channel tried, provider, detail). Settlements are written in
    /// batches, so this returns the statement.
    pub fn settle_delivery(
        id: &str,
        settlement: &Settlement,
        outcome: (&str, &str, Option<&str>),
        now: i64,
    ) -> Statement {
        let (kind, provider, detail) = outcome;
        // Sent and failed messages no longer need their text.
        let (status, channel, fallback_cleared, next_attempt_at, payload_kept) = match settlement {
            Settlement::Sent => ("sent", None, false, None, false),
            Settlement::Failed => ("failed", None, false, None, false),
            Settlement::Retry { at } => ("pending", None, false, Some(*at), true),
            Settlement::Fallback { channel } => {
                ("pending", Some(channel.as_str()), true, Some(now), true)
            }
        };
        Statement::new(
            "update deliveries set status = $2, channel = coalesce($3, channel),
               fallback_channel = case when $4 = 1 then null else fallback_channel end,
               attempts = case when $4 = 1 then 0 else attempts end,
               next_attempt_at = coalesce($5, next_attempt_at),
               payload = case when $6 = 1 then payload else $7 end,
               locked_until = 0, updated_at = $8, last_outcome = $9, last_provider = $10,
               last_error = $11, settle_count = settle_count + 1
             where id = $1",
        )
        .text(id.to_string())
        .text(status.to_string())
        .text(channel.map(str::to_string))
        .int(super::flag(fallback_cleared))
        .int(next_attempt_at)
        .int(super::flag(payload_kept))
        .blob(Vec::new())
        .int(now)
        .text(kind.to_string())
        .text(provider.to_string())
        .text(detail.map(str::to_string))
    }

    /// Messages waiting to be sent (for readiness and metrics).
    pub async fn pending_deliveries(&self) -> Result<i64, Error> {
        let (n,): (i64,) =
            Statement::new("select count(*) from deliveries where status = 'pending'")
                .fetch_one(&self.read)
                .await?;
        Ok(n)
    }

    /// Drops settled messages older than `before`.
    pub async fn prune_deliveries(&self, before: i64) -> Result<u64, Error> {
        let done = Statement::new(
            "delete from deliveries where status in ('sent', 'failed') and updated_at < $1",
        )
        .bind(before)
        .execute(&self.write)
        .await?;
        Ok(done)
    }
}
