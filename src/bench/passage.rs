//! `keyhaven bench passage`: load on the Passage passcode login (`login/otp` by SMS, take the
//! code from the embedded receiver, `otp/activate` it for a session, refresh the session)
//! against a running server. Each simulated user signs up once (`register/otp`) on its first
//! pass. Each pass signs two RS256 tokens.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::Context as _;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::{
    drive, http_client, post_json, start_receiver, tyntec::random_mobile_number, Iteration,
    LoadPlan, Receiver, Report, ROUND_TRIP,
};

const SEND: &str = "send";
const DELIVER: &str = "deliver";
const ACTIVATE: &str = "activate";
const REFRESH: &str = "refresh";
const STEPS: [&str; 5] = [SEND, DELIVER, ACTIVATE, REFRESH, ROUND_TRIP];

/// Arguments of `keyhaven bench passage`. The app must take phone numbers
/// (`app create --allowed-identifier both`), and the server must deliver SMS to the receiver.
#[derive(Debug, Clone, clap::Args)]
pub struct PassageBenchArgs {
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// The Passage app id.
    #[arg(long, value_name = "APP_ID")]
    pub app: String,
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub warmup: u64,
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9099")]
    pub receiver: String,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PassageBenchArgs) -> anyhow::Result<Report> {
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;
    let plan = LoadPlan::new(
        concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let client = http_client(concurrency)?;
    let receiver = start_receiver(args.receiver.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", args.receiver))?;
    let base = format!("{}/v1/apps/{}", args.base.trim_end_matches('/'), args.app);
    let mut rng = rand::thread_rng();
    let flow = Arc::new(Flow {
        client,
        base: base.clone(),
        receiver,
        users: (0..concurrency)
            .map(|_| (random_mobile_number(&mut rng), AtomicBool::new(false)))
            .collect(),
    });
    let users = {
        let flow = Arc::clone(&flow);
        drive(&plan, &STEPS, move |index| {
            let flow = Arc::clone(&flow);
            async move { flow.round_trip(index).await }
        })
    };
    let outcome = users.await?;
    if let Ok(flow) = Arc::try_unwrap(flow) {
        flow.receiver.shutdown().await;
    }
    Ok(Report::from_outcome("passage", &base, &plan, &outcome, 0))
}

struct Flow {
    client: reqwest::Client,
    base: String,
    receiver: Receiver,
    /// Each simulated user's phone number, and whether it has signed up.
    users: Vec<(String, AtomicBool)>,
}

impl Flow {
    async fn round_trip(&self, index: usize) -> Iteration {
        let mut it = Iteration::new();
        let (number, signed_up) = &self.users[index % self.users.len()];
        let path = if signed_up.load(Ordering::Relaxed) {
            "/login/otp"
        } else {
            "/register/otp"
        };
        let start = Instant::now();
        let step = Instant::now();
        let otp_id = match self.post(path, json!({"identifier": number}), 201).await {
            Ok(body) => body["otp_id"].as_str().unwrap_or_default().to_string(),
            Err(kind) => return it.abandon(SEND, kind),
        };
        signed_up.store(true, Ordering::Relaxed);
        it.ok(SEND, step.elapsed());
        let step = Instant::now();
        let code = match self.receiver.wait_for(number, Duration::from_secs(5)).await {
            Ok(text) => first_code(&text).unwrap_or_default().to_string(),
            Err(_) => return it.abandon(DELIVER, "timeout".into()),
        };
        it.ok(DELIVER, step.elapsed());
        let step = Instant::now();
        let body = json!({"otp": code, "otp_id": otp_id});
        let refresh_token = match self.post("/otp/activate", body, 200).await {
            Ok(body) => body["auth_result"]["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Err(kind) => return it.abandon(ACTIVATE, kind),
        };
        it.ok(ACTIVATE, step.elapsed());
        let step = Instant::now();
        if let Err(kind) = self
            .post("/tokens", json!({"refresh_token": refresh_token}), 201)
            .await
        {
            return it.abandon(REFRESH, kind);
        }
        it.ok(REFRESH, step.elapsed());
        it.ok(ROUND_TRIP, start.elapsed());
        it.complete();
        it
    }

    async fn post(&self, path: &str, body: Value, expect: u16) -> Result<Value, String> {
        post_json(&self.client, &format!("{}{path}", self.base), &body, expect).await
    }
}

/// The first run of four or more digits in a message.
fn first_code(text: &str) -> Option<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() >= 4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_in_messages() {
        assert_eq!(
            super::first_code("Your Shop code is 042718. It expires in 5 minutes."),
            Some("042718")
        );
        assert_eq!(super::first_code("no digits"), None);
    }
}
