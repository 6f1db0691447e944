//! The OTP lifecycle of the tyntec 2FA v1 API.

use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{code_in, spoken_code_in, Backend, TestApp},
};

both_backends!(
    seed_example_send_and_check,
    otp_resource_has_the_seed_fields,
    wrong_code_then_right_code,
    last_failing_attempt_locks,
    expiry_answers_403_then_410,
    delete_kills_the_code,
    resend_sends_the_same_code_again,
    auto_falls_back_to_voice_when_sms_fails,
    auto_calls_landlines,
    templates_follow_language_and_country,
    alphanumeric_codes,
    caller_chosen_code_and_integer_typed_check,
    events_record_the_history,
    list_and_filter_otps,
    tenant_isolation,
    state_survives_a_restart,
    expired_otps_are_pruned,
    wrong_codes_for_a_number_spend_one_budget,
);

/// The seed: `POST /otp?number=004989202451100`, then check → 202 VERIFIED.
async fn seed_example_send_and_check(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, otp) = app.post("/2fa/v1/otp?number=004989202451100").await;
    assert_eq!(status, 200, "{otp}");
    assert_eq!(otp["number"], "+4989202451100");
    assert_eq!(otp["otpStatus"], "ACTIVE");
    assert_eq!(otp["attemptCount"], 0);
    // A Munich landline: AUTO calls it, reading the code digit by digit.
    let msg = app.receiver.next_for("+4989202451100").await;
    assert_eq!(msg["channel"], "voice");
    let code = spoken_code_in(msg["text"].as_str().unwrap());
    assert_eq!(code.len(), 4);

    let id = otp["otpId"].as_str().unwrap();
    let (status, checked) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 202, "{checked}");
    assert_eq!(checked["otpStatus"], "VERIFIED");
    assert_eq!(checked["attemptCount"], 1);
    assert_eq!(checked["otpId"], otp["otpId"]);
    assert_eq!(checked["expire"], otp["expire"]);
}

async fn otp_resource_has_the_seed_fields(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, _) = app.send_otp("referenceId=order-7", "+4915123456789").await;
    let obj = otp.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accountId",
            "applicationId",
            "attemptCount",
            "created",
            "expire",
            "number",
            "otpId",
            "otpStatus",
            "referenceId",
            "timestampCreated",
            "timestampExpire"
        ]
    );
    assert_eq!(otp["accountId"], app.account_id.as_str());
    assert_eq!(otp["referenceId"], "order-7");
    let created = otp["created"].as_i64().unwrap();
    let expire = otp["expire"].as_i64().unwrap();
    assert_eq!(expire - created, 300_000, "default application: 300 s");
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    assert_eq!(otp["timestampCreated"], iso(created));
    assert_eq!(otp["timestampExpire"], iso(expire));
    uuid::Uuid::parse_str(otp["otpId"].as_str().unwrap()).unwrap();
    // The code itself is never returned.
    assert!(!otp.to_string().to_lowercase().contains("code\""));
}

async fn wrong_code_then_right_code(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let code = code_in(&text);
    let wrong = if code == "0000" { "1111" } else { "0000" };
    let id = otp["otpId"].as_str().unwrap();
    let (status, body) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={wrong}"))
        .await;
    assert_eq!(status, 401, "{body}");
    let (_, now) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(now["attemptCount"], 1);
    assert_eq!(now["otpStatus"], "ACTIVE");
    let (status, body) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["attemptCount"], 2);
    // Any later check, right or wrong, is 410 and counts nothing.
    for c in [code.as_str(), wrong] {
        let (status, _) = app
            .post(&format!("/2fa/v1/otp/{id}/check?otpCode={c}"))
            .await;
        assert_eq!(status, 410);
    }
    let (_, after) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(after["attemptCount"], 2);
    assert_eq!(after["otpStatus"], "VERIFIED");
}

