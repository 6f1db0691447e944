//! The RS256 signing ceiling of this machine: how many auth tokens per second the server's
//! signer can produce, to compare token-issuing flows against.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::crypto::rs256::SigningKey;

#[derive(Debug, Clone, clap::Args)]
pub struct RsaBenchArgs {
    /// Signing threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
}

/// Signs JWT-sized payloads on `threads` threads for `seconds`; returns signatures per second.
pub fn run(args: &RsaBenchArgs) -> anyhow::Result<f64> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (key, _) = SigningKey::generate()?;
    let key = std::sync::Arc::new(key);
    let deadline = Instant::now() + Duration::from_secs(args.seconds.max(1));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let claims = json!({"sub": "user", "aud": ["app"], "iat": 0, "exp": 3600});
                let mut n = 0u64;
                while Instant::now() < deadline {
                    key.sign_jwt(&claims)?;
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let mut total = 0u64;
    for w in workers {
        total += w
            .join()
            .map_err(|_| anyhow::anyhow!("signing thread panicked"))??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
