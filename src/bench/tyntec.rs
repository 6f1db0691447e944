//! `keyhaven bench tyntec`: load on the tyntec 2FA v1 flow (send an SMS code, take it from the
//! embedded receiver, check it) against a running server.

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context as _;
use rand::Rng;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::{drive, start_receiver, Iteration, LoadPlan, Receiver, Report, RATE_LIMITED};

const SEND: &str = "send";
const DELIVER: &str = "deliver";
const CHECK: &str = "check";
const ROUND_TRIP: &str = "round_trip";
const STEPS: [&str; 4] = [SEND, DELIVER, CHECK, ROUND_TRIP];

/// How long a user waits for its SMS before counting the delivery as failed.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for any single HTTP request to the server under test.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// German mobile ranges that libphonenumber accepts with 8 more digits, so every iteration gets
/// a fresh valid recipient and per-recipient limits never kick in.
const MOBILE_PREFIXES: [&str; 4] = ["+49151", "+49152", "+49157", "+49160"];

/// Arguments of `keyhaven bench tyntec`. The server under test must deliver SMS to the embedded
/// receiver: `KEYHAVEN_SMS_PROVIDER=webhook KEYHAVEN_SMS_WEBHOOK_URL=http://<receiver>/`.
#[derive(Clone, clap::Args)]
pub struct TyntecBenchArgs {
    /// Base URL of the server under test.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// tyntec API key (sent as the `apiKey` header).
    #[arg(long, value_name = "API_KEY")]
    pub key: String,
    /// Virtual users running the flow at the same time.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Measured time in seconds, after the warm-up.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Warm-up in seconds; its samples are discarded.
    #[arg(long, value_name = "SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub warmup: u64,
    /// Address the embedded webhook receiver listens on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9099")]
    pub receiver: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl fmt::Debug for TyntecBenchArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TyntecBenchArgs")
            .field("base", &self.base)
            .field("key", &"***")
            .field("concurrency", &self.concurrency)
            .field("duration", &self.duration)
            .field("warmup", &self.warmup)
            .field("receiver", &self.receiver)
            .field("json", &self.json)
            .finish()
    }
}

/// Runs the benchmark: creates a dedicated application, drives the flow, deletes the
/// application and stops the receiver. Printing the report (table or `--json`) is the caller's.
pub async fn run(args: TyntecBenchArgs) -> anyhow::Result<Report> {
    let base = parse_base(&args.base)?;
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;
    let plan = LoadPlan::new(
        concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;

    let receiver = start_receiver(args.receiver.as_str())
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the server's messages (choose another with --receiver)",
                args.receiver
            )
        })?;
    let receiver_addr = receiver.addr();

    let mut rate_limited = 0;
    let application_id =
        match create_application(&client, &base, &args.key, &mut rate_limited).await {
            Ok(id) => id,
            Err(error) => {
                receiver.shutdown().await;
                return Err(error);
            }
        };
    tracing::info!(
        %application_id,
        users = concurrency,
        warmup_secs = args.warmup,
        duration_secs = args.duration,
        "benchmarking the tyntec 2FA flow"
    );

    let flow = Arc::new(Flow {
        client: client.clone(),
        otp_url: endpoint(&base, &["2fa", "v1", "otp"])?,
        base: base.clone(),
        key: args.key.clone(),
        application_id: application_id.clone(),
        receiver,
    });
    let driven = {
        let flow = Arc::clone(&flow);
        let users = drive(&plan, &STEPS, move |_| {
            let flow = Arc::clone(&flow);
            async move { flow.round_trip().await }
        });
        tokio::select! {
            outcome = users => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    };

    let mut notes = Vec::new();
    if let Err(note) = delete_application(&client, &base, &args.key, &application_id).await {
        if note.contains(RATE_LIMITED) {
            rate_limited += 1;
        }
        notes.push(note);
    }
    let received = flow.receiver.received();
    match Arc::try_unwrap(flow) {
        Ok(flow) => flow.receiver.shutdown().await,
        // Still shared only if a user task outlived the driver; dropping stops the receiver.
        Err(flow) => drop(flow),
    }

    let outcome = driven?;
    let mut report = Report::from_outcome("tyntec", base.as_str(), &plan, &outcome, rate_limited);
    let sent: u64 = [&outcome.measured, &outcome.warmup]
        .iter()
        .filter_map(|r| r.step(SEND))
        .map(|s| s.count())
        .sum();
    if sent > 0 && received == 0 {
        report.notes.push(format!(
            "the receiver on {receiver_addr} got no message: start the server under test with \
             KEYHAVEN_SMS_PROVIDER=webhook KEYHAVEN_SMS_WEBHOOK_URL=http://{receiver_addr}/"
        ));
    }
    report.notes.extend(notes);
    Ok(report)
}