async fn last_failing_attempt_locks(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let code = code_in(&text);
    let wrong = if code == "9999" { "8888" } else { "9999" };
    let id = otp["otpId"].as_str().unwrap();
    let check = |c: String| {
        let app = &app;
        async move {
            app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={c}"))
                .await
        }
    };
    assert_eq!(check(wrong.into()).await.0, 401);
    assert_eq!(check(wrong.into()).await.0, 401);
    let (status, body) = check(wrong.into()).await;
    assert_eq!(status, 403, "third failure of 3 attempts: {body}");
    assert_eq!(
        check(code.clone()).await.0,
        410,
        "locked: even the right code"
    );
    let (_, after) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(after["otpStatus"], "TOO_MANY_ATTEMPTS");
    assert_eq!(after["attemptCount"], 3);
}

async fn expiry_answers_403_then_410(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, created) = app
        .post_json(
            "/2fa/v1/application/",
            &json!({"name": "fast", "expire": 1}),
        )
        .await;
    let app_id = created["applicationId"].as_str().unwrap();
    let (otp, text) = app
        .send_otp(&format!("applicationId={app_id}&via=SMS"), "+4915123456789")
        .await;
    assert_eq!(
        otp["expire"].as_i64().unwrap() - otp["created"].as_i64().unwrap(),
        1000
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let id = otp["otpId"].as_str().unwrap();
    let (_, status_now) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(status_now["otpStatus"], "EXPIRED");
    let code = code_in(&text);
    let (status, _) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 410);
    // Expiry is recorded once, by the check that found it.
    let (_, events) = app.get(&format!("/2fa/v1/otp/{id}/events")).await;
    let expired = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "EXPIRED");
    assert_eq!(expired.count(), 1, "{events}");
    let (_, after) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(after["attemptCount"], 0, "expired checks count no attempt");
}

async fn delete_kills_the_code(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let (status, deleted) = app.delete(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["otpId"], id);
    let (_, events) = app.get(&format!("/2fa/v1/otp/{id}/events")).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "DELETED"),
        "{events}"
    );
    let code = code_in(&text);
    let (status, _) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 410);
    assert_eq!(app.get(&format!("/2fa/v1/otp/{id}")).await.0, 404);
    assert_eq!(app.delete(&format!("/2fa/v1/otp/{id}")).await.0, 404);
}

async fn resend_sends_the_same_code_again(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, first) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let (status, resent) = app
        .post(&format!("/2fa/v1/otp/{id}?via=SMS&Sender=Shop"))
        .await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["otpId"], id);
    let msg = app.receiver.next_for("+4915123456789").await;
    assert_eq!(code_in(msg["text"].as_str().unwrap()), code_in(&first));
    assert_eq!(msg["sender"], "Shop");
    wait_for_events(&app, id, |events| {
        events.iter().filter(|e| e["event"] == "SENT").count() == 2
    })
    .await;
    let (_, events) = app.get(&format!("/2fa/v1/otp/{id}/events")).await;
    let resend = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "RESEND");
    assert_eq!(resend.unwrap()["detail"], "via SMS", "{events}");
    // The resent code still verifies.
    let code = code_in(&first);
    assert_eq!(
        app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
            .await
            .0,
        202
    );
    // A finished OTP cannot be resent.
    assert_eq!(app.post(&format!("/2fa/v1/otp/{id}")).await.0, 410);
}

async fn auto_falls_back_to_voice_when_sms_fails(b: Backend) {
    let app = TestApp::spawn(b).await;
    app.receiver
        .fail_sms
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, otp) = app.post("/2fa/v1/otp?number=%2B4915123456789").await;
    assert_eq!(status, 200);
    let msg = app.receiver.next_for("+4915123456789").await;
    assert_eq!(msg["channel"], "voice");
    let code = spoken_code_in(msg["text"].as_str().unwrap());
    let id = otp["otpId"].as_str().unwrap();
    let events = wait_for_events(&app, id, |e| e.iter().any(|e| e["event"] == "SENT")).await;
    let fallback = events.iter().find(|e| e["event"] == "FALLBACK").unwrap();
    assert_eq!(fallback["channel"], "SMS");
    assert_eq!(fallback["provider"], "webhook");
    let sent = events.iter().find(|e| e["event"] == "SENT").unwrap();
    assert_eq!(sent["channel"], "VOICE");
    assert_eq!(
        app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
            .await
            .0,
        202
    );
}

