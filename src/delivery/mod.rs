//! Delivery of SMS, voice calls and email: the provider interface, the provider set built from
//! configuration, and the durable outbox worker that drives them.

mod http_sms;
mod log;
mod smtp;
pub mod worker;

use std::{fmt, sync::Arc, time::Duration};

pub use crate::domain::Channel;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use http_sms::{TwilioProvider, TyntecSmsProvider, WebhookProvider};
pub use log::LogProvider;
pub use smtp::SmtpProvider;

/// One message, rendered and ready for a provider. `text` may carry a one-time code, so this
/// type never prints it in `Debug`.
#[derive(Clone)]
pub struct Message {
    pub channel: Channel,
    /// E.164 number (`+4989...`) for SMS/voice, an email address for email.
    pub to: String,
    pub text: String,
    /// Email subject; unused for SMS and voice.
    pub subject: Option<String>,
    /// SMS sender id or voice caller id.
    pub sender: Option<String>,
    /// ISO 639-1 language of `text`, when known.
    pub language: Option<String>,
    /// What the message is about (an OTP id, a magic-link id): written to the `log` provider's
    /// file so a developer can match messages to requests.
    pub reference: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel)
            .field("to", &self.to)
            .field("reference", &self.reference)
            .field("text", &"***")
            .finish()
    }
}

/// What a provider reported for an accepted message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The provider's own message id, when it returns one.
    pub provider_message_id: Option<String>,
}

/// Why a provider did not take a message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// The provider refused this message (a 4xx, an invalid recipient): retrying the same
    /// channel will not help, but a fallback channel may.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The provider could not be reached or failed (timeout, 5xx, connection refused): worth
    /// retrying later.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A way to send messages of one or more channels.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short stable name for events and metrics (`log`, `webhook`, `tyntec`, `twilio`, `smtp`).
    fn name(&self) -> &'static str;
    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError>;
}

/// The provider for each channel, chosen from configuration at start.
#[derive(Clone)]
pub struct Providers {
    pub sms: Arc<dyn Provider>,
    pub voice: Arc<dyn Provider>,
    pub email: Arc<dyn Provider>,
    /// Upper bound for one provider call.
    pub timeout: Duration,
}

impl Providers {
    pub fn for_channel(&self, channel: Channel) -> &Arc<dyn Provider> {
        match channel {
            Channel::Sms => &self.sms,
            Channel::Voice => &self.voice,
            Channel::Email => &self.email,
        }
    }
}

impl Providers {
    /// Builds the providers the configuration names; fails on a missing URL or credential.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Providers> {
        let timeout = Duration::from_secs(config.delivery_timeout_seconds.max(1));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        let outbox_log = Arc::new(LogProvider::new(config.data_dir.join("outbox.log")));
        let phone = |kind: SmsProviderKind| -> anyhow::Result<Arc<dyn Provider>> {
            Ok(match kind {
                SmsProviderKind::Log => outbox_log.clone(),
                SmsProviderKind::Webhook => Arc::new(WebhookProvider::new(
                    config
                        .sms_webhook_url
                        .clone()
                        .ok_or_else(|| anyhow::anyhow!("KEYHAVEN_SMS_WEBHOOK_URL is not set"))?,
                    client.clone(),
                )),
                SmsProviderKind::Tyntec => Arc::new(TyntecSmsProvider::new(
                    config.tyntec_base_url.clone(),
                    config
                        .tyntec_api_key
                        .as_ref()
                        .ok_or_else(|| anyhow::anyhow!("KEYHAVEN_TYNTEC_API_KEY is not set"))?
                        .expose()
                        .to_string(),
                    client.clone(),
                )),
                SmsProviderKind::Twilio => Arc::new(TwilioProvider::new(
                    config.twilio_base_url.clone(),
                    config
                        .twilio_account_sid
                        .clone()
                        .ok_or_else(|| anyhow::anyhow!("KEYHAVEN_TWILIO_ACCOUNT_SID is not set"))?,
                    config
                        .twilio_auth_token
                        .as_ref()
                        .ok_or_else(|| anyhow::anyhow!("KEYHAVEN_TWILIO_AUTH_TOKEN is not set"))?
                        .expose()
                        .to_string(),
                    config
                        .twilio_from
                        .clone()
                        .ok_or_else(|| anyhow::anyhow!("KEYHAVEN_TWILIO_FROM is not set"))?,
                    client.clone(),
                )),
            })
        };
        let email: Arc<dyn Provider> = match &config.smtp_url {
            Some(url) => Arc::new(
                SmtpProvider::from_url(url.expose(), &config.email_from)
                    .map_err(|e| anyhow::anyhow!("KEYHAVEN_SMTP_URL: {e}"))?,
            ),
            None => outbox_log.clone(),
        };
        Ok(Providers {
            sms: phone(config.sms_provider)?,
            voice: phone(config.voice_provider())?,
            email,
            timeout,
        })
    }

    /// True when any channel writes to the development log instead of a real provider.
    pub fn uses_log(&self) -> bool {
        [&self.sms, &self.voice, &self.email]
            .iter()
            .any(|p| p.name() == "log")
    }
}

