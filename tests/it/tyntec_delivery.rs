//! The delivery outbox: exactly-once across nodes, retries, and the anti-pumping limits.

use std::sync::atomic::Ordering;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;

use crate::{
    both_backends,
    harness::{assert_tyntec_rate_limited, Backend, TestApp},
    passage::{call, create_app},
    tyntec_otp::wait_for_events,
};

both_backends!(
    two_nodes_send_each_message_once,
    unavailable_provider_is_retried,
    retries_go_out_while_new_messages_keep_coming,
    per_recipient_limit_stops_pumping,
    resends_are_limited,
    country_lists_guard_destinations,
    number_ranges_and_tenants_have_hourly_caps,
);

async fn two_nodes_send_each_message_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let second = app.another_node().await;
    let numbers: Vec<String> = (0..40).map(|i| format!("+491512345{i:04}")).collect();
    let sends = numbers.iter().enumerate().map(|(i, n)| {
        let base = if i % 2 == 0 { &app.base } else { &second.base };
        let req = app
            .http
            .post(format!(
                "{base}/2fa/v1/otp?number={}&via=SMS",
                crate::harness::urlencode(n)
            ))
            .header("apikey", &app.key);
        app.send(req)
    });
    let results = join_all(sends).await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    for n in &numbers {
        app.receiver.next_for(n).await;
    }
    // Both workers poll the shared outbox: give them time to (wrongly) send anything twice.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(app.receiver.pending(), 0, "a message was sent twice");
    second.stop().await;
}

async fn unavailable_provider_is_retried(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.receiver.fail_sms.store(true, Ordering::SeqCst);
    let (status, otp) = app
        .post("/2fa/v1/otp?number=%2B4915123456789&via=SMS")
        .await;
    assert_eq!(status, 200);
    let id = otp["otpId"].as_str().unwrap();
    wait_for_events(&app, id, |e| {
        e.iter().any(|e| e["event"] == "DELIVERY_FAILED")
    })
    .await;
    app.receiver.fail_sms.store(false, Ordering::SeqCst);
    let msg = app.receiver.next_for("+4915123456789").await;
    assert_eq!(msg["channel"], "sms");
    let events = wait_for_events(&app, id, |e| e.iter().any(|e| e["event"] == "SENT")).await;
    let failed = events
        .iter()
        .find(|e| e["event"] == "DELIVERY_FAILED")
        .unwrap();
    assert!(
        failed["detail"].as_str().unwrap().contains("retrying"),
        "{failed}"
    );
    assert!(
        events.iter().all(|e| e["event"] != "FALLBACK"),
        "SMS asked for: no fallback"
    );
}

async fn retries_go_out_while_new_messages_keep_coming(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.receiver.fail_sms.store(true, Ordering::SeqCst);
    let (_, otp) = app
        .post("/2fa/v1/otp?number=%2B4915123456789&via=SMS")
        .await;
    let id = otp["otpId"].as_str().unwrap();
    wait_for_events(&app, id, |e| {
        e.iter().any(|e| e["event"] == "DELIVERY_FAILED")
    })
    .await;
    app.receiver.fail_sms.store(false, Ordering::SeqCst);
    // A new message every 50 ms keeps waking the worker; the retry (due after 1 s) still goes.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(4);
    let mut i = 0;
    while !retried(&app).await {
        assert!(tokio::time::Instant::now() < deadline, "the retry starved");
        let (status, _) = app
            .post(&format!("/2fa/v1/otp?number=%2B49151234{i:05}&via=SMS"))
            .await;
        assert_eq!(status, 200);
        i += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether the first number's message has arrived (taking it).
async fn retried(app: &TestApp) -> bool {
    tokio::time::timeout(
        std::time::Duration::from_millis(1),
        app.receiver.next_for("+4915123456789"),
    )
    .await
    .is_ok()
}

async fn per_recipient_limit_stops_pumping(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.delivery_limit_per_recipient = 2;
        c.delivery_limit_per_recipient_global = 3;
    })
    .await;
    for _ in 0..2 {
        assert_eq!(app.post("/2fa/v1/otp?number=%2B4915123456789").await.0, 200);
    }
    // The limit counts per hour: the wait is at most that hour.
    let refused = app
        .send_full(
            app.http
                .post(app.url("/2fa/v1/otp?number=%2B4915123456789"))
                .header("apikey", &app.key),
        )
        .await;
    assert_tyntec_rate_limited(&refused, 3600);
    // Other recipients are not affected.
    assert_eq!(app.post("/2fa/v1/otp?number=%2B4915198765432").await.0, 200);
}

