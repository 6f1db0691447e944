//! Tests of the HTTP SMS and voice providers against a local HTTP receiver.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, Method, StatusCode as AxumStatus, Uri},
    response::{IntoResponse, Response},
    Router,
};

use super::*;

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
struct ReceiverState {
    requests: Arc<Mutex<Vec<Recorded>>>,
    status: u16,
    body: String,
}

/// A real HTTP server on loopback that records each request and answers with a fixed status
/// and JSON body.
struct Receiver {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Receiver {
    async fn start(status: u16, body: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = ReceiverState {
            requests: Arc::clone(&requests),
            status,
            body: body.to_owned(),
        };
        let app = Router::new().fallback(record).with_state(state);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            base_url: format!("http://{addr}"),
            requests,
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn only_request(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().unwrap()
    }
}

async fn record(
    State(state): State<ReceiverState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
    });
    (
        AxumStatus::from_u16(state.status).unwrap(),
        [("content-type", "application/json")],
        state.body,
    )
        .into_response()
}

/// An address where nothing listens: bound once, then released.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn sms(text: &str) -> Message {
    Message {
        channel: Channel::Sms,
        to: "+4989123456".to_owned(),
        text: text.to_owned(),
        subject: None,
        sender: None,
        language: None,
        reference: "otp-1".to_owned(),
    }
}

fn voice(text: &str) -> Message {
    Message {
        channel: Channel::Voice,
        language: Some("de".to_owned()),
        ..sms(text)
    }
}

type Factory = fn(String) -> Box<dyn Provider>;

fn webhook_at(base: String) -> Box<dyn Provider> {
    Box::new(WebhookProvider::new(format!("{base}/hook"), client()))
}

fn tyntec_at(base: String) -> Box<dyn Provider> {
    Box::new(TyntecSmsProvider::new(base, "key-1".to_owned(), client()))
}

fn twilio_at(base: String) -> Box<dyn Provider> {
    Box::new(TwilioProvider::new(
        base,
        "AC123".to_owned(),
        "token-1".to_owned(),
        "+15005550006".to_owned(),
        client(),
    ))
}

const PROVIDERS: [(&str, Factory); 3] = [
    ("webhook", webhook_at),
    ("tyntec", tyntec_at),
    ("twilio", twilio_at),
];

async fn outcome(factory: Factory, status: u16, body: &str) -> Result<Receipt, DeliveryError> {
    let receiver = Receiver::start(status, body).await;
    let result = factory(receiver.base_url.clone())
        .send(&sms("code 1"))
        .await;
    assert_eq!(receiver.requests().len(), 1);
    result
}

#[tokio::test]
async fn webhook_posts_json_and_reads_message_id() {
    let receiver = Receiver::start(200, r#"{"messageId":"m-42"}"#).await;
    let provider = WebhookProvider::new(format!("{}/hook?t=1", receiver.base_url), client());
    let message = Message {
        sender: Some("Keyhaven".to_owned()),
        ..sms("Your code is 123456\nDo not share it")
    };

    let receipt = provider.send(&message).await.unwrap();

    assert_eq!(receipt.provider_message_id.as_deref(), Some("m-42"));
    assert_eq!(provider.name(), "webhook");
    let request = receiver.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook?t=1");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "channel": "sms",
            "to": "+4989123456",
            "text": "Your code is 123456\nDo not share it",
            "sender": "Keyhaven",
            "language": null,
        })
    );
}

#[tokio::test]
async fn webhook_sends_voice_and_email_with_their_channel() {
    let receiver = Receiver::start(202, r#"{"id":7}"#).await;
    let provider = WebhookProvider::new(receiver.base_url.clone(), client());

    let receipt = provider.send(&voice("eins zwei")).await.unwrap();
    assert_eq!(receipt.provider_message_id.as_deref(), Some("7"));
    let email = Message {
        channel: Channel::Email,
        to: "a@example.com".to_owned(),
        ..sms("hello")
    };
    provider.send(&email).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].json()["channel"], "voice");
    assert_eq!(requests[0].json()["language"], "de");
    assert_eq!(requests[1].json()["channel"], "email");
    assert_eq!(requests[1].json()["to"], "a@example.com");
}

#[tokio::test]
async fn webhook_without_json_answer_has_no_message_id() {
    let receiver = Receiver::start(204, "").await;
    let provider = WebhookProvider::new(receiver.base_url.clone(), client());
    let receipt = provider.send(&sms("x")).await.unwrap();
    assert_eq!(receipt, Receipt::default());
}

