//! `keyhaven bench passkey`: load on the Passage passkey login (`login/webauthn/start`, the
//! software authenticator signs, `login/webauthn/finish`) against a running server. Each
//! simulated user registers one passkey before the run. Each pass verifies one P-256
//! signature and signs one RS256 token, and sends no message.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use serde_json::{json, Value};
use tokio::{sync::Mutex, time::Instant};

use super::{
    authenticator::SoftAuthenticator, drive, http_client, post_json, Iteration, LoadPlan, Report,
    ROUND_TRIP,
};

const START: &str = "start";
const SIGN: &str = "sign";
const FINISH: &str = "finish";
const STEPS: [&str; 4] = [START, SIGN, FINISH, ROUND_TRIP];

/// Arguments of `keyhaven bench passkey`. The app's `auth_origin` must be `--origin`.
#[derive(Debug, Clone, clap::Args)]
pub struct PasskeyBenchArgs {
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    pub base: String,
    /// The Passage app id.
    #[arg(long, value_name = "APP_ID")]
    pub app: String,
    /// The page origin the authenticator reports (the app's `auth_origin`).
    #[arg(long, value_name = "ORIGIN", default_value = "http://localhost:3000")]
    pub origin: String,
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub warmup: u64,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: PasskeyBenchArgs) -> anyhow::Result<Report> {
    let concurrency = usize::try_from(args.concurrency).context("concurrency")?;
    let plan = LoadPlan::new(
        concurrency,
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let client = http_client(concurrency)?;
    let base = format!("{}/v1/apps/{}", args.base.trim_end_matches('/'), args.app);
    let api = Api { client, base };
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let mut users = Vec::with_capacity(concurrency);
    for index in 0..concurrency {
        let email = format!("passkey-{}-{index}@bench.example", &run_id[..8]);
        let mut authenticator = SoftAuthenticator::new(&args.origin)?;
        let user_id = api
            .register(&mut authenticator, &email)
            .await
            .with_context(|| format!("registering a passkey for {email}"))?;
        users.push(Mutex::new(User {
            email,
            user_id,
            authenticator,
        }));
    }
    let flow = Arc::new(Flow { api, users });
    let outcome = {
        let flow = Arc::clone(&flow);
        drive(&plan, &STEPS, move |index| {
            let flow = Arc::clone(&flow);
            async move { flow.round_trip(index).await }
        })
        .await?
    };
    Ok(Report::from_outcome(
        "passkey",
        &flow.api.base,
        &plan,
        &outcome,
        0,
    ))
}

struct User {
    email: String,
    user_id: String,
    authenticator: SoftAuthenticator,
}

struct Flow {
    api: Api,
    users: Vec<Mutex<User>>,
}

impl Flow {
    async fn round_trip(&self, index: usize) -> Iteration {
        let mut it = Iteration::new();
        // Each simulated user runs one pass at a time: the lock is never contended.
        let mut user = self.users[index % self.users.len()].lock().await;
        let start = Instant::now();
        let step = Instant::now();
        let body = json!({"identifier": user.email});
        let handshake = match self.api.post("/login/webauthn/start", body, 200).await {
            Ok(body) => body["handshake"].clone(),
            Err(kind) => return it.abandon(START, kind),
        };
        it.ok(START, step.elapsed());
        let step = Instant::now();
        let response = match user.authenticator.login(&handshake["challenge"]).await {
            Ok(response) => response,
            Err(_) => return it.abandon(SIGN, "authenticator".into()),
        };
        it.ok(SIGN, step.elapsed());
        let step = Instant::now();
        let body = json!({
            "handshake_id": handshake["id"],
            "handshake_response": response,
            "user_id": user.user_id,
        });
        if let Err(kind) = self.api.post("/login/webauthn/finish", body, 200).await {
            return it.abandon(FINISH, kind);
        }
        it.ok(FINISH, step.elapsed());
        it.ok(ROUND_TRIP, start.elapsed());
        it.complete();
        it
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// Signs `email` up with a passkey; the user id.
    async fn register(
        &self,
        authenticator: &mut SoftAuthenticator,
        email: &str,
    ) -> anyhow::Result<String> {
        let started = self
            .post(
                "/register/webauthn/start",
                json!({"identifier": email}),
                200,
            )
            .await
            .map_err(anyhow::Error::msg)?;
        let user_id = started["user"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let response = authenticator
            .register(&started["handshake"]["challenge"])
            .await?;
        let body = json!({
            "handshake_id": started["handshake"]["id"],
            "handshake_response": response,
            "user_id": user_id,
        });
        self.post("/register/webauthn/finish", body, 201)
            .await
            .map_err(anyhow::Error::msg)?;
        Ok(user_id)
    }

    async fn post(&self, path: &str, body: Value, expect: u16) -> Result<Value, String> {
        post_json(&self.client, &format!("{}{path}", self.base), &body, expect).await
    }
}
