//! HTTP providers for SMS and voice: a generic JSON webhook, tyntec and Twilio.

use std::fmt;

use async_trait::async_trait;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::{Channel, DeliveryError, Message, Provider, Receipt};

/// Provider answers are small; anything past this is not read, so a misbehaving endpoint cannot
/// make us buffer an unbounded body.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Longest provider error detail carried into a `DeliveryError`.
const MAX_DETAIL_CHARS: usize = 200;

/// Posts every message as JSON to one configured URL, for operators who bridge to their own
/// gateway.
pub struct WebhookProvider {
    url: String,
    client: reqwest::Client,
}

impl WebhookProvider {
    pub fn new(url: String, client: reqwest::Client) -> WebhookProvider {
        WebhookProvider { url, client }
    }
}

impl fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a token in its userinfo or query string.
        f.debug_struct("WebhookProvider")
            .field("url", &redacted_url(&self.url))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for WebhookProvider {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let body = json!({
            "channel": message.channel.as_str(),
            "to": message.to,
            "text": message.text,
            "sender": message.sender,
            "language": message.language,
        });
        let request = self.client.post(&self.url).json(&body);
        let receipt = deliver(self.name(), request, &["messageId", "id"]).await?;
        log_accepted(self.name(), message, &receipt);
        Ok(receipt)
    }
}

/// tyntec's v1 SMS and text-to-speech voice APIs.
pub struct TyntecSmsProvider {
    base_url: String,
    api_key: String,
    client: reqwest::Client,
}

impl TyntecSmsProvider {
    pub fn new(base_url: String, api_key: String, client: reqwest::Client) -> TyntecSmsProvider {
        TyntecSmsProvider {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            client,
        }
    }
}

impl fmt::Debug for TyntecSmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TyntecSmsProvider")
            .field("base_url", &redacted_url(&self.base_url))
            .field("api_key", &"***")
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for TyntecSmsProvider {
    fn name(&self) -> &'static str {
        "tyntec"
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let (path, body) = match message.channel {
            Channel::Sms => (
                "/messaging/v1/sms",
                json!({
                    "to": message.to,
                    "from": message.sender.as_deref().unwrap_or("Keyhaven"),
                    "message": message.text,
                }),
            ),
            Channel::Voice => (
                "/voice/v1/tts",
                json!({
                    "to": message.to,
                    "from": message.sender,
                    "message": message.text,
                    "language": message.language.as_deref().unwrap_or("en"),
                }),
            ),
            Channel::Email => return Err(unsupported_channel(self.name(), message.channel)),
        };
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("apikey", &self.api_key)
            .json(&body);
        let receipt = deliver(self.name(), request, &["requestId"]).await?;
        log_accepted(self.name(), message, &receipt);
        Ok(receipt)
    }
}

/// Twilio's Messages API for SMS and Calls API (inline TwiML) for voice.
pub struct TwilioProvider {
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    client: reqwest::Client,
}

impl TwilioProvider {
    pub fn new(
        base_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
        client: reqwest::Client,
    ) -> TwilioProvider {
        TwilioProvider {
            base_url: base_url.trim_end_matches('/').to_owned(),
            account_sid,
            auth_token,
            from,
            client,
        }
    }

    fn endpoint(&self, resource: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{resource}",
            self.base_url, self.account_sid
        )
    }
}

