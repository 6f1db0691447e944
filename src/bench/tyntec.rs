//! `keyhaven bench tyntec`: load on the tyntec 2FA v1 flow (send an SMS code, take it from the
//! embedded receiver, check it) against a running server.

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context as _;
use rand::Rng;
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tokio::time::Instant;

use super::{
    drive, http_client, start_receiver, Iteration, LoadPlan, Receiver, Report, RATE_LIMITED,
    ROUND_TRIP,
};

const SEND: &str = "send";
const DELIVER: &str = "deliver";
const CHECK: &str = "check";
const STEPS: [&str; 4] = [SEND, DELIVER, CHECK, ROUND_TRIP];

/// How long a user waits for its SMS before counting the delivery as failed.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(5);

/// German mobile ranges that libphonenumber accepts with 8 more digits, so every iteration gets
/// a fresh valid recipient and per-recipient limits never kick in.
const MOBILE_PREFIXES: [&str; 4] = ["+49151", "+49152", "+49157", "+49160"];

/// Arguments of `keyhaven bench tyntec`. The server under test must deliver SMS to the embedded
/// receiver: `KEYHAVEN_SMS_PROVIDER=webhook KEYHAVEN_SMS_WEBHOOK_URL=http://<receiver>/`.
#[derive(Clone, clap::Args)]
pub struct TyntecBenchArgs {
    /// Base URL of the server under test. Give it again for each further node sharing the
    /// database: user i sends through node i mod n and checks through the next node, so every
    /// check reads state another node wrote.
    #[arg(
        long = "base",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub bases: Vec<String>,
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
            .field("bases", &self.bases)
            .field("key", &"***")
            .field("concurrency", &self.concurrency)
            .field("duration", &self.duration)
            .field("warmup", &self.warmup)
            .field("receiver", &self.receiver)
            .field("json", &self.json)
            .finish()
    }
}

/// Runs the benchmark: creates a dedicated application (through the first base), drives the
/// flow, deletes the application and stops the receiver. Printing the report (table or
/// `--json`) is the caller's.
pub async fn run(args: TyntecBenchArgs) -> anyhow::Result<Report> {
    let bases = args
        .bases
        .iter()
        .map(|b| parse_base(b))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let Some(base) = bases.first().cloned() else {
        anyhow::bail!("give at least one --base");
    };
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;
    let plan = LoadPlan::new(
        concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let client = http_client(concurrency).context("building the HTTP client")?;

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
        nodes = bases.len(),
        users = concurrency,
        warmup_secs = args.warmup,
        duration_secs = args.duration,
        "benchmarking the tyntec 2FA flow"
    );

    let flow = Arc::new(Flow {
        client: client.clone(),
        otp_urls: bases
            .iter()
            .map(|b| endpoint(b, &["2fa", "v1", "otp"]))
            .collect::<anyhow::Result<_>>()?,
        bases: bases.clone(),
        key: args.key.clone(),
        application_id: application_id.clone(),
        receiver,
    });
    let driven = {
        let flow = Arc::clone(&flow);
        let users = drive(&plan, &STEPS, move |user| {
            let flow = Arc::clone(&flow);
            async move { flow.round_trip(user).await }
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
    let target = bases.iter().map(Url::as_str).collect::<Vec<_>>().join(", ");
    let mut report = Report::from_outcome("tyntec", &target, &plan, &outcome, rate_limited);
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
    /// Nodes of the server under test, at least one; `otp_urls[i]` is `bases[i]`'s send URL.
    bases: Vec<Url>,
    otp_urls: Vec<Url>,
    key: String,
    application_id: String,
    receiver: Receiver,
}

impl Flow {
    /// Which nodes `user` sends and checks through: its own, then the next one (the same one
    /// when there is only one).
    fn nodes_of(&self, user: usize) -> (usize, usize) {
        let n = self.bases.len();
        (user % n, (user + 1) % n)
    }

    /// One pass: send → deliver → check, with the round trip timed from send start to check end.
    async fn round_trip(&self, user: usize) -> Iteration {
        let (send_node, check_node) = self.nodes_of(user);
        let mut iteration = Iteration::new();
        let number = random_mobile_number(&mut rand::thread_rng());
        let started = Instant::now();

        let otp_id = match self.send(send_node, &number).await {
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
        match self.check(check_node, &otp_id, &code).await {
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
    async fn send(&self, node: usize, number: &str) -> Result<String, String> {
        let response = self
            .client
            .post(self.otp_urls[node].clone())
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
    async fn check(&self, node: usize, otp_id: &str, code: &str) -> Result<(), String> {
        let url = endpoint(&self.bases[node], &["2fa", "v1", "otp", otp_id, "check"])
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
mod tests;
