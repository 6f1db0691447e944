//! Bad input gets a clear JSON error with the right status, never a 500 or an HTML page.

use serde_json::Value;

use crate::{
    both_backends,
    harness::{assert_tyntec_rate_limited, Backend, TestApp},
};

both_backends!(
    bad_requests_get_json_errors,
    keys_are_checked,
    throttling_answers_429,
    revoked_keys_stop_within_a_second,
);

fn assert_error(status: reqwest::StatusCode, body: &Value, expected: u16, what: &str) {
    assert_eq!(status.as_u16(), expected, "{what}: {body}");
    assert_eq!(body["status"], expected, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
    assert!(body["code"].is_string(), "{what}: {body}");
    assert!(
        body["timestamp"].as_str().unwrap().ends_with('Z'),
        "{what}: {body}"
    );
}

async fn bad_requests_get_json_errors(b: Backend) {
    let app = TestApp::spawn(b).await;
    for (path, expected) in [
        ("/2fa/v1/otp", 400),
        ("/2fa/v1/otp?number=", 400),
        ("/2fa/v1/otp?number=hello", 400),
        ("/2fa/v1/otp?number=%2B12", 400),
        ("/2fa/v1/otp?number=015123456789", 400),
        ("/2fa/v1/otp?number=015123456789&country=ZZ", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&via=FAX", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&pinLength=11", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&pinLength=3", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&pinLength=four", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&otpCode=12", 400),
        ("/2fa/v1/otp?number=%2B4915123456789&language=english", 400),
        (
            "/2fa/v1/otp?number=%2B4915123456789&text=no%20placeholder",
            400,
        ),
        (
            "/2fa/v1/otp?number=%2B4915123456789&applicationId=nope",
            400,
        ),
        (
            "/2fa/v1/otp/00000000-0000-0000-0000-000000000000/check?otpCode=1234",
            404,
        ),
        ("/2fa/v1/otp/not-a-uuid/check?otpCode=1234", 404),
        ("/2fa/v1/otp/00000000-0000-0000-0000-000000000000", 404),
        ("/2fa/v1/nothing/here", 404),
    ] {
        let (status, body) = app.post(path).await;
        assert_error(status, &body, expected, path);
    }
    // A national number with its country is fine.
    let (status, body) = app
        .post("/2fa/v1/otp?number=0151%2023456789&country=DE&via=SMS")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["number"], "+4915123456789");

    let (otp, _) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let (status, body) = app.post(&format!("/2fa/v1/otp/{id}/check")).await;
    assert_error(status, &body, 400, "check without otpCode");

    // Malformed, oversized and wrongly typed bodies.
    let raw = |body: &'static str, ct: &'static str| {
        app.send(
            app.http
                .post(app.url("/2fa/v1/otp"))
                .header("apikey", &app.key)
                .header("content-type", ct)
                .body(body),
        )
    };
    let (status, body) = raw("{\"number\": ", "application/json").await;
    assert_error(status, &body, 400, "malformed JSON");
    let (status, body) = raw("[1, 2]", "application/json").await;
    assert_error(status, &body, 400, "JSON that is not an object");
    let (status, body) = raw("number=+4915123456789", "text/plain").await;
    assert_error(status, &body, 415, "wrong content type");
    let big = "x".repeat(100 * 1024);
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/2fa/v1/otp"))
                .header("apikey", &app.key)
                .header("content-type", "application/json")
                .body(format!("{{\"number\": \"{big}\"}}")),
        )
        .await;
    assert_error(status, &body, 413, "oversized body");
    // A JSON body works as well as query parameters.
    let (status, body) = app
        .post_json(
            "/2fa/v1/otp",
            &serde_json::json!({"number": "+4915123456789", "via": "SMS", "pinLength": 6}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Unsupported method on a known route.
    let (status, body) = app
        .send(
            app.http
                .put(app.url("/2fa/v1/otp"))
                .header("apikey", &app.key),
        )
        .await;
    assert_error(status, &body, 405, "PUT /otp");
    // Nothing was half-written by the failures above: three OTPs exist.
    let (_, list) = app.get("/2fa/v1/otp").await;
    assert_eq!(list.as_array().unwrap().len(), 3);
}

async fn keys_are_checked(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/2fa/v1/otp?number=%2B4915123456789")),
        )
        .await;
    assert_error(status, &body, 401, "no key");
    let (status, body) = app
        .send(
            app.http
                .post(app.url("/2fa/v1/otp?number=%2B4915123456789"))
                .header("apiKey", "wrong"),
        )
        .await;
    assert_error(status, &body, 401, "wrong key");
    // The key as a query parameter, and the header in any case.
    let (status, _) = app
        .send(
            app.http
                .get(app.url(&format!("/2fa/v1/application/?apiKey={}", app.key))),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(
            app.http
                .get(app.url("/2fa/v1/application/"))
                .header("APIKEY", &app.key),
        )
        .await;
    assert_eq!(status, 200);
}

async fn throttling_answers_429(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.rate_limit_calls = 3;
        // Windows are fixed: a day-long one keeps the test from straddling two of them.
        c.rate_limit_period_seconds = 86_400;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("/2fa/v1/application/").await.0, 200);
    }
    let window = app.config.rate_limit_period_seconds;
    let refused = app
        .send_full(
            app.http
                .get(app.url("/2fa/v1/application/"))
                .header("apikey", &app.key),
        )
        .await;
    assert_tyntec_rate_limited(&refused, window);
    // Guessing keys is throttled per client address.
    for _ in 0..3 {
        let (status, _) = app
            .send(
                app.http
                    .get(app.url("/2fa/v1/application/"))
                    .header("apikey", "guess"),
            )
            .await;
        assert_eq!(status, 401);
    }
    let guessing = app
        .send_full(
            app.http
                .get(app.url("/2fa/v1/application/"))
                .header("apikey", "guess"),
        )
        .await;
    assert_tyntec_rate_limited(&guessing, window);
    // Another key has its own budget.
    let (_, other) = app.other_account().await;
    let (status, _) = app
        .send(
            app.http
                .get(app.url("/2fa/v1/application/"))
                .header("apikey", other),
        )
        .await;
    assert_eq!(status, 200);
}

/// Keys are cached per node; a revocation (from the CLI, or another node) holds everywhere
/// within a second.
async fn revoked_keys_stop_within_a_second(b: Backend) {
    let app = TestApp::spawn(b).await;
    let second = app.another_node().await;
    let (key_id, key) = keyhaven::tyntec::accounts::create_key(&app.store, &app.account_id, "ci")
        .await
        .unwrap();
    let list = |base: &str| {
        let url = format!("{base}/2fa/v1/application/");
        app.send(app.http.get(url).header("apikey", &key))
    };
    // Both nodes have the key cached now.
    assert_eq!(list(&app.base).await.0, 200);
    assert_eq!(list(&second.base).await.0, 200);
    app.store
        .revoke_api_key(&key_id, keyhaven::domain::now_ms())
        .await
        .unwrap();
    tokio::time::sleep(keyhaven::key_cache::TTL).await;
    for base in [&app.base, &second.base] {
        let (status, body) = list(base).await;
        assert_eq!(status, 401, "{body}");
    }
}