#[tokio::test]
async fn tyntec_sms_posts_v1_shape_with_api_key() {
    let receiver = Receiver::start(200, r#"{"requestId":"req-9"}"#).await;
    let provider =
        TyntecSmsProvider::new(format!("{}/", receiver.base_url), "key-1".into(), client());

    let receipt = provider.send(&sms("Your code is 654321")).await.unwrap();

    assert_eq!(receipt.provider_message_id.as_deref(), Some("req-9"));
    assert_eq!(provider.name(), "tyntec");
    let request = receiver.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/messaging/v1/sms");
    assert_eq!(request.header("apikey"), Some("key-1"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({"to": "+4989123456", "from": "Keyhaven", "message": "Your code is 654321"})
    );
}

#[tokio::test]
async fn tyntec_sms_uses_message_sender() {
    let receiver = Receiver::start(200, "{}").await;
    let provider = TyntecSmsProvider::new(receiver.base_url.clone(), "k".into(), client());
    let message = Message {
        sender: Some("ACME".to_owned()),
        ..sms("hi")
    };
    let receipt = provider.send(&message).await.unwrap();
    assert_eq!(receipt.provider_message_id, None);
    assert_eq!(receiver.only_request().json()["from"], "ACME");
}

#[tokio::test]
async fn tyntec_voice_posts_tts() {
    let receiver = Receiver::start(200, r#"{"requestId":"call-1"}"#).await;
    let provider = TyntecSmsProvider::new(receiver.base_url.clone(), "key-1".into(), client());

    provider.send(&voice("eins zwei drei")).await.unwrap();
    let english = Message {
        language: None,
        sender: Some("+4930111".to_owned()),
        ..voice("one")
    };
    provider.send(&english).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/voice/v1/tts");
    assert_eq!(requests[0].header("apikey"), Some("key-1"));
    assert_eq!(
        requests[0].json(),
        json!({"to": "+4989123456", "from": null, "message": "eins zwei drei", "language": "de"})
    );
    assert_eq!(
        requests[1].json(),
        json!({"to": "+4989123456", "from": "+4930111", "message": "one", "language": "en"})
    );
}

#[tokio::test]
async fn tyntec_and_twilio_refuse_email_without_a_request() {
    let receiver = Receiver::start(200, "{}").await;
    let email = Message {
        channel: Channel::Email,
        to: "a@example.com".to_owned(),
        ..sms("hello")
    };
    for factory in [tyntec_at as Factory, twilio_at] {
        let result = factory(receiver.base_url.clone()).send(&email).await;
        assert!(
            matches!(result, Err(DeliveryError::Rejected(_))),
            "{result:?}"
        );
    }
    assert!(receiver.requests().is_empty());
}

#[tokio::test]
async fn twilio_sms_posts_form_with_basic_auth() {
    let receiver = Receiver::start(201, r#"{"sid":"SM1","status":"queued"}"#).await;
    let provider = twilio_at(receiver.base_url.clone());

    let receipt = provider.send(&sms("Code: 111 & more")).await.unwrap();

    assert_eq!(receipt.provider_message_id.as_deref(), Some("SM1"));
    assert_eq!(provider.name(), "twilio");
    let request = receiver.only_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/2010-04-01/Accounts/AC123/Messages.json");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("AC123:token-1")
    assert_eq!(
        request.header("authorization"),
        Some("Basic QUMxMjM6dG9rZW4tMQ==")
    );
    assert_eq!(
        request.form(),
        vec![
            ("To".to_owned(), "+4989123456".to_owned()),
            ("From".to_owned(), "+15005550006".to_owned()),
            ("Body".to_owned(), "Code: 111 & more".to_owned()),
        ]
    );
}

#[tokio::test]
async fn twilio_sms_uses_usable_message_sender_only() {
    let receiver = Receiver::start(201, r#"{"sid":"SM2"}"#).await;
    let provider = twilio_at(receiver.base_url.clone());
    for sender in ["Keyhaven", "+4930123456", "not a valid sender!", ""] {
        let message = Message {
            sender: Some(sender.to_owned()),
            ..sms("x")
        };
        provider.send(&message).await.unwrap();
    }
    let froms: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.form().into_iter().find(|(k, _)| k == "From").unwrap().1)
        .collect();
    assert_eq!(
        froms,
        ["Keyhaven", "+4930123456", "+15005550006", "+15005550006"]
    );
}

#[tokio::test]
async fn twilio_voice_posts_escaped_twiml() {
    let receiver = Receiver::start(201, r#"{"sid":"CA1"}"#).await;
    let provider = twilio_at(receiver.base_url.clone());
    let message = Message {
        sender: Some("Other".to_owned()),
        ..voice("1 < 2 & \"3\"")
    };

    let receipt = provider.send(&message).await.unwrap();

    assert_eq!(receipt.provider_message_id.as_deref(), Some("CA1"));
    let request = receiver.only_request();
    assert_eq!(request.path, "/2010-04-01/Accounts/AC123/Calls.json");
    assert_eq!(
        request.form(),
        vec![
            ("To".to_owned(), "+4989123456".to_owned()),
            ("From".to_owned(), "+15005550006".to_owned()),
            (
                "Twiml".to_owned(),
                "<Response><Say language=\"de\">1 &lt; 2 &amp; &quot;3&quot;</Say></Response>"
                    .to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn status_200_is_accepted_by_every_provider() {
    for (name, factory) in PROVIDERS {
        let result = outcome(factory, 200, "{}").await;
        assert_eq!(result, Ok(Receipt::default()), "{name}");
    }
}

#[tokio::test]
async fn status_400_is_rejected_by_every_provider() {
    let body = r#"{"code":21211,"message":"The 'To' number is not valid."}"#;
    for (name, factory) in PROVIDERS {
        match outcome(factory, 400, body).await {
            Err(DeliveryError::Rejected(reason)) => {
                assert!(
                    reason.starts_with(&format!("{name} answered 400")),
                    "{reason}"
                );
                assert!(reason.contains("The 'To' number is not valid. (code 21211)"));
            }
            other => panic!("{name}: expected Rejected, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn status_503_408_and_429_are_unavailable_for_every_provider() {
    for status in [503, 408, 429] {
        for (name, factory) in PROVIDERS {
            match outcome(factory, status, "").await {
                Err(DeliveryError::Unavailable(reason)) => {
                    assert!(reason.contains(&status.to_string()), "{reason}")
                }
                other => panic!("{name} {status}: expected Unavailable, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn closed_port_is_unavailable_for_every_provider() {
    let base = closed_port_url().await;
    for (name, factory) in PROVIDERS {
        let result = factory(base.clone()).send(&sms("x")).await;
        assert!(
            matches!(&result, Err(DeliveryError::Unavailable(r)) if r.contains("connection failed")),
            "{name}: {result:?}"
        );
    }
}

#[tokio::test]
async fn silent_server_times_out_as_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and holds the connection without ever answering.
    let holder = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let provider = WebhookProvider::new(format!("http://{addr}/hook"), client);

    let result = provider.send(&sms("x")).await;

    holder.abort();
    assert!(
        matches!(&result, Err(DeliveryError::Unavailable(r)) if r.contains("timed out")),
        "{result:?}"
    );
}

#[tokio::test]
async fn errors_do_not_carry_the_url_or_the_text() {
    let base = closed_port_url().await;
    let provider = WebhookProvider::new(format!("{base}/hook?token=s3cret"), client());
    let err = provider.send(&sms("code 987654")).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains("987654"), "{text}");

    // A provider that echoes the request in an unnamed field does not leak it either.
    let receiver = Receiver::start(400, r#"{"echo":"code 987654"}"#).await;
    let provider = WebhookProvider::new(receiver.base_url.clone(), client());
    let err = provider.send(&sms("code 987654")).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Rejected("webhook answered 400 Bad Request".to_owned())
    );
}

#[test]
fn debug_hides_secrets() {
    let webhook =
        WebhookProvider::new("https://u:pw@hooks.example/x?token=s3cret".into(), client());
    let tyntec = TyntecSmsProvider::new("https://api.tyntec.com".into(), "s3cret".into(), client());
    let twilio = TwilioProvider::new(
        "https://api.twilio.com".into(),
        "AC1".into(),
        "s3cret".into(),
        "+1555".into(),
        client(),
    );
    for text in [
        format!("{webhook:?}"),
        format!("{tyntec:?}"),
        format!("{twilio:?}"),
    ] {
        assert!(!text.contains("s3cret"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
    assert!(format!("{webhook:?}").contains("https://hooks.example/x"));
}

#[test]
fn twilio_sender_rules() {
    for ok in ["+15005550006", "12345", "Keyhaven", "ACME Bank", "A1"] {
        assert!(is_twilio_sender(ok), "{ok}");
    }
    for bad in [
        "",
        "+",
        "12",
        "TwelveLetter",
        "Key-haven",
        "1234567890123456",
        "Käse",
    ] {
        assert!(!is_twilio_sender(bad), "{bad}");
    }
}
