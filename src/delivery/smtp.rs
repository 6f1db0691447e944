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
    /// `url` is `smtp://[user:pass@]host[:port][?tls=starttls|opportunistic]` (port 25 when
    /// plain, 587 with STARTTLS) or `smtps://[user:pass@]host[:port]` (port 465); `from` is a
    /// mailbox such as `Keyhaven <no-reply@example.com>` or a bare address.
    pub fn from_url(url: &str, from: &str) -> Result<SmtpProvider, String> {
        // Url's errors do not repeat the input, so the password cannot leak through them.
        let url = Url::parse(url).map_err(|err| format!("invalid SMTP URL: {err}"))?;
        let tls_param = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let (tls, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None | Some("none")) => (TlsMode::None, 25),
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
        let host = match url.host() {
            Some(Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(Host::Ipv4(addr)) => addr.to_string(),
            Some(Host::Ipv6(addr)) => addr.to_string(),
            _ => return Err("SMTP URL has no host".to_owned()),
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
            to = %message.to,
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
pub(crate) mod test_smtp {
    use std::{
        net::SocketAddr,
        sync::{Arc, Mutex},
    };

    use base64::Engine;
    use tokio::{
        io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
        net::{TcpListener, TcpStream},
        task::JoinHandle,
    };

    /// Reply lines (without CRLF) for the steps a test may want to fail.
    #[derive(Debug, Clone)]
    pub(crate) struct Replies {
        pub rcpt: String,
        pub data_end: String,
    }

    impl Default for Replies {
        fn default() -> Self {
            Replies {
                rcpt: "250 2.1.5 Ok".to_owned(),
                data_end: "250 2.0.0 Ok: queued".to_owned(),
            }
        }
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub(crate) struct ReceivedMail {
        /// Reverse path from `MAIL FROM`, without angle brackets.
        pub mail_from: String,
        /// Accepted `RCPT TO` paths, without angle brackets.
        pub rcpt_to: Vec<String>,
        /// The DATA section with dot-stuffing undone, CRLF line ends kept.
        pub data: String,
        /// User and password from `AUTH PLAIN` on this connection.
        pub auth: Option<(String, String)>,
    }

    pub(crate) struct TestSmtpServer {
        addr: SocketAddr,
        mails: Arc<Mutex<Vec<ReceivedMail>>>,
        task: JoinHandle<()>,
    }

    impl TestSmtpServer {
        pub(crate) async fn start() -> TestSmtpServer {
            TestSmtpServer::start_with(Replies::default()).await
        }

        pub(crate) async fn start_with(replies: Replies) -> TestSmtpServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mails = Arc::new(Mutex::new(Vec::new()));
            let task_mails = Arc::clone(&mails);
            let task = tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let mails = Arc::clone(&task_mails);
                    let replies = replies.clone();
                    tokio::spawn(async move {
                        // A client that hangs up mid-session is not the server's failure.
                        let _ = serve(socket, &replies, &mails).await;
                    });
                }
            });
            TestSmtpServer { addr, mails, task }
        }

        pub(crate) fn addr(&self) -> SocketAddr {
            self.addr
        }

        /// `smtp://127.0.0.1:PORT`, plain text.
        pub(crate) fn url(&self) -> String {
            format!("smtp://{}", self.addr)
        }

        /// Mails accepted so far; each is recorded before the final 250 goes out.
        pub(crate) fn mails(&self) -> Vec<ReceivedMail> {
            self.mails.lock().unwrap().clone()
        }
    }

    impl Drop for TestSmtpServer {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve(
        socket: TcpStream,
        replies: &Replies,
        mails: &Mutex<Vec<ReceivedMail>>,
    ) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut reader = BufReader::new(read);
        let mut auth = None;
        let mut mail = ReceivedMail::default();
        write.write_all(b"220 test.local ESMTP\r\n").await?;

        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end_matches(['\r', '\n']);
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let answer = match verb.as_str() {
                "EHLO" => {
                    "250-test.local\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN".to_owned()
                }
                "HELO" | "NOOP" => "250 Ok".to_owned(),
                "AUTH" => {
                    let mut words = command.split_whitespace().skip(1);
                    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                    let initial = match words.next() {
                        Some(initial) => initial.to_owned(),
                        None if mechanism == "PLAIN" => {
                            write.write_all(b"334 \r\n").await?;
                            let mut response = String::new();
                            reader.read_line(&mut response).await?;
                            response
                        }
                        None => String::new(),
                    };
                    match decode_plain(&initial).filter(|_| mechanism == "PLAIN") {
                        Some(credentials) => {
                            auth = Some(credentials);
                            "235 2.7.0 Authentication successful".to_owned()
                        }
                        None => "535 5.7.8 Authentication failed".to_owned(),
                    }
                }
                "MAIL" => {
                    mail = ReceivedMail {
                        mail_from: path_argument(command),
                        auth: auth.clone(),
                        ..ReceivedMail::default()
                    };
                    "250 2.1.0 Ok".to_owned()
                }
                "RCPT" => {
                    if replies.rcpt.starts_with('2') {
                        mail.rcpt_to.push(path_argument(command));
                    }
                    replies.rcpt.clone()
                }
                "DATA" => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    loop {
                        let mut data_line = String::new();
                        if reader.read_line(&mut data_line).await? == 0 {
                            return Ok(());
                        }
                        if data_line == ".\r\n" {
                            break;
                        }
                        let unstuffed = data_line.strip_prefix('.').unwrap_or(&data_line);
                        data.push_str(unstuffed);
                    }
                    mail.data = data;
                    if replies.data_end.starts_with('2') {
                        mails.lock().unwrap().push(std::mem::take(&mut mail));
                    }
                    replies.data_end.clone()
                }
                "RSET" => {
                    mail = ReceivedMail::default();
                    "250 2.0.0 Ok".to_owned()
                }
                "QUIT" => {
                    write.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => "502 5.5.2 Command not recognized".to_owned(),
            };
            write.write_all(format!("{answer}\r\n").as_bytes()).await?;
        }
    }

    /// The address in `MAIL FROM:<a@b> PARAMS` or `RCPT TO:<a@b>`.
    fn path_argument(command: &str) -> String {
        let after_colon = command.split_once(':').map(|(_, rest)| rest).unwrap_or("");
        let path = after_colon.split_whitespace().next().unwrap_or("");
        path.trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    }

    fn decode_plain(b64: &str) -> Option<(String, String)> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let mut parts = raw.split(|&b| b == 0);
        let _authzid = parts.next()?;
        let user = String::from_utf8(parts.next()?.to_vec()).ok()?;
        let pass = String::from_utf8(parts.next()?.to_vec()).ok()?;
        Some((user, pass))
    }
}