async fn resends_are_limited(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.otp_resend_limit = 2).await;
    let (otp, _) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(app.post(&format!("/2fa/v1/otp/{id}?via=SMS")).await.0, 200);
    }
    // Past the limit the OTP can only expire: the wait is at most its validity.
    let validity_ms = otp["expire"].as_u64().unwrap() - otp["created"].as_u64().unwrap();
    let refused = app
        .send_full(
            app.http
                .post(app.url(&format!("/2fa/v1/otp/{id}?via=SMS")))
                .header("apikey", &app.key),
        )
        .await;
    assert_tyntec_rate_limited(&refused, validity_ms.div_ceil(1000));
}

async fn country_lists_guard_destinations(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.country_deny = "FR".into()).await;
    let (status, body) = app.post("/2fa/v1/otp?number=%2B33612345678").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["status"], 403);
    assert_eq!(app.post("/2fa/v1/otp?number=%2B4915123456789").await.0, 200);
    let (_, list) = app.get("/2fa/v1/otp").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the refused OTP was not stored"
    );
    // Every Passage path that sends to a number follows the same policy: passcode and
    // magic-link sign-up (no user is left behind), logins, and a change of phone.
    let p = create_app(&app, |_| {}).await;
    let denied = json!({"identifier": "+33612345678"});
    for path in [
        "/register/otp",
        "/register/magic-link",
        "/login/otp",
        "/login/magic-link",
    ] {
        let (status, body) = call(
            &app,
            Method::POST,
            &p.app_id,
            path,
            None,
            Some(denied.clone()),
        )
        .await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (403, Some("operation_not_allowed")),
            "{path}: {body}"
        );
    }
    let (status, users) = call(&app, Method::GET, &p.app_id, "/users", Some(&p.key), None).await;
    assert_eq!(
        (status.as_u16(), users["total_users"].as_i64()),
        (200, Some(0)),
        "{users}"
    );
    let user = crate::passage::sign_in(&app, &p, "fr@example.com").await;
    let token = user["auth_token"].as_str().unwrap();
    let change = json!({"new_phone": "+33612345678"});
    let (status, body) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/phone",
        Some(token),
        Some(change),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("operation_not_allowed")),
        "{body}"
    );
    app.receiver.next_for("+4915123456789").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.receiver.pending(),
        0,
        "nothing went to the denied country"
    );
}

/// Pumping walks a number range, and a leaked key sends to anyone: sends per number prefix
/// (from every tenant) and per tenant are capped per hour, answered 429 and counted.
async fn number_ranges_and_tenants_have_hourly_caps(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.delivery_limit_per_prefix = 2;
        c.delivery_prefix_digits = 7;
        c.delivery_limit_per_tenant = 4;
    })
    .await;
    let send = |key: &str, number: &str| {
        let url = app.url(&format!(
            "/2fa/v1/otp?number={}",
            crate::harness::urlencode(number)
        ));
        app.send_full(app.http.post(url).header("apikey", key))
    };
    // +49 1512 3…: two sends to the range, then it is closed, also to another tenant.
    assert_eq!(send(&app.key, "+4915123456789").await.0, 200);
    let p = create_app(&app, |s| s.allowed_identifier = "phone".into()).await;
    let (status, body) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/register/otp",
        None,
        Some(json!({"identifier": "+4915123000001"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_tyntec_rate_limited(&send(&app.key, "+4915123999999").await, 3600);
    // Other ranges go on, until the account's own cap (4, the refused send included).
    assert_eq!(send(&app.key, "+4917012345678").await.0, 200);
    assert_eq!(send(&app.key, "+4916012345678").await.0, 200);
    assert_tyntec_rate_limited(&send(&app.key, "+4915712345678").await, 3600);
    // Another account has its own cap.
    let (_, other) = app.other_account().await;
    assert_eq!(send(&other, "+4915712345678").await.0, 200);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for refused in [
        "keyhaven_send_refusals_total{limit=\"prefix\"} 1",
        "keyhaven_send_refusals_total{limit=\"tenant\"} 1",
    ] {
        assert!(metrics.contains(refused), "{refused} in {metrics}");
    }
}
