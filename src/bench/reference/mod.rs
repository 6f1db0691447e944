//! `keyhaven bench reference`: the smallest durable OTP server we can think of, speaking the
//! subset of the tyntec 2FA v1 API that `keyhaven bench tyntec` drives. It is the yardstick for
//! Keyhaven's own numbers: what a correct server costs when it does only the unavoidable work
//! (one group-committed transaction per send and per check, SMS sent after commit).

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path as FsPath, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use aws_lc_rs::hmac;
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, post},
    Json, Router,
};
use rand::{rngs::OsRng, Rng};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::{net::TcpListener, sync::mpsc, sync::oneshot};
use uuid::Uuid;

const EXPIRY_MS: i64 = 5 * 60 * 1000;
const MAX_ATTEMPTS: i64 = 3;
/// Jobs per transaction at most, so one huge backlog does not hold every answer behind it.
const MAX_BATCH: usize = 1024;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS otp (id BLOB PRIMARY KEY, code_digest BLOB NOT NULL,
        attempts INTEGER NOT NULL, status TEXT NOT NULL, expires_at INTEGER NOT NULL)
        WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS outbox (id BLOB PRIMARY KEY, otp_id BLOB NOT NULL,
        recipient TEXT NOT NULL, body TEXT NOT NULL, sent_at INTEGER) WITHOUT ROWID;";

/// The check is its own read: one guarded statement settles the attempt. A right code verifies,
/// a wrong one counts an attempt; an OTP that is not active, has expired or is out of attempts
/// matches no row. Comparing digests in SQL is fine: they are keyed, so timing tells nothing.
const CHECK: &str = "UPDATE otp SET
        status = CASE WHEN code_digest = ?2 THEN 'VERIFIED' ELSE status END,
        attempts = attempts + (code_digest <> ?2)
    WHERE id = ?1 AND status = 'ACTIVE' AND expires_at > ?3 AND attempts < ?4
    RETURNING status";

/// Arguments of `keyhaven bench reference`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceArgs {
    /// Address to listen on; loopback only.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Where SMS are POSTed (the load command's receiver), as Keyhaven's webhook provider does.
    #[arg(long, value_name = "URL")]
    pub webhook: String,
    /// SQLite database file (created if missing).
    #[arg(long, value_name = "PATH")]
    pub database: PathBuf,
    /// API key the `apiKey` header must carry; any key is taken without it.
    #[arg(long, value_name = "API_KEY")]
    pub key: Option<String>,
    /// Stop by itself after this many seconds, so a script cannot leave it running.
    #[arg(long, value_name = "N")]
    pub seconds: Option<u64>,
}

/// Runs the reference server until Ctrl-C, SIGTERM or `--seconds`.
pub async fn run(args: ReferenceArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "--listen must be a loopback address"
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let router = router(&args.database, args.webhook, args.key)?;
    let limit = args.seconds.map(Duration::from_secs);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let timer = async {
                match limit {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! { () = terminated() => {}, () = timer => {} }
        })
        .await
        .context("serving")
}

async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Opens the database, starts the writer thread and builds the routes.
pub fn router(database: &FsPath, webhook: String, key: Option<String>) -> anyhow::Result<Router> {
    let conn =
        Connection::open(database).with_context(|| format!("opening {}", database.display()))?;
    // WAL + synchronous=NORMAL: a commit survives a process kill without an fsync per commit;
    // the default auto-checkpoint stays.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    conn.execute_batch(SCHEMA)?;
    let (jobs, queue) = mpsc::channel(16 * MAX_BATCH);
    std::thread::Builder::new()
        .name("reference-writer".into())
        .spawn(move || writer(conn, queue))?;
    let code_key = hmac::Key::generate(hmac::HMAC_SHA256, &aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("cannot generate the code key"))?;
    let state = Arc::new(App {
        jobs,
        code_key,
        webhook,
        key,
        client: reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()?,
        applications: Mutex::default(),
    });
    Ok(Router::new()
        .route("/2fa/v1/application/", post(create_application))
        .route("/2fa/v1/application/{id}", delete(delete_application))
        .route("/2fa/v1/otp", post(send))
        .route("/2fa/v1/otp/{id}/check", post(check))
        .with_state(state))
}