async fn auto_calls_landlines(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, otp) = app.post("/2fa/v1/otp?number=%2B4930123456").await;
    let msg = app.receiver.next_for(otp["number"].as_str().unwrap()).await;
    assert_eq!(msg["channel"], "voice");
    let (_, otp) = app.post("/2fa/v1/otp?number=%2B4930123456&via=SMS").await;
    let msg = app.receiver.next_for(otp["number"].as_str().unwrap()).await;
    assert_eq!(msg["channel"], "sms", "an explicit channel is respected");
}

async fn templates_follow_language_and_country(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, _) = app
        .post("/2fa/v1/application/default/language?language=de&template=Ihr%20Code%20%7B%7BOTP%7D%7D%20gilt%20%7B%7BSEC%7D%7D%20s")
        .await;
    assert_eq!(status, 200);
    // A German number with no language: the country's language.
    let (_, text) = app.send_otp("via=SMS", "+4915123456789").await;
    assert!(
        text.starts_with("Ihr Code ") && text.ends_with(" gilt 300 s"),
        "{text}"
    );
    // An explicit language wins.
    let (_, text) = app.send_otp("via=SMS&language=en", "+4915123456789").await;
    assert!(
        text.starts_with("OTP code: ") && text.contains("Valid for 300 seconds"),
        "{text}"
    );
    // An explicit text wins over everything.
    let (_, text) = app
        .send_otp(
            "via=SMS&language=de&text=Use%20%7B%7BOTP%7D%7D%20now",
            "+4915123456789",
        )
        .await;
    assert!(text.starts_with("Use ") && text.ends_with(" now"), "{text}");
    // A voice template for calls.
    let (status, _) = app
        .post_json(
            "/2fa/v1/application/default/language",
            &json!({"language": "de-voice", "template": "Ihr Code lautet {{OTP}}."}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, text) = app.send_otp("via=VOICE", "+4915123456789").await;
    assert!(text.starts_with("Ihr Code lautet "), "{text}");
    // Deleting the language falls back to English.
    let (status, edited) = app
        .delete("/2fa/v1/application/default/language?language=de")
        .await;
    assert_eq!(status, 200);
    assert!(edited["template"].get("de").is_none());
    let (_, text) = app.send_otp("via=SMS", "+4915123456789").await;
    assert!(text.starts_with("OTP code: "), "{text}");
}

