//! The test harness: a real server on a random port over a fresh SQLite file or a fresh
//! PostgreSQL database, with a local SMS/voice receiver that captures every message.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    routing::post,
    Json, Router,
};
use keyhaven::{
    config::{Config, Secret, SmsProviderKind},
    crypto::ServerKeys,
    delivery::Providers,
    passage::Passage,
    server,
    state::AppState,
    storage::Store,
    tyntec::accounts,
};
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a scenario on SQLite and, when `KEYHAVEN_TEST_POSTGRES_URL` is set, on PostgreSQL
/// (see `postgres_enabled` for when a missing URL fails instead of skipping).
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if !$crate::harness::postgres_enabled() {
                        return;
                    }
                    super::$name($crate::harness::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("KEYHAVEN_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether the PostgreSQL half of `both_backends!` runs. Without a URL it is skipped, so
/// developers need no database; with `KEYHAVEN_TEST_REQUIRE_POSTGRES=1` (as CI sets it) a
/// missing URL fails the test instead, so a broken CI set-up cannot pass on SQLite alone.
pub fn postgres_enabled() -> bool {
    if postgres_url().is_some() {
        return true;
    }
    if std::env::var("KEYHAVEN_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "KEYHAVEN_TEST_REQUIRE_POSTGRES=1 but KEYHAVEN_TEST_POSTGRES_URL is unset or empty: \
             the PostgreSQL run is required and cannot be skipped"
        );
    }
    eprintln!("KEYHAVEN_TEST_POSTGRES_URL unset: PostgreSQL run skipped");
    false
}

/// Messages the SMS/voice webhook received, and a switch to make SMS fail.
#[derive(Default)]
pub struct Receiver {
    messages: Mutex<VecDeque<Value>>,
    arrived: Notify,
    pub fail_sms: AtomicBool,
}

impl Receiver {
    /// Messages received and not yet taken by `next_for`.
    pub fn pending(&self) -> usize {
        self.messages.lock().unwrap().len()
    }

    /// The next message to `to`, waiting up to 5 s.
    pub async fn next_for(&self, to: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = self.arrived.notified();
            {
                let mut q = self.messages.lock().unwrap();
                if let Some(i) = q.iter().position(|m| m["to"] == to) {
                    return q.remove(i).unwrap();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no message to {to} within 5 s");
            }
        }
    }
}

async fn receive(State(r): State<Arc<Receiver>>, Json(msg): Json<Value>) -> StatusCode {
    if msg["channel"] == "sms" && r.fail_sms.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.messages.lock().unwrap().push_back(msg);
    r.arrived.notify_waiters();
    StatusCode::OK
}

async fn start_receiver() -> (SocketAddr, Arc<Receiver>) {
    let receiver = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/", post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, receiver)
}

/// A new database for one test: a SQLite file in `dir`, or a PostgreSQL database that is
/// dropped when the returned guard is.
pub async fn fresh_database(
    backend: Backend,
    dir: &std::path::Path,
) -> (Option<Arc<PgDatabase>>, String) {
    match backend {
        Backend::Sqlite => (
            None,
            format!("sqlite://{}", dir.join("keyhaven.db").display()),
        ),
        Backend::Postgres => {
            let (db, url) = PgDatabase::create(&postgres_url().unwrap()).await;
            (Some(Arc::new(db)), url)
        }
    }
}

/// Mail received by the test's SMTP server.
#[derive(Default)]
pub struct Mailbox {
    mails: Mutex<Vec<(String, String)>>,
    arrived: Notify,
}

impl Mailbox {
    /// The next message (headers and body) to `to`, waiting up to 5 s.
    pub async fn next_for(&self, to: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let notified = self.arrived.notified();
            {
                let mut mails = self.mails.lock().unwrap();
                if let Some(i) = mails.iter().position(|(rcpt, _)| rcpt == to) {
                    return mails.remove(i).1;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no mail to {to} within 5 s");
            }
        }
    }
}

/// A real SMTP server on loopback (plain text, enough of RFC 5321 for a client to deliver).
async fn start_smtp() -> (SocketAddr, Arc<Mailbox>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mailbox = Arc::new(Mailbox::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let boxed = mailbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mailbox = boxed.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 localhost test SMTP\r\n").await;
                let mut rcpts = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 localhost\r\n",
                        "RCPT" => {
                            let to = line.split(['<', '>']).nth(1).unwrap_or("").to_string();
                            rcpts.push(to);
                            b"250 OK\r\n"
                        }
                        "DATA" => {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                data.push_str(&l);
                                data.push('\n');
                            }
                            let mut mails = mailbox.mails.lock().unwrap();
                            for to in rcpts.drain(..) {
                                mails.push((to, data.clone()));
                            }
                            drop(mails);
                            mailbox.arrived.notify_waiters();
                            b"250 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            break;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (addr, mailbox)
}

/// A throwaway PostgreSQL database, dropped when the test ends.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> (PgDatabase, String) {
        let name = format!("kh_{}", uuid::Uuid::new_v4().simple());
        let pool = sqlx::PgPool::connect(admin_url).await.unwrap();
        sqlx::query(&format!("create database {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let mut url = url::Url::parse(admin_url).unwrap();
        url.set_path(&name);
        (
            PgDatabase {
                admin_url: admin_url.to_string(),
                name,
            },
            url.to_string(),
        )
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async: a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&pool)
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// One running server process (a node); several may share a database.
pub struct Node {
    pub base: String,
    /// The separate metrics listener's base URL, when configured.
    pub metrics_base: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Node {
    async fn start(config: &Config, store: &Store) -> Node {
        let keys = ServerKeys::from_secret(config.secret.as_ref().unwrap().expose());
        let state = AppState::new(config.clone(), store.clone(), keys);
        let providers = Providers::from_config(config).unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (listening, server) = server::bind(state, providers, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
        Node {
            base: format!("http://{}", listening.addr),
            metrics_base: listening.metrics_addr.map(|a| format!("http://{a}")),
            stop: Some(stop_tx),
            server: Some(tokio::spawn(async move { server.await.unwrap() })),
        }
    }

    /// Stops accepting, lets work under way finish, and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub receiver: Arc<Receiver>,
    pub mailbox: Arc<Mailbox>,
    /// API key of the account created for the test.
    pub key: String,
    pub account_id: String,
    pub config: Config,
    pub store: Store,
    node: Option<Node>,
    _dir: Arc<tempfile::TempDir>,
    _pg: Option<Arc<PgDatabase>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a server after `tweak` adjusts the configuration.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("info,sqlx=warn")
                .try_init();
        }
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let (receiver_addr, receiver) = start_receiver().await;
        let (smtp_addr, mailbox) = start_smtp().await;
        let (pg, database_url) = fresh_database(backend, dir.path()).await;
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: Some(database_url),
            data_dir: dir.path().to_path_buf(),
            secret: Some(Secret("test-secret".into())),
            sms_provider: SmsProviderKind::Webhook,
            sms_webhook_url: Some(format!("http://{receiver_addr}/")),
            smtp_url: Some(Secret(format!("smtp://{smtp_addr}"))),
            rate_limit_calls: 100_000,
            delivery_limit_per_recipient: 0,
            delivery_timeout_seconds: 5,
            ..Config::default()
        };
        tweak(&mut config);
        let store = Store::open(&config.database_url(), 8).await.unwrap();
        let (account, key) = accounts::create(&store, "test account").await.unwrap();
        let mut app = TestApp {
            base: String::new(),
            http: reqwest::Client::new(),
            receiver,
            mailbox,
            key,
            account_id: account.id,
            config,
            store,
            node: None,
            _dir: dir,
            _pg: pg,
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let node = Node::start(&self.config, &self.store).await;
        self.base = node.base.clone();
        self.node = Some(node);
    }

    /// Another node on the same database, configuration and message receiver.
    pub async fn another_node(&self) -> Node {
        Node::start(&self.config, &self.store).await
    }

    /// Stops the server and starts a new one on the same database and data folder.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.store = Store::open(&self.config.database_url(), 8).await.unwrap();
        self.start().await;
    }

    async fn shutdown(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
        self.store.close().await;
    }

    /// A second account on the same server: (account id, API key).
    pub async fn other_account(&self) -> (String, String) {
        let (account, key) = accounts::create(&self.store, "other").await.unwrap();
        (account.id, key)
    }

    /// The Passage core over this server's database, as the CLI uses it.
    pub fn passage(&self) -> Passage {
        let keys = ServerKeys::from_secret(self.config.secret.as_ref().unwrap().expose());
        AppState::new(self.config.clone(), self.store.clone(), keys)
            .passage
            .clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's `host:port`, for raw TCP clients.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The base URL of the separate metrics listener, when configured.
    pub fn metrics_base(&self) -> Option<&str> {
        self.node.as_ref()?.metrics_base.as_deref()
    }

    /// POST with the API key in the `apikey` header, as the connector sends it.
    pub async fn post(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.post(self.url(path)).header("apikey", &self.key))
            .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(self.url(path)).header("apikey", &self.key))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(self.url(path)).header("apikey", &self.key))
            .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(self.url(path))
                .header("apikey", &self.key)
                .json(body),
        )
        .await
    }

    /// Sends a request and reads the JSON body (`Null` for an empty one).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let (status, _, body) = self.send_full(req).await;
        (status, body)
    }

    /// `send` that also keeps the headers, for answers whose headers matter (`Retry-After`).
    pub async fn send_full(&self, req: reqwest::RequestBuilder) -> (StatusCode, HeaderMap, Value) {
        let res = req.send().await.unwrap();
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, headers, body)
    }

    /// Sends an OTP to `number` and returns (otp resource, delivered text).
    pub async fn send_otp(&self, query: &str, number: &str) -> (Value, String) {
        let (status, otp) = self
            .post(&format!("/2fa/v1/otp?number={}&{query}", urlencode(number)))
            .await;
        assert_eq!(status, 200, "{otp}");
        let msg = self
            .receiver
            .next_for(otp["number"].as_str().unwrap())
            .await;
        (otp, msg["text"].as_str().unwrap().to_string())
    }
}

