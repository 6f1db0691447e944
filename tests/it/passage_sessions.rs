//! Passage sessions: passcode login over SMS, auth tokens checked with an independent JWT
//! implementation against the served JWKS, refresh rotation with its grace window, revocation.

use futures::future::join_all;
use keyhaven::{
    domain::UserStatus,
    passage::apps::{self, AppSettings, NewApp},
};
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{code_in, Backend, TestApp},
    passage::{create_app, sign_in, verify},
};

both_backends!(
    register_and_login_by_sms_passcode,
    passcodes_are_single_use_with_limited_attempts,
    wrong_passcodes_spend_the_users_budget,
    refresh_rotates_with_a_grace_window,
    reuse_after_the_grace_window_revokes_the_family,
    rotated_tokens_forget_their_successor_after_the_grace_window,
    deactivated_users_cannot_log_in_or_refresh,
    email_passcodes_arrive_over_smtp,
    manage_revokes_a_users_sessions,
    idle_sessions_end_after_the_inactivity_lifetime,
);

const PHONE: &str = "+4915123456789";

async fn phone_app(app: &TestApp) -> String {
    let new = NewApp {
        id: None,
        name: "Shop".into(),
        settings: AppSettings {
            auth_origin: "https://shop.example".into(),
            allowed_identifier: "both".into(),
            session_timeout_length: 600,
            ..AppSettings::default()
        },
    };
    let (created, _) = apps::create(&app.passage(), new).await.unwrap();
    created.id
}

async fn post(
    app: &TestApp,
    app_id: &str,
    path: &str,
    body: Value,
) -> (reqwest::StatusCode, Value) {
    let url = app.url(&format!("/v1/apps/{app_id}{path}"));
    let (status, headers, body) = app.send_full(app.http.post(url).json(&body)).await;
    crate::passage::assert_tokens_not_cached(&headers, &body);
    (status, body)
}

/// register/otp → the SMS → otp/activate: the auth result.
async fn register(app: &TestApp, app_id: &str) -> Value {
    let (status, started) = post(app, app_id, "/register/otp", json!({"identifier": PHONE})).await;
    assert_eq!(status, 201, "{started}");
    let code = code_in(app.receiver.next_for(PHONE).await["text"].as_str().unwrap());
    let otp_id = started["otp_id"].as_str().unwrap();
    let (status, auth) = post(
        app,
        app_id,
        "/otp/activate",
        json!({"otp": code, "otp_id": otp_id}),
    )
    .await;
    assert_eq!(status, 200, "{auth}");
    auth["auth_result"].clone()
}

