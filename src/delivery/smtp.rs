//! Email delivery over SMTP, configured by one `smtp://` or `smtps://` URL.

use std::{fmt, sync::OnceLock};

use async_trait::async_trait;
use lettre::{
    message::{header::ContentType, Mailbox},
    transport::smtp::{
        authentication::Credentials,
        client::{Tls, TlsParameters},
        AsyncSmtpTransportBuilder,
    },
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};
use url::{Host, Url};

use super::{Channel, DeliveryError, Message, Provider, Receipt};

const DEFAULT_SUBJECT: &str = "Your verification code";

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain text throughout; for relays on the same host or a test server.
    None,
    /// STARTTLS when the server offers it, plain text otherwise.
    Opportunistic,
    /// STARTTLS or fail.
    StartTls,
    /// TLS from the first byte (`smtps`).
    Implicit,
}

pub struct SmtpProvider {
    host: String,
    port: u16,
    tls: TlsMode,
    username: Option<String>,
    from: Mailbox,
    builder: AsyncSmtpTransportBuilder,
    /// Built on first use: lettre's connection pool spawns its cleanup task at construction,
    /// which needs a running Tokio runtime that `from_url` may not have.
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

impl SmtpProvider {
    /// `url` is `smtp://[user:pass@]host[:port][?tls=starttls|opportunistic|none]` or
    /// `smtps://[user:pass@]host[:port]` (port 465). Without `tls=`, `smtp://` requires
    /// STARTTLS (port 587) unless the relay is on this host and takes no credentials (plain,
    /// port 25). `from` is a mailbox such as `Keyhaven <no-reply@example.com>` or a bare
    /// address.
    pub fn from_url(url: &str, from: &str) -> Result<SmtpProvider, String> {
        // Url's errors do not repeat the input, so the password cannot leak through them.
        let url = Url::parse(url).map_err(|err| format!("invalid SMTP URL: {err}"))?;
        let tls_param = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let host = match url.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(addr)) => addr.to_string(),
            Some(Host::Ipv6(addr)) => addr.to_string(),
            _ => return Err("SMTP URL has no host".to_owned()),
        };
        // Credentials and codes cross the network in clear only when asked for by `tls=none`;
        // a relay on this host without credentials needs no TLS.
        let local_and_anonymous = url.username().is_empty() && is_loopback(&host);
        let (tls, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) if local_and_anonymous => (TlsMode::None, 25),
            ("smtp", None) => (TlsMode::StartTls, 587),
            ("smtp", Some("none")) => (TlsMode::None, 25),
            ("smtp", Some("opportunistic")) => (TlsMode::Opportunistic, 587),
            ("smtp", Some("starttls" | "required")) => (TlsMode::StartTls, 587),
            ("smtps", None | Some("implicit")) => (TlsMode::Implicit, 465),
            ("smtp" | "smtps", Some(other)) => {
                return Err(format!(
                    "unsupported tls={other} for {}:// (expected starttls or opportunistic with smtp://)",
                    url.scheme()
                ))
            }
            (scheme, _) => {
                return Err(format!(
                    "unsupported SMTP URL scheme {scheme:?}: expected smtp or smtps"
                ))
            }
        };
        let port = url.port().unwrap_or(default_port);

        let from: Mailbox = from
            .parse()
            .map_err(|err| format!("invalid from address {from:?}: {err}"))?;

        let tls_parameters = || {
            TlsParameters::new(host.clone())
                .map_err(|err| format!("cannot set up TLS for {host}: {err}"))
        };
        let lettre_tls = match tls {
            TlsMode::None => Tls::None,
            TlsMode::Opportunistic => Tls::Opportunistic(tls_parameters()?),
            TlsMode::StartTls => Tls::Required(tls_parameters()?),
            TlsMode::Implicit => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(lettre_tls);

        let username = if url.username().is_empty() {
            None
        } else {
            let username = percent_decode(url.username())
                .map_err(|err| format!("invalid SMTP user name: {err}"))?;
            let password = percent_decode(url.password().unwrap_or(""))
                .map_err(|err| format!("invalid SMTP password: {err}"))?;
            builder = builder.credentials(Credentials::new(username.clone(), password));
            Some(username)
        };

        Ok(SmtpProvider {
            host,
            port,
            tls,
            username,
            from,
            builder,
            transport: OnceLock::new(),
        })
    }

    fn transport(&self) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.transport.get_or_init(|| self.builder.clone().build())
    }
}

/// `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Debug for SmtpProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpProvider")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.username.as_ref().map(|_| "***"))
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Provider for SmtpProvider {
    fn name(&self) -> &'static str {
        "smtp"
    }

    async fn send(&self, message: &Message) -> Result<Receipt, DeliveryError> {
        if message.channel != Channel::Email {
            return Err(DeliveryError::Rejected(format!(
                "smtp does not deliver {} messages",
                message.channel
            )));
        }
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|err| DeliveryError::Rejected(format!("invalid email recipient: {err}")))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.as_deref().unwrap_or(DEFAULT_SUBJECT))
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|err| DeliveryError::Rejected(format!("cannot build email: {err}")))?;
        let message_id = email.headers().get_raw("Message-ID").map(|id| {
            id.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        });

        self.transport().send(email).await.map_err(classify_error)?;

        tracing::info!(
            provider = "smtp",
            channel = %message.channel,
            to = %super::masked(&message.to),
            reference = %message.reference,
            "email accepted by SMTP relay"
        );
        Ok(Receipt {
            provider_message_id: message_id,
        })
    }
}

/// A permanent (5xx) answer refuses this message; everything else, from a 4xx to a refused
/// connection or a failed handshake, may pass on a later try.
fn classify_error(err: lettre::transport::smtp::Error) -> DeliveryError {
    if err.is_permanent() {
        DeliveryError::Rejected(format!("smtp relay refused the message: {err}"))
    } else {
        DeliveryError::Unavailable(format!("smtp relay unavailable: {}", error_chain(&err)))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // lettre's Display already appends its direct source.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Decodes `%XX` escapes in URL userinfo (where `+` is a literal plus, not a space).
fn percent_decode(input: &str) -> Result<String, String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|pair| pair.iter().all(u8::is_ascii_hexdigit))
                .and_then(|pair| std::str::from_utf8(pair).ok())
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| "bad percent escape".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding".to_owned())
}

/// A minimal SMTP server on loopback for tests: records each accepted mail and answers with
/// configurable replies.
#[cfg(test)]
pub(crate) mod test_smtp;

#[cfg(test)]
mod tests;
