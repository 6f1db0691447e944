//! Tests of the tyntec load flow against a local stand-in server.

use std::collections::HashMap;

use super::*;
use clap::Parser;
use rand::SeedableRng;

#[test]
fn extracts_the_code() {
    assert_eq!(extract_code("code 123456"), Some("123456"));
    assert_eq!(extract_code("code 004217\n"), Some("004217"));
    assert_eq!(extract_code("Your code 987654."), Some("987654"));
    assert_eq!(extract_code("code AB12CD please"), Some("AB12CD"));
    assert_eq!(extract_code("code "), None);
    assert_eq!(extract_code("no code here"), None);
    assert_eq!(extract_code("code 12-34"), None);
    assert_eq!(extract_code(""), None);
}

#[test]
fn numbers_are_valid_german_mobiles() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut prefixes = std::collections::HashSet::new();
    for _ in 0..500 {
        let number = random_mobile_number(&mut rng);
        assert_eq!(number.len(), 14, "{number}");
        assert!(number[1..].chars().all(|c| c.is_ascii_digit()), "{number}");
        prefixes.insert(number[..6].to_owned());
        let parsed = phonenumber::parse(None, &number).unwrap();
        assert!(parsed.is_valid(), "{number}");
        assert_eq!(
            parsed.number_type(&phonenumber::metadata::DATABASE),
            phonenumber::Type::Mobile,
            "{number}"
        );
    }
    assert_eq!(prefixes.len(), MOBILE_PREFIXES.len());
}

#[test]
fn builds_endpoints() {
    let base = parse_base("http://127.0.0.1:8080").unwrap();
    assert_eq!(
        endpoint(&base, &["2fa", "v1", "application", ""])
            .unwrap()
            .as_str(),
        "http://127.0.0.1:8080/2fa/v1/application/"
    );
    let prefixed = parse_base("https://example.test/auth/").unwrap();
    assert_eq!(
        endpoint(&prefixed, &["2fa", "v1", "otp", "a/b c", "check"])
            .unwrap()
            .as_str(),
        "https://example.test/auth/2fa/v1/otp/a%2Fb%20c/check"
    );
    assert!(parse_base("ftp://x").is_err());
    assert!(parse_base("not a url").is_err());
}

#[test]
fn send_query_encodes_the_plus() {
    let client = reqwest::Client::new();
    let request = client
        .post("http://127.0.0.1:8080/2fa/v1/otp")
        .query(&[("number", "+4915112345678"), ("via", "SMS")])
        .build()
        .unwrap();
    assert_eq!(
        request.url().query(),
        Some("number=%2B4915112345678&via=SMS")
    );
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: TyntecBenchArgs,
}