/// One write for the writer thread; `reply` gets its result once the batch has committed.
enum Op {
    Send {
        otp: Uuid,
        digest: Vec<u8>,
        expires_at: i64,
        outbox: Uuid,
        to: String,
        text: String,
    },
    Check {
        otp: Uuid,
        digest: Vec<u8>,
        now: i64,
    },
    MarkSent {
        outbox: Uuid,
        now: i64,
    },
}

type Answer = Result<Option<String>, String>;

struct Job {
    op: Op,
    reply: oneshot::Sender<Answer>,
}

/// The single writer: takes every job waiting in the channel, runs them all in one
/// `BEGIN IMMEDIATE … COMMIT`, and only then answers each. One fsync-free commit (WAL) is paid
/// per batch instead of per request, and with one writer SQLite never returns SQLITE_BUSY.
fn writer(mut conn: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = queue.blocking_recv() {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&mut conn, &batch) {
            Ok(answers) => {
                for (job, answer) in batch.drain(..).zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            // The whole batch rolled back: nobody may be told their write happened.
            Err(error) => {
                tracing::error!(%error, "reference batch failed");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(error.to_string()));
                }
            }
        }
    }
}

fn commit_batch(conn: &mut Connection, batch: &[Job]) -> rusqlite::Result<Vec<Option<String>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let answers = batch
        .iter()
        .map(|job| apply(&tx, &job.op))
        .collect::<rusqlite::Result<_>>()?;
    tx.commit()?; // dropping `tx` on an error above rolls back
    Ok(answers)
}

