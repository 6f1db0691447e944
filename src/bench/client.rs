//! The load generator's HTTP side: one client setup and the POST every Passage flow makes.

use std::time::Duration;

use super::RATE_LIMITED;

/// A client for `concurrency` virtual users: a pooled connection each, no Nagle delay.
pub fn http_client(concurrency: usize) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
}

/// POSTs `body` as JSON: the answer's JSON when its status is `expect`, else the kind of
/// failure to record (`http 429` apart, see [`RATE_LIMITED`]).
pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    expect: u16,
) -> Result<serde_json::Value, String> {
    let res = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| String::from(if e.is_timeout() { "timeout" } else { "connect" }))?;
    let status = res.status().as_u16();
    if status == 429 {
        return Err(RATE_LIMITED.into());
    }
    if status != expect {
        return Err(format!("http {status}"));
    }
    res.json().await.map_err(|_| "bad json".into())
}