async fn alphanumeric_codes(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (_, created) = app
        .post_json(
            "/2fa/v1/application/",
            &json!({"name": "alnum", "alphanumeric": true, "pinLength": 8,
                    "template": {"en": "code {{OTP}}"}}),
        )
        .await;
    let app_id = created["applicationId"].as_str().unwrap();
    let (otp, text) = app
        .send_otp(&format!("applicationId={app_id}&via=SMS"), "+4915123456789")
        .await;
    let code = text.strip_prefix("code ").unwrap().to_string();
    assert_eq!(code.len(), 8);
    assert!(code
        .chars()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
    let id = otp["otpId"].as_str().unwrap();
    let lower = code.to_lowercase();
    assert_eq!(
        app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={lower}"))
            .await
            .0,
        202
    );
    // pinLength on the request overrides the application's.
    let (_, text) = app
        .send_otp(
            &format!("applicationId={app_id}&via=SMS&pinLength=10"),
            "+4915123456789",
        )
        .await;
    assert_eq!(text.strip_prefix("code ").unwrap().len(), 10);
}

async fn caller_chosen_code_and_integer_typed_check(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS&otpCode=0427", "+4915123456789").await;
    assert!(text.contains("0427"), "{text}");
    let id = otp["otpId"].as_str().unwrap();
    // The connector types otpCode as an integer: 427 means 0427.
    let (status, body) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode=427"))
        .await;
    assert_eq!(status, 202, "{body}");
}

async fn events_record_the_history(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let code = code_in(&text);
    wait_for_events(&app, id, |e| e.iter().any(|e| e["event"] == "SENT")).await;
    app.post(&format!("/2fa/v1/otp/{id}/check?otpCode=00000"))
        .await;
    app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    let (status, events) = app.get(&format!("/2fa/v1/otp/{id}/events")).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CREATED", "SENT", "CHECK_FAILED", "CHECK_VERIFIED"]);
    let sent = &events[1];
    assert_eq!(sent["channel"], "SMS");
    assert_eq!(sent["provider"], "webhook");
    assert!(sent["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(sent["created"].as_i64().unwrap() >= otp["created"].as_i64().unwrap());
    // No event ever holds the code.
    assert!(!events.to_string().contains(&code));
}

async fn list_and_filter_otps(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (a, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let (_, _) = app.send_otp("via=SMS", "+4915198765432").await;
    let id = a["otpId"].as_str().unwrap();
    let code = code_in(&text);
    app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    let (_, all) = app.get("/2fa/v1/otp").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, one) = app.get("/2fa/v1/otp?number=%2B4915123456789").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["otpId"], id);
    let (_, verified) = app.get("/2fa/v1/otp?otpStatus=VERIFIED").await;
    assert_eq!(verified.as_array().unwrap().len(), 1);
    let (_, active) = app.get("/2fa/v1/otp?otpStatus=ACTIVE").await;
    assert_eq!(active[0]["number"], "+4915198765432");
    assert_eq!(app.get("/2fa/v1/otp?otpStatus=NOPE").await.0, 400);
}

async fn tenant_isolation(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (otp, text) = app.send_otp("via=SMS", "+4915123456789").await;
    let id = otp["otpId"].as_str().unwrap();
    let (_, created) = app
        .post_json("/2fa/v1/application/", &json!({"name": "mine"}))
        .await;
    let app_id = created["applicationId"].as_str().unwrap();
    let (_, other_key) = app.other_account().await;
    let as_other = |method: reqwest::Method, path: String| {
        let req = app
            .http
            .request(method, app.url(&path))
            .header("apiKey", &other_key);
        app.send(req)
    };
    let code = code_in(&text);
    for (method, path) in [
        (reqwest::Method::GET, format!("/2fa/v1/otp/{id}")),
        (
            reqwest::Method::POST,
            format!("/2fa/v1/otp/{id}/check?otpCode={code}"),
        ),
        (reqwest::Method::GET, format!("/2fa/v1/otp/{id}/events")),
        (reqwest::Method::POST, format!("/2fa/v1/otp/{id}")),
        (reqwest::Method::DELETE, format!("/2fa/v1/otp/{id}")),
        (
            reqwest::Method::GET,
            format!("/2fa/v1/application/{app_id}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/2fa/v1/application/{app_id}"),
        ),
    ] {
        let (status, body) = as_other(method.clone(), path.clone()).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (_, list) = as_other(reqwest::Method::GET, "/2fa/v1/otp".into()).await;
    assert_eq!(list, json!([]));
    let (_, apps) = as_other(reqwest::Method::GET, "/2fa/v1/application/".into()).await;
    assert_eq!(
        apps.as_array().unwrap().len(),
        1,
        "only B's own default application"
    );
    // B's failed attempts did not touch A's OTP, which still verifies.
    let (status, body) = app
        .post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["attemptCount"], 1);
}

async fn state_survives_a_restart(b: Backend) {
    let mut app = TestApp::spawn(b).await;
    let (_, created) = app
        .post_json(
            "/2fa/v1/application/",
            &json!({"name": "kept", "pinLength": 6}),
        )
        .await;
    let app_id = created["applicationId"].as_str().unwrap().to_string();
    let (otp, text) = app
        .send_otp(&format!("applicationId={app_id}&via=SMS"), "+4915123456789")
        .await;
    let id = otp["otpId"].as_str().unwrap().to_string();
    app.restart().await;
    let (status, again) = app.get(&format!("/2fa/v1/otp/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(again, otp);
    let (status, kept) = app.get(&format!("/2fa/v1/application/{app_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(kept["pinLength"], 6);
    let code = code_in(&text);
    assert_eq!(code.len(), 6);
    assert_eq!(
        app.post(&format!("/2fa/v1/otp/{id}/check?otpCode={code}"))
            .await
            .0,
        202
    );
}

async fn expired_otps_are_pruned(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (old, _) = app.send_otp("via=SMS", "+4915123456789").await;
    let (kept, _) = app.send_otp("via=SMS", "+4915198765432").await;
    let old_id = old["otpId"].as_str().unwrap();
    // As if the housekeeping ran a retention period after `old` expired but before `kept` did.
    let cutoff = old["expire"].as_i64().unwrap() + 1;
    assert!(cutoff <= kept["expire"].as_i64().unwrap());
    app.store.prune_otps(cutoff).await.unwrap();
    assert_eq!(app.get(&format!("/2fa/v1/otp/{old_id}")).await.0, 404);
    assert_eq!(
        app.get(&format!("/2fa/v1/otp/{old_id}/events")).await.0,
        404
    );
    let kept_id = kept["otpId"].as_str().unwrap();
    assert_eq!(app.get(&format!("/2fa/v1/otp/{kept_id}")).await.0, 200);
}

/// Polls the events of an OTP until `done` holds (deliveries are asynchronous).
pub async fn wait_for_events(
    app: &TestApp,
    id: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..100 {
        let (_, events) = app.get(&format!("/2fa/v1/otp/{id}/events")).await;
        let events = events.as_array().unwrap().clone();
        if done(&events) {
            return events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("events of {id} never reached the expected state");
}

/// Wrong codes count against the recipient across all of an account's OTPs: past the budget,
/// even the right code of a fresh OTP answers 429 (and counts no attempt), while other
/// recipients and other accounts go on.
async fn wrong_codes_for_a_number_spend_one_budget(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.verify_failure_limit = 4;
        c.verify_failure_window_seconds = 86_400;
    })
    .await;
    let number = "+4915123456789";
    let check = |id: &str, code: &str| {
        app.send_full(
            app.http
                .post(app.url(&format!("/2fa/v1/otp/{id}/check?otpCode={code}")))
                .header("apikey", &app.key),
        )
    };
    let wrong_for = |code: &str| if code == "0000" { "1111" } else { "0000" }.to_string();
    // Three wrong codes lock the first OTP (3 attempts), a fourth goes to a second one.
    let (first, text) = app.send_otp("via=SMS", number).await;
    let wrong = wrong_for(&code_in(&text));
    let first_id = first["otpId"].as_str().unwrap();
    let statuses = [
        check(first_id, &wrong).await.0,
        check(first_id, &wrong).await.0,
        check(first_id, &wrong).await.0,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [401, 401, 403]);
    let (second, text) = app.send_otp("via=SMS", number).await;
    let code = code_in(&text);
    let second_id = second["otpId"].as_str().unwrap();
    assert_eq!(check(second_id, &wrong_for(&code)).await.0, 401);
    let refused = check(second_id, &code).await;
    crate::harness::assert_tyntec_rate_limited(&refused, 86_400);
    let (_, status) = app.get(&format!("/2fa/v1/otp/{second_id}")).await;
    assert_eq!(
        status["attemptCount"], 1,
        "the refused check counted no attempt"
    );
    // Another number of the account, and the same number at another account, go on.
    let (other, text) = app.send_otp("via=SMS", "+4915198765432").await;
    let other_id = other["otpId"].as_str().unwrap();
    assert_eq!(check(other_id, &code_in(&text)).await.0, 202);
    let (_, other_key) = app.other_account().await;
    let url = app.url(&format!(
        "/2fa/v1/otp?number={}",
        crate::harness::urlencode(number)
    ));
    let (status, theirs) = app
        .send(app.http.post(url).header("apikey", &other_key))
        .await;
    assert_eq!(status, 200, "{theirs}");
    let text = app.receiver.next_for(number).await["text"]
        .as_str()
        .unwrap()
        .to_string();
    let theirs_id = theirs["otpId"].as_str().unwrap();
    let url = app.url(&format!(
        "/2fa/v1/otp/{theirs_id}/check?otpCode={}",
        code_in(&text)
    ));
    let (status, _) = app
        .send(app.http.post(url).header("apikey", &other_key))
        .await;
    assert_eq!(status, 202);
}