impl fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioProvider")
            .field("base_url", &redacted_url(&self.base_url))
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"***")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        let request = match message.channel {
            Channel::Sms => {
                // A per-message sender only replaces the account number when Twilio can use it
                // as a sender: a phone number, a short code or an alphanumeric sender id.
                let from = match message.sender.as_deref() {
                    Some(sender) if is_twilio_sender(sender) => sender,
                    _ => self.from.as_str(),
                };
                self.client.post(self.endpoint("Messages.json")).form(&[
                    ("To", message.to.as_str()),
                    ("From", from),
                    ("Body", message.text.as_str()),
                ])
            }
            Channel::Voice => {
                let twiml = format!(
                    "<Response><Say language=\"{}\">{}</Say></Response>",
                    xml_escape(message.language.as_deref().unwrap_or("en")),
                    xml_escape(&message.text),
                );
                self.client.post(self.endpoint("Calls.json")).form(&[
                    ("To", message.to.as_str()),
                    ("From", self.from.as_str()),
                    ("Twiml", twiml.as_str()),
                ])
            }
            Channel::Email => return Err(unsupported_channel(self.name(), message.channel)),
        };
        let request = request.basic_auth(&self.account_sid, Some(&self.auth_token));
        let receipt = deliver(self.name(), request, &["sid"]).await?;
        log_accepted(self.name(), message, &receipt);
        Ok(receipt)
    }
}

/// A phone number (`+` and digits), a short code, or an alphanumeric sender id of at most 11
/// letters, digits and spaces with at least one letter.
fn is_twilio_sender(sender: &str) -> bool {
    let digits = sender.strip_prefix('+').unwrap_or(sender);
    let is_number = (3..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    let is_alphanumeric = (1..=11).contains(&sender.len())
        && sender
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && sender.bytes().any(|b| b.is_ascii_alphabetic());
    is_number || is_alphanumeric
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

fn unsupported_channel(provider: &str, channel: Channel) -> DeliveryError {
    DeliveryError::Rejected(format!("{provider} does not deliver {channel} messages"))
}

fn log_accepted(provider: &str, message: &Message, receipt: &Receipt) {
    tracing::info!(
        provider,
        channel = %message.channel,
        to = %super::masked(&message.to),
        reference = %message.reference,
        provider_message_id = receipt.provider_message_id.as_deref(),
        "message accepted by provider"
    );
}

/// Sends the request and classifies the answer: 2xx is accepted, 4xx other than 408 and 429 is
/// a refusal of this message, anything else is worth retrying.
async fn deliver(
    provider: &str,
    request: RequestBuilder,
    id_fields: &[&str],
) -> Result<Receipt, DeliveryError> {
    let mut response = request
        .send()
        .await
        .map_err(|err| DeliveryError::Unavailable(format!("{provider}: {}", error_chain(err))))?;
    let status = response.status();

    let mut body = Vec::new();
    // A body that breaks off is only missing detail; the status already decided the outcome.
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();

    if status.is_success() {
        return Ok(Receipt {
            provider_message_id: json.as_ref().and_then(|v| string_field(v, id_fields)),
        });
    }

    let detail = json
        .as_ref()
        .and_then(error_detail)
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let reason = format!("{provider} answered {}{detail}", status_text(status));
    if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Err(DeliveryError::Rejected(reason))
    } else {
        Err(DeliveryError::Unavailable(reason))
    }
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The first of `fields` that holds a string or a number.
fn string_field(value: &Value, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|field| match value.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A short human-readable reason from a provider's error body. Only named fields are used, never
/// the raw body, since a provider could echo the request and with it the code.
fn error_detail(value: &Value) -> Option<String> {
    let text = ["detail", "message", "title", "error", "error_description"]
        .iter()
        .find_map(|field| match value.get(field)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Object(inner) => inner
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })?;
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect();
    let code = value
        .get("code")
        .filter(|c| c.is_number() || c.is_string())
        .map(|c| match c {
            Value::String(s) => format!(" (code {s})"),
            other => format!(" (code {other})"),
        })
        .unwrap_or_default();
    Some(format!("{}{code}", text.trim()))
}

/// The error and its causes, without the request URL (it may hold a token).
fn error_chain(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let err = err.without_url();
    let mut text = format!("{kind}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Scheme, host, port and path of a URL, without userinfo or query.
fn redacted_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}{}", url.scheme(), url.path()),
                None => format!("{}://{host}{}", url.scheme(), url.path()),
            }
        }
        Err(_) => "<invalid url>".to_owned(),
    }
}

#[cfg(test)]
mod tests;