#[test]
fn arguments_and_defaults() {
    let cli = Cli::try_parse_from(["bench", "--key", "secret"]).unwrap();
    let a = cli.args;
    assert_eq!(a.bases, ["http://127.0.0.1:8080"]);
    assert_eq!(a.key, "secret");
    assert_eq!((a.concurrency, a.duration, a.warmup), (16, 10, 2));
    assert_eq!(a.receiver, "127.0.0.1:9099");
    assert!(!a.json);
    assert!(!format!("{a:?}").contains("secret"));

    assert!(Cli::try_parse_from(["bench"]).is_err());
    assert!(Cli::try_parse_from(["bench", "--key", "k", "--concurrency", "0"]).is_err());
    let cli = Cli::try_parse_from([
        "bench",
        "--key",
        "k",
        "--base",
        "http://h:1",
        "--concurrency",
        "4",
        "--duration",
        "3",
        "--warmup",
        "0",
        "--receiver",
        "127.0.0.1:0",
        "--json",
    ])
    .unwrap();
    assert_eq!(
        cli.args.bases,
        ["http://h:1"],
        "a given --base replaces the default"
    );
    assert_eq!(cli.args.concurrency, 4);
    assert_eq!(cli.args.warmup, 0);
    assert!(cli.args.json);

    let cli = Cli::try_parse_from([
        "bench",
        "--key",
        "k",
        "--base",
        "http://h:1",
        "--base",
        "http://h:2",
    ])
    .unwrap();
    assert_eq!(cli.args.bases, ["http://h:1", "http://h:2"]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A stand-in for the server under test: just enough of the tyntec 2FA API, delivering
/// codes through the webhook like `KEYHAVEN_SMS_PROVIDER=webhook`; every fifth send is
/// answered 429.
mod fake {
    use std::{
        collections::HashMap,
        sync::{Arc, Mutex},
    };

    use axum::{
        extract::{Path, Query, State},
        http::{HeaderMap, StatusCode},
        routing::{delete, post},
        Json, Router,
    };
    use serde_json::{json, Value};

    /// Clones share everything but `node`, so two of them stand for two nodes on one database.
    #[derive(Clone, Default)]
    pub struct Server {
        pub webhook: String,
        pub node: u8,
        pub codes: Arc<Mutex<HashMap<String, String>>>,
        pub sends: Arc<Mutex<u64>>,
        pub deleted: Arc<Mutex<Vec<String>>>,
        pub calls: Arc<Mutex<Vec<Call>>>,
    }

    /// (node, operation, application or OTP id) of one call.
    pub type Call = (u8, &'static str, String);

    impl Server {
        fn log(&self, operation: &'static str, id: &str) {
            let call = (self.node, operation, id.to_owned());
            self.calls.lock().unwrap().push(call);
        }
    }

    fn authorized(headers: &HeaderMap) -> bool {
        headers.get("apiKey").and_then(|v| v.to_str().ok()) == Some("k")
    }

    async fn create(
        State(server): State<Server>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        if !authorized(&headers) {
            return (StatusCode::UNAUTHORIZED, Json(json!({})));
        }
        server.log("create", "app-1");
        assert!(body["name"].as_str().unwrap().starts_with("bench-"));
        assert_eq!(body["template"]["en"], "code {{OTP}}");
        (StatusCode::OK, Json(json!({"applicationId": "app-1"})))
    }

    async fn send(
        State(server): State<Server>,
        headers: HeaderMap,
        Query(query): Query<HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        assert!(authorized(&headers));
        assert_eq!(query["applicationId"], "app-1");
        assert_eq!(query["via"], "SMS");
        let number = query["number"].clone();
        assert!(number.starts_with("+49"), "{number}");
        let n = {
            let mut sends = server.sends.lock().unwrap();
            *sends += 1;
            *sends
        };
        if n % 5 == 0 {
            return (StatusCode::TOO_MANY_REQUESTS, Json(json!({})));
        }
        let otp_id = format!("otp-{n}");
        server.log("send", &otp_id);
        let code = format!("{:06}", n * 7 % 1_000_000);
        server
            .codes
            .lock()
            .unwrap()
            .insert(otp_id.clone(), code.clone());
        let webhook = server.webhook.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(webhook)
                .json(
                    &json!({"channel": "sms", "to": number, "text": format!("code {code}"),
                              "sender": null, "language": "en"}),
                )
                .send()
                .await
                .unwrap();
        });
        (
            StatusCode::OK,
            Json(json!({"otpId": otp_id, "otpStatus": "ACTIVE"})),
        )
    }

    async fn check(
        State(server): State<Server>,
        Path(otp_id): Path<String>,
        Query(query): Query<HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        server.log("check", &otp_id);
        let codes = server.codes.lock().unwrap();
        if codes.get(&otp_id) == query.get("otpCode") {
            (StatusCode::ACCEPTED, Json(json!({"otpStatus": "VERIFIED"})))
        } else {
            (StatusCode::BAD_REQUEST, Json(json!({})))
        }
    }

    async fn remove(State(server): State<Server>, Path(id): Path<String>) -> StatusCode {
        server.log("delete", &id);
        server.deleted.lock().unwrap().push(id);
        StatusCode::NO_CONTENT
    }

    pub async fn start(server: Server) -> std::net::SocketAddr {
        let app = Router::new()
            .route("/2fa/v1/application/", post(create))
            .route("/2fa/v1/application/{id}", delete(remove))
            .route("/2fa/v1/otp", post(send))
            .route("/2fa/v1/otp/{id}/check", post(check))
            .with_state(server);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }
}

#[tokio::test]
async fn runs_the_flow_against_a_fake_server() {
    let receiver_port = free_port();
    let server = fake::Server {
        webhook: format!("http://127.0.0.1:{receiver_port}/sms"),
        ..Default::default()
    };
    let addr = fake::start(server.clone()).await;
    let cli = Cli::try_parse_from([
        "bench".to_owned(),
        "--key".into(),
        "k".into(),
        "--base".into(),
        format!("http://{addr}"),
        "--receiver".into(),
        format!("127.0.0.1:{receiver_port}"),
        "--concurrency".into(),
        "4".into(),
        "--duration".into(),
        "1".into(),
        "--warmup".into(),
        "0".into(),
    ])
    .unwrap();
    let report = run(cli.args).await.unwrap();

    assert_eq!(*server.deleted.lock().unwrap(), ["app-1"]);
    let step = |name: &str| report.steps.iter().find(|s| s.name == name).unwrap();
    assert!(report.round_trips > 10, "{report}");
    assert_eq!(step("round_trip").count, report.round_trips);
    assert_eq!(step("check").count, report.round_trips);
    assert_eq!(step("check").errors, 0, "{report}");
    assert_eq!(step("deliver").errors, 0, "{report}");
    assert!(step("send").errors > 0);
    assert_eq!(step("send").errors, step("send").error_kinds["http 429"]);
    assert_eq!(report.rate_limited, step("send").errors);
    assert_eq!(
        step("round_trip").error_kinds["failed at send"],
        step("send").errors
    );
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("KEYHAVEN_RATE_LIMIT_CALLS")));
    assert!(report.throughput_per_sec > 0.0);
    assert!(report.duration_secs >= 1.0);
    assert!(step("round_trip").p50_ms.unwrap() >= step("send").p50_ms.unwrap());
    let table = report.to_string();
    assert!(table.contains("round_trip") && table.contains("http 429 x"));

    // The receiver is gone: its port can be bound again.
    tokio::net::TcpListener::bind(("127.0.0.1", receiver_port))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_bases_split_the_users_and_check_across_nodes() {
    let receiver_port = free_port();
    let first = fake::Server {
        webhook: format!("http://127.0.0.1:{receiver_port}/sms"),
        ..Default::default()
    };
    let second = fake::Server {
        node: 1,
        ..first.clone()
    };
    let (a, b) = (fake::start(first.clone()).await, fake::start(second).await);
    let cli = Cli::try_parse_from([
        "bench".to_owned(),
        "--key".into(),
        "k".into(),
        "--base".into(),
        format!("http://{a}"),
        "--base".into(),
        format!("http://{b}/"),
        "--receiver".into(),
        format!("127.0.0.1:{receiver_port}"),
        "--concurrency".into(),
        "4".into(),
        "--duration".into(),
        "1".into(),
        "--warmup".into(),
        "0".into(),
    ])
    .unwrap();
    let report = run(cli.args).await.unwrap();
    assert_eq!(report.target, format!("http://{a}/, http://{b}/"));
    assert!(report.round_trips > 10, "{report}");

    let calls = first.calls.lock().unwrap().clone();
    let nodes_of = |operation: &str| -> Vec<u8> {
        calls
            .iter()
            .filter(|(_, op, _)| *op == operation)
            .map(|(node, _, _)| *node)
            .collect()
    };
    assert_eq!(nodes_of("create"), [0], "set-up goes to the first base");
    assert_eq!(nodes_of("delete"), [0], "clean-up goes to the first base");
    let sends = nodes_of("send");
    let on_second = sends.iter().filter(|&&n| n == 1).count();
    assert!(
        on_second > sends.len() / 4 && on_second < sends.len() * 3 / 4,
        "sends split across the nodes: {on_second} of {}",
        sends.len()
    );
    let sent_by: HashMap<&str, u8> = calls
        .iter()
        .filter(|(_, op, _)| *op == "send")
        .map(|(node, _, id)| (id.as_str(), *node))
        .collect();
    let checks: Vec<_> = calls.iter().filter(|(_, op, _)| *op == "check").collect();
    assert!(!checks.is_empty());
    for (node, _, otp_id) in checks {
        assert_ne!(
            sent_by[otp_id.as_str()],
            *node,
            "{otp_id} is checked on the node that sent it"
        );
    }
}