struct Flow {
    client: reqwest::Client,
    base: Url,
    otp_url: Url,
    key: String,
    application_id: String,
    receiver: Receiver,
}

impl Flow {
    /// One pass: send → deliver → check, with the round trip timed from send start to check end.
    async fn round_trip(&self) -> Iteration {
        let mut iteration = Iteration::new();
        let number = random_mobile_number(&mut rand::thread_rng());
        let started = Instant::now();

        let otp_id = match self.send(&number).await {
            Ok(otp_id) => otp_id,
            Err(kind) => {
                iteration.fail(SEND, kind);
                iteration.fail(ROUND_TRIP, "failed at send");
                return iteration;
            }
        };
        let sent = Instant::now();
        iteration.ok(SEND, sent - started);

        let code = match self
            .receiver
            .wait_for_message(&number, DELIVER_TIMEOUT)
            .await
        {
            Ok(message) => match extract_code(&message.text) {
                Some(code) => {
                    let arrived = Instant::from_std(message.arrived);
                    iteration.ok(DELIVER, arrived.saturating_duration_since(sent));
                    code.to_owned()
                }
                None => {
                    iteration.fail(DELIVER, "no code in text");
                    iteration.fail(ROUND_TRIP, "failed at deliver");
                    return iteration;
                }
            },
            Err(_) => {
                iteration.fail(DELIVER, "timeout");
                iteration.fail(ROUND_TRIP, "failed at deliver");
                return iteration;
            }
        };

        let check_started = Instant::now();
        match self.check(&otp_id, &code).await {
            Ok(()) => {
                let done = Instant::now();
                iteration.ok(CHECK, done - check_started);
                iteration.ok(ROUND_TRIP, done - started);
                iteration.complete();
            }
            Err(kind) => {
                iteration.fail(CHECK, kind);
                iteration.fail(ROUND_TRIP, "failed at check");
            }
        }
        iteration
    }

    /// `POST /2fa/v1/otp`: the new `otpId`, or an error kind.
    async fn send(&self, number: &str) -> Result<String, String> {
        let response = self
            .client
            .post(self.otp_url.clone())
            .header("apiKey", &self.key)
            .query(&[
                ("number", number),
                ("applicationId", self.application_id.as_str()),
                ("via", "SMS"),
            ])
            .send()
            .await
            .map_err(|e| transport_kind(&e))?;
        let body = expect_json(response, StatusCode::OK).await?;
        match body.get("otpId").and_then(Value::as_str) {
            Some(otp_id) if !otp_id.is_empty() => Ok(otp_id.to_owned()),
            _ => Err("no otpId".to_owned()),
        }
    }

    /// `POST /2fa/v1/otp/{otpId}/check`: `Ok` only for 202 with `otpStatus: VERIFIED`.
    async fn check(&self, otp_id: &str, code: &str) -> Result<(), String> {
        let url = endpoint(&self.base, &["2fa", "v1", "otp", otp_id, "check"])
            .map_err(|_| "bad otpId".to_owned())?;
        let response = self
            .client
            .post(url)
            .header("apiKey", &self.key)
            .query(&[("otpCode", code)])
            .send()
            .await
            .map_err(|e| transport_kind(&e))?;
        let body = expect_json(response, StatusCode::ACCEPTED).await?;
        match body.get("otpStatus").and_then(Value::as_str) {
            Some("VERIFIED") => Ok(()),
            _ => Err("not verified".to_owned()),
        }
    }
}

/// The JSON body of a response with status `want`; otherwise an error kind. Error bodies are
/// read to the end so the connection goes back to the pool.
async fn expect_json(response: reqwest::Response, want: StatusCode) -> Result<Value, String> {
    let status = response.status();
    if status != want {
        let _ = response.bytes().await;
        return Err(status_kind(status));
    }
    response
        .json::<Value>()
        .await
        .map_err(|_| "bad response body".to_owned())
}

fn status_kind(status: StatusCode) -> String {
    format!("http {}", status.as_u16())
}

