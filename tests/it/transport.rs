//! The connection layer under attack: slow or idle clients, connection floods, clients behind
//! a reverse proxy, and who may read `/metrics`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    both_backends,
    harness::{assert_passage_rate_limited, Backend, TestApp},
    passage::create_app,
};

both_backends!(
    slow_headers_are_cut_off,
    slow_bodies_answer_408_in_the_surface_shape,
    connections_beyond_the_cap_wait,
    trusted_proxies_name_the_client,
    metrics_can_have_their_own_listener_and_token,
);

/// Reads what the server sends until it closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

async fn slow_headers_are_cut_off(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.header_read_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: keyhaven\r\n")
        .await
        .unwrap();
    let closed = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(
        closed.is_some(),
        "a client stuck in its headers kept the connection"
    );
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "closed only after {waited:?}"
    );
    // Clients that finish their headers are served as before.
    assert_eq!(app.send(app.http.get(app.url("/healthz"))).await.0, 200);
}

async fn slow_bodies_answer_408_in_the_surface_shape(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.body_read_timeout_seconds = 1).await;
    let p = create_app(&app, |_| {}).await;
    let tyntec = format!(
        "POST /2fa/v1/otp HTTP/1.1\r\nHost: keyhaven\r\napikey: {}\r\n",
        app.key
    );
    let passage = format!(
        "POST /v1/apps/{}/login/magic-link HTTP/1.1\r\nHost: keyhaven\r\n",
        p.app_id
    );
    for (head, fields) in [
        (tyntec, json!(["code", "message", "status", "timestamp"])),
        (passage, json!(["code", "error"])),
    ] {
        let mut stream = TcpStream::connect(app.addr()).await.unwrap();
        let started = Instant::now();
        let request = format!(
            "{head}Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"to"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        // A byte now and then does not buy more time.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
        let answer = read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .expect("the server kept waiting for the body");
        assert!(started.elapsed() < Duration::from_secs(5), "{answer}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let mut names: Vec<&String> = body.as_object().unwrap().keys().collect();
        names.sort();
        assert_eq!(json!(names), fields, "{body}");
    }
}

async fn connections_beyond_the_cap_wait(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.max_connections = 2;
        c.header_read_timeout_seconds = 30;
    })
    .await;
    let idle = [
        TcpStream::connect(app.addr()).await.unwrap(),
        TcpStream::connect(app.addr()).await.unwrap(),
    ];
    // Give the server time to accept both.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let refused = fresh.get(app.url("/healthz")).send().await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_timeout()),
        "served beyond the cap: {refused:?}"
    );
    drop(idle);
    let fresh = reqwest::Client::new();
    let started = Instant::now();
    let served = fresh.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn trusted_proxies_name_the_client(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.rate_limit_calls = 2;
        c.rate_limit_period_seconds = 86_400;
        c.trusted_proxies = keyhaven::client_address::Cidrs::parse("127.0.0.0/8").unwrap();
    })
    .await;
    let p = create_app(&app, |_| {}).await;
    let get_app = |forwarded: &str| {
        let url = app.url(&format!("/v1/apps/{}", p.app_id));
        app.send_full(app.http.get(url).header("x-forwarded-for", forwarded))
    };
    let window = app.config.rate_limit_period_seconds;
    // Each forwarded client has its own budget; what the client itself wrote left of the
    // proxy's entry does not count.
    for client in ["203.0.113.7", "6.6.6.6, 203.0.113.8"] {
        for _ in 0..2 {
            assert_eq!(get_app(client).await.0, 200, "{client}");
        }
        assert_passage_rate_limited(&get_app(client).await, window);
    }
    assert_passage_rate_limited(&get_app("1.1.1.1, 203.0.113.8").await, window);
    // IPv6 clients are counted by /64.
    assert_eq!(get_app("2001:db8:0:1::1").await.0, 200);
    assert_eq!(get_app("2001:db8:0:1::2").await.0, 200);
    assert_passage_rate_limited(&get_app("2001:db8:0:1:ffff::3").await, window);
    assert_eq!(get_app("2001:db8:0:2::1").await.0, 200);

    // Without trusted proxies the header is the client's own word, and ignored.
    let direct = TestApp::spawn_with(b, |c| {
        c.rate_limit_calls = 2;
        c.rate_limit_period_seconds = 86_400;
    })
    .await;
    let p = create_app(&direct, |_| {}).await;
    let url = direct.url(&format!("/v1/apps/{}", p.app_id));
    for (i, client) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .iter()
        .enumerate()
    {
        let answer = direct
            .send_full(direct.http.get(&url).header("x-forwarded-for", *client))
            .await;
        if i < 2 {
            assert_eq!(answer.0, 200);
        } else {
            assert_passage_rate_limited(&answer, window);
        }
    }
}

async fn metrics_can_have_their_own_listener_and_token(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.metrics_token = Some(keyhaven::config::Secret("scrape-me".into()));
    })
    .await;
    let (status, body) = app.send(app.http.get(app.url("/metrics"))).await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (404, &json!("route_not_found"))
    );
    let metrics = format!("{}/metrics", app.metrics_base().unwrap());
    for wrong in [None, Some("scrape-you")] {
        let mut request = app.http.get(&metrics);
        if let Some(token) = wrong {
            request = request.bearer_auth(token);
        }
        let (status, body) = app.send(request).await;
        assert_eq!(
            (status.as_u16(), &body["code"]),
            (401, &json!("unauthorized"))
        );
    }
    let scraped = app
        .http
        .get(&metrics)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("keyhaven_http_requests"));
    // The API is not on the metrics listener.
    let api = format!("{}/healthz", app.metrics_base().unwrap());
    assert_eq!(app.http.get(api).send().await.unwrap().status(), 404);
}