/// What a queued message carries, sealed in the outbox row.
#[derive(Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub text: String,
    /// Text for the fallback channel (AUTO: the voice wording).
    pub fallback_text: Option<String>,
    pub sender: Option<String>,
    pub caller: Option<String>,
    pub language: Option<String>,
    pub subject: Option<String>,
}

use crate::config::SmsProviderKind;
use crate::{
    crypto::ServerKeys,
    domain::now_ms,
    error::Error,
    storage::{DeliveryRow, Filtered, Store, Unit},
};

/// A message to put into the outbox.
#[derive(Clone)]
pub struct Outgoing<'a> {
    pub otp_id: Option<&'a str>,
    pub channel: Channel,
    /// Channel to hand over to when `channel` fails.
    pub fallback: Option<Channel>,
    pub recipient: &'a str,
    pub envelope: Envelope,
}

/// This node's outbox: messages commit with the rows they are about, sealed with the server
/// key and already claimed by this node, and are handed to its worker in memory at commit (no
/// claim round trip). Should the node die first, the claim runs out and any node's worker
/// sends them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    store: Store,
    keys: ServerKeys,
    handoff: Arc<Handoff>,
}

impl Outbox {
    pub fn new(store: Store, keys: ServerKeys) -> Outbox {
        Outbox {
            store,
            keys,
            handoff: Arc::default(),
        }
    }

    /// Commits `unit` and, when given, `message` with it (in a chain: when the chain
    /// applied), then hands the message to this node's worker. True when the unit applied.
    pub async fn commit(&self, unit: Unit, message: Option<Outgoing<'_>>) -> Result<bool, Error> {
        let Some(message) = message else {
            return self.store.commit(unit).await;
        };
        let (insert, row) = self.queue(&message, now_ms())?;
        let applied = self.store.commit(unit.then(insert)).await?;
        if applied {
            self.handoff.push(row);
        }
        Ok(applied)
    }

    /// The outbox row of `message`, and the row its worker gets after the commit.
    fn queue(&self, message: &Outgoing<'_>, now: i64) -> Result<(Filtered, DeliveryRow), Error> {
        let id = crate::crypto::row_uuid();
        let json =
            serde_json::to_string(&message.envelope).map_err(|e| Error::Internal(e.into()))?;
        let row = DeliveryRow {
            payload: self.keys.seal(&id, &json)?,
            id,
            otp_id: message.otp_id.map(str::to_string),
            channel: message.channel,
            fallback_channel: message.fallback,
            recipient: message.recipient.to_string(),
            attempts: 1,
        };
        Ok((Store::insert_delivery(&row, now, now + LEASE_MS), row))
    }
}

/// How long a claim holds a message before another node may take it over.
pub const LEASE_MS: i64 = 60_000;

/// Messages committed on this node, waiting for its worker.
#[derive(Debug, Default)]
struct Handoff {
    rows: std::sync::Mutex<Vec<DeliveryRow>>,
    wake: tokio::sync::Notify,
}

/// Beyond this many waiting rows, new ones are left to the lease (the worker is far behind).
const HANDOFF_LIMIT: usize = 10_000;

impl Handoff {
    /// Gives a committed message to the worker.
    fn push(&self, row: DeliveryRow) {
        {
            let mut rows = self.lock();
            if rows.len() >= HANDOFF_LIMIT {
                return;
            }
            rows.push(row);
        }
        self.wake.notify_one();
    }

    async fn notified(&self) {
        self.wake.notified().await;
    }

    fn take(&self) -> Vec<DeliveryRow> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<DeliveryRow>> {
        self.rows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A recipient as logs show it: enough to tell messages apart, not enough to contact anyone.
/// `+4915123456789` → `+49151*****789`, `ann.smith@example.com` → `a***@example.com`.
pub fn masked(to: &str) -> String {
    match to.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => {
            let chars: Vec<char> = to.chars().collect();
            if chars.len() <= 9 {
                return "*".repeat(chars.len());
            }
            let (head, tail) = (&chars[..6], &chars[chars.len() - 3..]);
            let hidden = "*".repeat(chars.len() - 9);
            format!(
                "{}{hidden}{}",
                String::from_iter(head),
                String::from_iter(tail)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn recipients_are_masked_for_logs() {
        assert_eq!(masked("+4915123456789"), "+49151*****789");
        assert_eq!(masked("ann.smith@example.com"), "a***@example.com");
        assert_eq!(masked("+1234"), "*****");
        assert_eq!(masked("@example.com"), "***@example.com");
    }
}