/// A 429's `Retry-After`: whole seconds, at least 1 and at most `window`, the period of the
/// limit that refused (a client must be told when to come back, and not to wait past the
/// point where the limit has reset).
pub fn retry_after(headers: &HeaderMap, window: u64) -> u64 {
    let value = headers
        .get(header::RETRY_AFTER)
        .unwrap_or_else(|| panic!("429 without Retry-After: {headers:?}"));
    let secs: u64 = value
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After is not whole seconds: {value:?}"));
    assert!(
        (1..=window).contains(&secs),
        "Retry-After {secs} s is not within 1..={window} s"
    );
    secs
}

/// The names of a JSON object's fields, sorted.
fn field_names(body: &Value) -> Vec<&str> {
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {body}"))
        .keys()
        .map(|k| k.as_str())
        .collect();
    fields.sort_unstable();
    fields
}

/// A tyntec throttle answer: 429, `Retry-After` within `window` seconds, and the tyntec error
/// body `{"status": 429, "message", "code": "rate_limited", "timestamp"}` and nothing else.
pub fn assert_tyntec_rate_limited(answer: &(StatusCode, HeaderMap, Value), window: u64) {
    let (status, headers, body) = answer;
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    retry_after(headers, window);
    let fields = field_names(body);
    assert_eq!(
        fields,
        ["code", "message", "status", "timestamp"],
        "the tyntec error shape: {body}"
    );
    assert_eq!(body["status"], 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let timestamp = body["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "timestamp not ISO-8601 UTC: {body}"
    );
}

/// A Passage throttle answer: 429, `Retry-After` within `window` seconds, and the Passage
/// error body `{"code": "rate_limited", "error"}` and nothing else.
pub fn assert_passage_rate_limited(answer: &(StatusCode, HeaderMap, Value), window: u64) {
    let (status, headers, body) = answer;
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    retry_after(headers, window);
    let fields = field_names(body);
    assert_eq!(fields, ["code", "error"], "the Passage error shape: {body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(
        body["error"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The digits (or letters) of a code in a message such as `OTP code: 1234. Valid for ...`.
pub fn code_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.len() >= 4 && w.chars().any(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string()
}

/// The code of a voice message (`Your code is 1, 2, 3, 4. ...`).
pub fn spoken_code_in(text: &str) -> String {
    let start = text.find(|c: char| c.is_ascii_digit()).unwrap();
    text[start..]
        .split('.')
        .next()
        .unwrap()
        .split(", ")
        .collect()
}