fn transport_kind(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "http timeout".to_owned()
    } else if error.is_connect() {
        "connect".to_owned()
    } else {
        "transport".to_owned()
    }
}

async fn create_application(
    client: &reqwest::Client,
    base: &Url,
    key: &str,
    rate_limited: &mut u64,
) -> anyhow::Result<String> {
    let url = endpoint(base, &["2fa", "v1", "application", ""])?;
    let name = format!("bench-{:016x}", rand::random::<u64>());
    let response = client
        .post(url)
        .header("apiKey", key)
        .json(&serde_json::json!({
            "name": name,
            "pinLength": 6,
            "template": {"en": "code {{OTP}}"},
        }))
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {base}"))?;
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        *rate_limited += 1;
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        anyhow::bail!("the server refused the API key (HTTP {})", status.as_u16());
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!(
            "creating the bench application failed: HTTP {}: {}",
            status.as_u16(),
            snippet(&body)
        );
    }
    let body: Value = response
        .json()
        .await
        .context("creating the bench application: response is not JSON")?;
    body.get("applicationId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .context("creating the bench application: no applicationId in the response")
}

/// Deletes the bench application; the error is a note for the report.
async fn delete_application(
    client: &reqwest::Client,
    base: &Url,
    key: &str,
    application_id: &str,
) -> Result<(), String> {
    let failed =
        |why: String| format!("could not delete bench application {application_id}: {why}");
    let url = endpoint(base, &["2fa", "v1", "application", application_id])
        .map_err(|e| failed(e.to_string()))?;
    let response = client
        .delete(url)
        .header("apiKey", key)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(failed(status_kind(status)))
    }
}

fn snippet(body: &str) -> String {
    let mut s: String = body.chars().take(200).collect();
    if s.len() < body.len() {
        s.push('…');
    }
    s
}

fn parse_base(base: &str) -> anyhow::Result<Url> {
    let url = Url::parse(base).with_context(|| format!("invalid --base URL {base:?}"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base(),
        "--base must be an http(s) URL, got {base:?}"
    );
    Ok(url)
}

/// `base` with `segments` appended to its path (each percent-encoded as needed); an empty last
/// segment leaves a trailing slash.
fn endpoint(base: &Url, segments: &[&str]) -> anyhow::Result<Url> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("{base} cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// The one-time code in a message rendered from the bench template `code {{OTP}}`: the token
/// after `code `, alphanumeric with at least one digit (so prose such as "code here" is not
/// taken for one).
pub fn extract_code(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("code ")?;
    let token = rest.split_whitespace().next()?;
    let token = token.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let plausible = token.chars().all(|c| c.is_ascii_alphanumeric())
        && token.chars().any(|c| c.is_ascii_digit());
    plausible.then_some(token)
}

/// A random E.164 German mobile number (`+49151` and 8 digits, or another mobile range).
pub fn random_mobile_number(rng: &mut impl Rng) -> String {
    let prefix = MOBILE_PREFIXES[rng.gen_range(0..MOBILE_PREFIXES.len())];
    format!("{prefix}{:08}", rng.gen_range(0..100_000_000u32))
}

#[cfg(test)]
mod tests {
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
        assert_eq!(a.base, "http://127.0.0.1:8080");
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
        assert_eq!(cli.args.concurrency, 4);
        assert_eq!(cli.args.warmup, 0);
        assert!(cli.args.json);
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

        #[derive(Clone, Default)]
        pub struct Server {
            pub webhook: String,
            pub codes: Arc<Mutex<HashMap<String, String>>>,
            pub sends: Arc<Mutex<u64>>,
            pub deleted: Arc<Mutex<Vec<String>>>,
        }

        fn authorized(headers: &HeaderMap) -> bool {
            headers.get("apiKey").and_then(|v| v.to_str().ok()) == Some("k")
        }

        async fn create(headers: HeaderMap, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
            if !authorized(&headers) {
                return (StatusCode::UNAUTHORIZED, Json(json!({})));
            }
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
            let codes = server.codes.lock().unwrap();
            if codes.get(&otp_id) == query.get("otpCode") {
                (StatusCode::ACCEPTED, Json(json!({"otpStatus": "VERIFIED"})))
            } else {
                (StatusCode::BAD_REQUEST, Json(json!({})))
            }
        }

        async fn remove(State(server): State<Server>, Path(id): Path<String>) -> StatusCode {
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
}