#[cfg(test)]
mod tests {
    use super::test_smtp::{Replies, TestSmtpServer};
    use super::*;

    const FROM: &str = "Keyhaven <no-reply@example.com>";

    fn email(to: &str, text: &str) -> Message {
        Message {
            channel: Channel::Email,
            to: to.to_owned(),
            text: text.to_owned(),
            subject: None,
            sender: None,
            language: None,
            reference: "ml-1".to_owned(),
        }
    }

    #[tokio::test]
    async fn sends_plain_text_mail_with_default_subject() {
        let server = TestSmtpServer::start().await;
        let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

        let receipt = provider
            .send(&email("user@example.org", "Your code is 123456."))
            .await
            .unwrap();

        assert_eq!(provider.name(), "smtp");
        let mails = server.mails();
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.mail_from, "no-reply@example.com");
        assert_eq!(mail.rcpt_to, ["user@example.org"]);
        assert_eq!(mail.auth, None);
        let headers_end = mail.data.find("\r\n\r\n").unwrap();
        let (headers, body) = mail.data.split_at(headers_end);
        assert!(
            headers.contains("From: Keyhaven <no-reply@example.com>\r\n"),
            "{headers}"
        );
        assert!(headers.contains("To: user@example.org\r\n"), "{headers}");
        assert!(
            headers.contains("Subject: Your verification code\r\n"),
            "{headers}"
        );
        assert!(
            headers.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{headers}"
        );
        assert_eq!(body.trim(), "Your code is 123456.");
        let id = receipt.provider_message_id.unwrap();
        assert!(
            headers.contains(&format!("Message-ID: <{id}>")),
            "{headers}"
        );
    }

    #[tokio::test]
    async fn uses_message_subject_for_each_mail() {
        let server = TestSmtpServer::start().await;
        let provider = SmtpProvider::from_url(&server.url(), "no-reply@example.com").unwrap();

        for i in 0..3 {
            let message = Message {
                subject: Some(format!("Sign in link {i}")),
                ..email(
                    &format!("Name <user{i}@example.org>"),
                    "https://example.com/x?t=1",
                )
            };
            provider.send(&message).await.unwrap();
        }

        let mails = server.mails();
        assert_eq!(mails.len(), 3);
        for (i, mail) in mails.iter().enumerate() {
            assert_eq!(mail.rcpt_to, [format!("user{i}@example.org")]);
            assert!(mail
                .data
                .contains(&format!("Subject: Sign in link {i}\r\n")));
            assert!(mail.data.contains("From: no-reply@example.com\r\n"));
            assert!(mail.data.contains("https://example.com/x?t=1"));
        }
    }

    #[tokio::test]
    async fn authenticates_with_percent_decoded_userinfo() {
        let server = TestSmtpServer::start().await;
        let url = format!("smtp://us%40er:p%3Ass%20w+rd@{}", server.addr());
        let provider = SmtpProvider::from_url(&url, FROM).unwrap();

        provider
            .send(&email("user@example.org", "hi"))
            .await
            .unwrap();

        let mails = server.mails();
        assert_eq!(mails.len(), 1);
        assert_eq!(
            mails[0].auth,
            Some(("us@er".to_owned(), "p:ss w+rd".to_owned()))
        );
    }

    #[tokio::test]
    async fn permanent_rcpt_refusal_is_rejected() {
        let server = TestSmtpServer::start_with(Replies {
            rcpt: "550 5.1.1 No such user".to_owned(),
            ..Replies::default()
        })
        .await;
        let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

        let result = provider.send(&email("nobody@example.org", "code 1")).await;

        match result {
            Err(DeliveryError::Rejected(reason)) => {
                assert!(reason.contains("550"), "{reason}");
                assert!(!reason.contains("code 1"), "{reason}");
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
        assert!(server.mails().is_empty());
    }

    #[tokio::test]
    async fn transient_refusal_is_unavailable() {
        let server = TestSmtpServer::start_with(Replies {
            data_end: "451 4.3.0 Try again later".to_owned(),
            ..Replies::default()
        })
        .await;
        let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

        let result = provider.send(&email("user@example.org", "code 1")).await;

        assert!(
            matches!(&result, Err(DeliveryError::Unavailable(r)) if r.contains("451")),
            "{result:?}"
        );
        assert!(server.mails().is_empty());
    }

    #[tokio::test]
    async fn closed_port_is_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let provider = SmtpProvider::from_url(&format!("smtp://{addr}"), FROM).unwrap();

        let result = provider.send(&email("user@example.org", "x")).await;

        assert!(
            matches!(result, Err(DeliveryError::Unavailable(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn required_starttls_is_not_skipped() {
        // The test server does not offer STARTTLS, so nothing may be sent in plain text.
        let server = TestSmtpServer::start().await;
        let url = format!("smtp://{}?tls=starttls", server.addr());
        let provider = SmtpProvider::from_url(&url, FROM).unwrap();

        let result = provider.send(&email("user@example.org", "x")).await;

        assert!(
            matches!(result, Err(DeliveryError::Unavailable(_))),
            "{result:?}"
        );
        assert!(server.mails().is_empty());
    }

    #[tokio::test]
    async fn opportunistic_tls_falls_back_to_plain_text() {
        let server = TestSmtpServer::start().await;
        let url = format!("smtp://{}?tls=opportunistic", server.addr());
        let provider = SmtpProvider::from_url(&url, FROM).unwrap();

        provider
            .send(&email("user@example.org", "x"))
            .await
            .unwrap();

        assert_eq!(server.mails().len(), 1);
    }

    #[tokio::test]
    async fn invalid_recipient_is_rejected_without_connecting() {
        let server = TestSmtpServer::start().await;
        let provider = SmtpProvider::from_url(&server.url(), FROM).unwrap();

        for to in ["not an address", "", "a@b@c"] {
            let result = provider.send(&email(to, "x")).await;
            assert!(
                matches!(result, Err(DeliveryError::Rejected(_))),
                "{to}: {result:?}"
            );
        }
        let sms = Message {
            channel: Channel::Sms,
            ..email("user@example.org", "x")
        };
        assert!(matches!(
            provider.send(&sms).await,
            Err(DeliveryError::Rejected(_))
        ));
        assert!(server.mails().is_empty());
    }

    #[test]
    fn parses_url_forms() {
        let plain = SmtpProvider::from_url("smtp://mail.local:2525", FROM).unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("mail.local", 2525, TlsMode::None)
        );
        assert_eq!(plain.username, None);

        let default_plain = SmtpProvider::from_url("smtp://mail.local", FROM).unwrap();
        assert_eq!(default_plain.port, 25);

        let starttls = SmtpProvider::from_url("smtp://u:p@mail.local?tls=starttls", FROM).unwrap();
        assert_eq!((starttls.port, starttls.tls), (587, TlsMode::StartTls));
        assert_eq!(starttls.username.as_deref(), Some("u"));

        let opportunistic =
            SmtpProvider::from_url("smtp://mail.local:25?tls=opportunistic", FROM).unwrap();
        assert_eq!(
            (opportunistic.port, opportunistic.tls),
            (25, TlsMode::Opportunistic)
        );

        let implicit = SmtpProvider::from_url("smtps://user:pw@smtp.example.com", FROM).unwrap();
        assert_eq!(
            (implicit.host.as_str(), implicit.port, implicit.tls),
            ("smtp.example.com", 465, TlsMode::Implicit)
        );

        let implicit_port = SmtpProvider::from_url("smtps://smtp.example.com:2465", FROM).unwrap();
        assert_eq!(implicit_port.port, 2465);

        let ipv6 = SmtpProvider::from_url("smtp://[::1]:2525", FROM).unwrap();
        assert_eq!(ipv6.host, "::1");
    }

    #[test]
    fn rejects_bad_urls_and_senders_without_leaking_the_password() {
        for url in [
            "http://u:s3cret@mail.local",
            "smtp://u:s3cret@mail.local?tls=bogus",
            "smtps://u:s3cret@mail.local?tls=starttls",
            "smtp://u:s3cret@",
            "smtp://u:%ZZs3cret@mail.local",
            "not a url s3cret",
        ] {
            let err = SmtpProvider::from_url(url, FROM).unwrap_err();
            assert!(!err.contains("s3cret"), "{url}: {err}");
        }
        for from in ["", "no-at-sign", "Name <broken"] {
            assert!(
                SmtpProvider::from_url("smtp://mail.local", from).is_err(),
                "{from}"
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let provider =
            SmtpProvider::from_url("smtps://user:s3cret@smtp.example.com", FROM).unwrap();
        let text = format!("{provider:?}");
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("smtp.example.com"), "{text}");
        assert!(text.contains("***"), "{text}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2F").unwrap(), "a b+c/");
        assert_eq!(percent_decode("%C3%A4").unwrap(), "ä");
        assert!(percent_decode("%2").is_err());
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%FF").is_err());
    }
}