#[tokio::test]
async fn refused_key_fails_setup() {
    let addr = fake::start(fake::Server::default()).await;
    let cli = Cli::try_parse_from([
        "bench".to_owned(),
        "--key".into(),
        "wrong".into(),
        "--base".into(),
        format!("http://{addr}"),
        "--receiver".into(),
        "127.0.0.1:0".into(),
    ])
    .unwrap();
    let error = run(cli.args).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("refused the API key"),
        "{error:#}"
    );
}

#[tokio::test]
async fn unreachable_server_fails_setup_and_frees_the_receiver() {
    // A port that nothing listens on: bind, read the port, close.
    let port = free_port();
    let receiver_port = free_port();
    let cli = Cli::try_parse_from([
        "bench".to_owned(),
        "--key".into(),
        "k".into(),
        "--base".into(),
        format!("http://127.0.0.1:{port}"),
        "--receiver".into(),
        format!("127.0.0.1:{receiver_port}"),
    ])
    .unwrap();
    let error = run(cli.args).await.unwrap_err();
    assert!(format!("{error:#}").contains("cannot reach"), "{error:#}");
    // The receiver was shut down: its port can be bound again.
    tokio::net::TcpListener::bind(("127.0.0.1", receiver_port))
        .await
        .unwrap();
}