fn apply(conn: &Connection, op: &Op) -> rusqlite::Result<Option<String>> {
    match op {
        Op::Send {
            otp,
            digest,
            expires_at,
            outbox,
            to,
            text,
        } => {
            conn.prepare_cached(
                "INSERT INTO otp (id, code_digest, attempts, status, expires_at) \
                 VALUES (?1, ?2, 0, 'ACTIVE', ?3)",
            )?
            .execute(params![otp.as_bytes(), digest, expires_at])?;
            // The outbox keeps the text so a crash between commit and POST loses no SMS.
            conn.prepare_cached(
                "INSERT INTO outbox (id, otp_id, recipient, body) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![outbox.as_bytes(), otp.as_bytes(), to, text])?;
            Ok(None)
        }
        Op::Check { otp, digest, now } => conn
            .prepare_cached(CHECK)?
            .query_row(params![otp.as_bytes(), digest, now, MAX_ATTEMPTS], |row| {
                row.get(0)
            })
            .optional(),
        Op::MarkSent { outbox, now } => {
            conn.prepare_cached("UPDATE outbox SET sent_at = ?2 WHERE id = ?1")?
                .execute(params![outbox.as_bytes(), now])?;
            Ok(None)
        }
    }
}

struct App {
    jobs: mpsc::Sender<Job>,
    code_key: hmac::Key,
    webhook: String,
    key: Option<String>,
    client: reqwest::Client,
    /// Application id → SMS template; not on the hot path, so memory is enough.
    applications: Mutex<HashMap<String, String>>,
}

impl App {
    /// Hands `op` to the writer and waits until its batch has committed.
    async fn submit(&self, op: Op) -> Result<Option<String>, Problem> {
        let (reply, answer) = oneshot::channel();
        let stopped = Problem(StatusCode::INTERNAL_SERVER_ERROR, "writer stopped");
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| stopped)?;
        let answer = answer.await.map_err(|_| stopped)?;
        answer.map_err(|_| Problem(StatusCode::INTERNAL_SERVER_ERROR, "storage failed"))
    }

    /// Keyed digest of the code, bound to its OTP id.
    fn digest(&self, otp: &Uuid, code: &str) -> Vec<u8> {
        let mut mac = hmac::Context::with_key(&self.code_key);
        mac.update(otp.as_bytes());
        mac.update(code.as_bytes());
        mac.sign().as_ref().to_vec()
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Problem> {
        let Some(key) = &self.key else { return Ok(()) };
        let given = headers.get("apiKey").map(|v| v.as_bytes()).unwrap_or(b"");
        if bool::from(given.ct_eq(key.as_bytes())) {
            Ok(())
        } else {
            Err(Problem(StatusCode::UNAUTHORIZED, "invalid apiKey"))
        }
    }
}

/// An error answer: status and a fixed title (storage errors are logged, not sent).
#[derive(Clone, Copy)]
struct Problem(StatusCode, &'static str);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({"status": self.0.as_u16(), "title": self.1});
        (self.0, Json(body)).into_response()
    }
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

async fn create_application(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Problem> {
    app.authorize(&headers)?;
    // `template` is either a text or texts by language; English first, as the bench sends.
    let template = match &body["template"] {
        Value::String(text) => Some(text.clone()),
        Value::Object(texts) => texts
            .get("en")
            .or_else(|| texts.values().next())
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let template = template.unwrap_or_else(|| "Your code is {{OTP}}".to_owned());
    let id = Uuid::new_v4().to_string();
    lock(&app.applications).insert(id.clone(), template);
    Ok(Json(json!({"applicationId": id, "name": body["name"]})).into_response())
}

async fn delete_application(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    app.authorize(&headers)?;
    match lock(&app.applications).remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(Problem(StatusCode::NOT_FOUND, "no such application")),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendQuery {
    number: String,
    application_id: String,
}

async fn send(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<SendQuery>,
) -> Result<Response, Problem> {
    app.authorize(&headers)?;
    let template = lock(&app.applications).get(&query.application_id).cloned();
    let template = template.ok_or(Problem(StatusCode::NOT_FOUND, "no such application"))?;
    let code = format!("{:06}", OsRng.gen_range(0..1_000_000u32));
    // UUIDv7 ids grow with time, so both inserts append to their B-trees.
    let (otp, outbox) = (Uuid::now_v7(), Uuid::now_v7());
    let created = now_ms();
    let text = template.replace("{{OTP}}", &code);
    app.submit(Op::Send {
        otp,
        digest: app.digest(&otp, &code),
        expires_at: created + EXPIRY_MS,
        outbox,
        to: query.number.clone(),
        text: text.clone(),
    })
    .await?;
    // Committed: now the SMS may go. The background task marks the outbox row sent.
    let body = json!({"channel": "sms", "to": query.number, "text": text,
                      "sender": null, "language": "en"});
    let deliverer = Arc::clone(&app);
    tokio::spawn(async move {
        let posted = deliverer
            .client
            .post(&deliverer.webhook)
            .json(&body)
            .send()
            .await;
        match posted.and_then(reqwest::Response::error_for_status) {
            Ok(_) => {
                let op = Op::MarkSent {
                    outbox,
                    now: now_ms(),
                };
                if let Err(error) = deliverer.submit(op).await {
                    tracing::warn!(why = error.1, "marking the outbox row failed");
                }
            }
            Err(error) => tracing::warn!(%error, "SMS webhook failed"),
        }
    });
    Ok(Json(json!({
        "otpId": otp.to_string(),
        "applicationId": query.application_id,
        "number": query.number,
        "otpStatus": "ACTIVE",
        "timestampCreated": created,
        "timestampExpired": created + EXPIRY_MS,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckQuery {
    otp_code: String,
}

async fn check(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<CheckQuery>,
) -> Result<Response, Problem> {
    app.authorize(&headers)?;
    let not_active = Problem(StatusCode::NOT_FOUND, "no active OTP with this id");
    let otp = Uuid::parse_str(&id).map_err(|_| not_active)?;
    let digest = app.digest(&otp, &query.otp_code);
    let status = app
        .submit(Op::Check {
            otp,
            digest,
            now: now_ms(),
        })
        .await?;
    match status.as_deref() {
        Some("VERIFIED") => {
            Ok((StatusCode::ACCEPTED, Json(json!({"otpStatus": "VERIFIED"}))).into_response())
        }
        Some(_) => Err(Problem(StatusCode::UNAUTHORIZED, "wrong code")),
        // Unknown, used, expired or out of attempts: one answer, since telling them apart
        // would take another read.
        None => Err(not_active),
    }
}

#[cfg(test)]
mod tests;