async fn register_and_login_by_sms_passcode(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    let result = register(&app, &app_id).await;
    let claims = verify(&app, &app_id, result["auth_token"].as_str().unwrap()).await;
    assert_eq!(claims["aud"], json!([app_id]));
    assert_eq!(
        claims["iss"],
        format!("{}/v1/apps/{app_id}", app.config.public_url)
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert_eq!(result["redirect_url"], "/");
    assert!(result["refresh_token"].as_str().unwrap().len() >= 32);
    assert!(result["refresh_token_expiration"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    let user_id = claims["sub"].as_str().unwrap();
    let (_, found) = app
        .send(app.http.get(app.url(&format!(
            "/v1/apps/{app_id}/users?identifier=%2B4915123456789"
        ))))
        .await;
    assert_eq!(found["user"]["id"], user_id);
    assert_eq!(
        found["user"]["phone_verified"], true,
        "the passcode proved the phone"
    );

    // Log in again.
    let (status, started) = post(&app, &app_id, "/login/otp", json!({"identifier": PHONE})).await;
    assert_eq!(status, 201);
    let code = code_in(app.receiver.next_for(PHONE).await["text"].as_str().unwrap());
    let (status, auth) = post(
        &app,
        &app_id,
        "/otp/activate",
        json!({"otp": code, "otp_id": started["otp_id"]}),
    )
    .await;
    assert_eq!(status, 200);
    let again = verify(
        &app,
        &app_id,
        auth["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(again["sub"], user_id);

    let (status, body) = post(
        &app,
        &app_id,
        "/login/otp",
        json!({"identifier": "+4915198765432"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "user_not_found");
}

async fn passcodes_are_single_use_with_limited_attempts(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    register(&app, &app_id).await;
    let (_, started) = post(&app, &app_id, "/login/otp", json!({"identifier": PHONE})).await;
    let code = code_in(app.receiver.next_for(PHONE).await["text"].as_str().unwrap());
    let otp_id = started["otp_id"].as_str().unwrap();
    // Ten concurrent activations with the right code: exactly one session.
    let body = json!({"otp": code, "otp_id": otp_id});
    let results =
        join_all((0..10).map(|_| post(&app, &app_id, "/otp/activate", body.clone()))).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1);
    assert!(results
        .iter()
        .all(|(s, b)| *s == 200 || (*s == 401 && b["code"].is_string())));

    let (_, started) = post(&app, &app_id, "/login/otp", json!({"identifier": PHONE})).await;
    let code = code_in(app.receiver.next_for(PHONE).await["text"].as_str().unwrap());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let otp_id = started["otp_id"].as_str().unwrap();
    for _ in 0..4 {
        let (status, _) = post(
            &app,
            &app_id,
            "/otp/activate",
            json!({"otp": wrong, "otp_id": otp_id}),
        )
        .await;
        assert_eq!(status, 401);
    }
    let (status, body) = post(
        &app,
        &app_id,
        "/otp/activate",
        json!({"otp": wrong, "otp_id": otp_id}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (401, Some("exceeded_attempts"))
    );
    let (status, _) = post(
        &app,
        &app_id,
        "/otp/activate",
        json!({"otp": code, "otp_id": otp_id}),
    )
    .await;
    assert_eq!(status, 401, "the right code after the attempts are used up");
}

/// Wrong passcodes count against the user across passcodes: past the budget, the right code
/// of a fresh passcode answers 429 until the window ends.
async fn wrong_passcodes_spend_the_users_budget(b: Backend) {
    let app = TestApp::spawn_with(b, |c| {
        c.verify_failure_limit = 3;
        c.verify_failure_window_seconds = 86_400;
    })
    .await;
    let app_id = phone_app(&app).await;
    register(&app, &app_id).await;
    let login = || async {
        let (_, started) = post(&app, &app_id, "/login/otp", json!({"identifier": PHONE})).await;
        let code = code_in(app.receiver.next_for(PHONE).await["text"].as_str().unwrap());
        (started["otp_id"].as_str().unwrap().to_string(), code)
    };
    let activate = |otp_id: String, code: String| {
        let url = app.url(&format!("/v1/apps/{app_id}/otp/activate"));
        let body = json!({"otp": code, "otp_id": otp_id});
        app.send_full(app.http.post(url).json(&body))
    };
    let wrong_for = |code: &str| if code == "000000" { "111111" } else { "000000" }.to_string();
    for _ in 0..3 {
        let (otp_id, code) = login().await;
        let (status, _, body) = activate(otp_id, wrong_for(&code)).await;
        assert_eq!(status, 401, "{body}");
    }
    let (otp_id, code) = login().await;
    let refused = activate(otp_id.clone(), code.clone()).await;
    crate::harness::assert_passage_rate_limited(&refused, 86_400);
    // The refusal spent nothing: the code stays refused, not used up, until the window ends.
    let (status, _, body) = activate(otp_id, code).await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (429, &json!("rate_limited"))
    );
}

async fn refresh(app: &TestApp, app_id: &str, token: &str) -> (reqwest::StatusCode, Value) {
    post(app, app_id, "/tokens", json!({"refresh_token": token})).await
}

async fn refresh_rotates_with_a_grace_window(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    let first = register(&app, &app_id).await;
    let token = first["refresh_token"].as_str().unwrap().to_string();
    // Twenty tabs refresh the same token at once: one family, one successor, no revocation.
    let results = join_all((0..20).map(|_| refresh(&app, &app_id, &token))).await;
    assert!(
        results.iter().all(|(s, _)| *s == 201),
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    let successors: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|(_, b)| b["auth_result"]["refresh_token"].as_str().unwrap())
        .collect();
    assert_eq!(successors.len(), 1, "every tab got the same successor");
    let successor = successors.into_iter().next().unwrap().to_string();
    assert_ne!(successor, token);
    let claims = verify(
        &app,
        &app_id,
        results[0].1["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["aud"], json!([app_id]));
    // The successor works and rotates in turn.
    let (status, next) = refresh(&app, &app_id, &successor).await;
    assert_eq!(status, 201);
    assert_ne!(next["auth_result"]["refresh_token"], successor.as_str());
    // Logout revokes the session: its newest token stops working.
    let newest = next["auth_result"]["refresh_token"].as_str().unwrap();
    let url = app.url(&format!("/v1/apps/{app_id}/tokens?refresh_token={newest}"));
    let (status, _) = app.send(app.http.delete(url)).await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&app, &app_id, newest).await.0, 401);
    assert_eq!(refresh(&app, &app_id, "not-a-token").await.0, 401);
}

async fn reuse_after_the_grace_window_revokes_the_family(b: Backend) {
    let app = TestApp::spawn_with(b, |c| c.refresh_grace_seconds = 0).await;
    let app_id = phone_app(&app).await;
    let first = register(&app, &app_id).await;
    let stolen = first["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = refresh(&app, &app_id, &stolen).await;
    assert_eq!(status, 201);
    let successor = rotated["auth_result"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = refresh(&app, &app_id, &stolen).await;
    assert_eq!(status, 401, "reuse of a rotated token: {body}");
    assert_eq!(
        refresh(&app, &app_id, &successor).await.0,
        401,
        "the whole family is revoked"
    );
}

/// A rotated token keeps its successor (sealed) only for the grace window: afterwards a copy
/// of the database, even with the server secret, holds no live refresh token.
async fn rotated_tokens_forget_their_successor_after_the_grace_window(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    let first = register(&app, &app_id).await;
    let rotated = first["refresh_token"].as_str().unwrap().to_string();
    let (status, next) = refresh(&app, &app_id, &rotated).await;
    assert_eq!(status, 201);
    let successor = next["auth_result"]["refresh_token"].as_str().unwrap();
    let stored = || async {
        let digest = keyhaven::crypto::sha256(&rotated);
        let row = app.store.refresh_token_by_hash(&app_id, &digest).await;
        row.unwrap().unwrap().row
    };
    let grace_ms = 1000 * app.config.refresh_grace_seconds as i64;
    let now = keyhaven::domain::now_ms();
    // Housekeeping within the grace window keeps it: parallel tabs still need it.
    assert_eq!(
        app.store.forget_successors(now - grace_ms).await.unwrap(),
        0
    );
    assert!(stored().await.successor_sealed.is_some());
    // Housekeeping after the grace window forgets it, and only that.
    assert_eq!(app.store.forget_successors(now + 1).await.unwrap(), 1);
    assert!(stored().await.successor_sealed.is_none());
    assert_eq!(
        refresh(&app, &app_id, successor).await.0,
        201,
        "the successor itself still works"
    );
}

async fn deactivated_users_cannot_log_in_or_refresh(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    let first = register(&app, &app_id).await;
    let claims = verify(&app, &app_id, first["auth_token"].as_str().unwrap()).await;
    let user_id = claims["sub"].as_str().unwrap();
    app.store
        .set_user_status(
            &app_id,
            user_id,
            UserStatus::Inactive,
            keyhaven::domain::now_ms(),
        )
        .await
        .unwrap();
    let (status, body) = post(&app, &app_id, "/login/otp", json!({"identifier": PHONE})).await;
    assert_eq!(status, 403, "{body}");
    let token = first["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, &app_id, token).await.0, 401);
}

async fn email_passcodes_arrive_over_smtp(b: Backend) {
    let app = TestApp::spawn(b).await;
    let app_id = phone_app(&app).await;
    let (status, started) = post(
        &app,
        &app_id,
        "/register/otp",
        json!({"identifier": "Ann@Example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{started}");
    let mail = app.mailbox.next_for("ann@example.com").await;
    assert!(mail.contains("Subject: Your Shop code"), "{mail}");
    let code = code_in(mail.split("\n\n").nth(1).unwrap_or(&mail));
    assert_eq!(code.len(), 6);
    let (status, auth) = post(
        &app,
        &app_id,
        "/otp/activate",
        json!({"otp": code, "otp_id": started["otp_id"]}),
    )
    .await;
    assert_eq!(status, 200, "{auth}");
    let (_, found) = app
        .send(app.http.get(app.url(&format!(
            "/v1/apps/{app_id}/users?identifier=ann@example.com"
        ))))
        .await;
    assert_eq!(found["user"]["email_verified"], true);
    assert_eq!(found["user"]["phone_verified"], false);
}

async fn manage_revokes_a_users_sessions(b: Backend) {
    let app = TestApp::spawn(b).await;
    let new = NewApp {
        id: None,
        name: "Shop".into(),
        settings: AppSettings {
            auth_origin: "https://shop.example".into(),
            allowed_identifier: "both".into(),
            ..AppSettings::default()
        },
    };
    let (created, api_key) = apps::create(&app.passage(), new).await.unwrap();
    let app_id = created.id;
    let first = register(&app, &app_id).await;
    let claims = verify(&app, &app_id, first["auth_token"].as_str().unwrap()).await;
    let user_id = claims["sub"].as_str().unwrap();
    let base = app.url(&format!("/v1/apps/{app_id}/users/{user_id}"));
    let (status, devices) = app
        .send(
            app.http
                .get(format!("{base}/devices"))
                .bearer_auth(&api_key),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(devices, json!({"devices": []}));
    let (status, _) = app
        .send(
            app.http
                .delete(format!("{base}/tokens"))
                .bearer_auth(&api_key),
        )
        .await;
    assert_eq!(status, 200);
    let token = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&app, &app_id, token).await.0,
        401,
        "signed out everywhere"
    );
    let (status, body) = app
        .send(
            app.http
                .delete(format!("{base}/devices/nope"))
                .bearer_auth(&api_key),
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

async fn idle_sessions_end_after_the_inactivity_lifetime(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| s.refresh_inactivity_lifetime = 1).await;
    let used = sign_in(&app, &p, "ann@example.com").await;
    let (status, renewed) = refresh(&app, &p.app_id, used["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 201, "{renewed}");
    let idle = sign_in(&app, &p, "bo@example.com").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (status, _) = refresh(&app, &p.app_id, idle["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        status, 401,
        "unused for longer than the inactivity lifetime"
    );
}
