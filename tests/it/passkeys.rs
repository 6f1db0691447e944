//! Passkeys end to end: real WebAuthn ceremonies between the server and a software
//! authenticator (P-256 keys, signed client data, CBOR attestation), over HTTP, on both
//! databases.

use keyhaven::bench::authenticator::SoftAuthenticator;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{call, create_app, sign_in, verify, PassageApp},
};

both_backends!(
    register_then_log_in_with_and_without_identifier,
    a_second_device_is_added_renamed_and_revoked,
    the_last_passkey_stays_while_it_is_the_only_way_in,
    wrong_origins_are_refused,
    a_handshake_is_used_once,
    a_counter_that_goes_back_is_flagged_or_refused,
    passkeys_do_not_cross_apps,
    a_credential_is_registered_once,
    a_ceremony_started_on_one_node_finishes_on_another,
);

const ORIGIN: &str = "https://shop.example";

fn browser() -> SoftAuthenticator {
    SoftAuthenticator::new(ORIGIN).unwrap()
}

async fn post(app: &TestApp, p: &PassageApp, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, &p.app_id, path, None, Some(body)).await
}

/// Signs `email` up with a passkey: the user id and the `auth_result`.
pub async fn register(
    app: &TestApp,
    p: &PassageApp,
    browser: &mut SoftAuthenticator,
    email: &str,
) -> (String, Value) {
    let (status, started) = post(
        app,
        p,
        "/register/webauthn/start",
        json!({"identifier": email}),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let user_id = started["user"]["id"].as_str().unwrap().to_string();
    let options = &started["handshake"]["challenge"];
    // The user handle is the user id's bytes; the credential must be discoverable.
    assert_eq!(
        options["publicKey"]["user"]["id"],
        keyhaven::crypto::base64url(user_id.as_bytes())
    );
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    let response = browser.register(options).await.unwrap();
    let body = json!({
        "handshake_id": started["handshake"]["id"],
        "handshake_response": response,
        "user_id": user_id,
    });
    let (status, done) = post(app, p, "/register/webauthn/finish", body).await;
    assert_eq!(status, 201, "{done}");
    (user_id, done["auth_result"].clone())
}

/// A passkey login, with `identifier` or (empty) without.
pub async fn log_in(
    app: &TestApp,
    p: &PassageApp,
    browser: &mut SoftAuthenticator,
    identifier: &str,
) -> (StatusCode, Value) {
    let start = if identifier.is_empty() {
        json!({})
    } else {
        json!({"identifier": identifier})
    };
    let (status, started) = post(app, p, "/login/webauthn/start", start).await;
    assert_eq!(status, 200, "{started}");
    let response = browser
        .login(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({
        "handshake_id": started["handshake"]["id"],
        "handshake_response": response,
        "user_id": started["user"]["id"].as_str().unwrap_or_default(),
    });
    post(app, p, "/login/webauthn/finish", body).await
}

/// Adds a passkey made by `browser` to the signed-in user: the started handshake and the
/// device the finish answered.
async fn add_device(
    app: &TestApp,
    p: &PassageApp,
    token: &str,
    browser: &mut SoftAuthenticator,
) -> (Value, Value) {
    let devices = "/currentuser/devices";
    let (status, started) = call(
        app,
        Method::POST,
        &p.app_id,
        &format!("{devices}/start"),
        Some(token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let response = browser
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let (status, added) = call(
        app,
        Method::POST,
        &p.app_id,
        &format!("{devices}/finish"),
        Some(token),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    (started, added["device"].clone())
}

async fn devices(app: &TestApp, p: &PassageApp, token: &str) -> Vec<Value> {
    let (status, body) = call(
        app,
        Method::GET,
        &p.app_id,
        "/currentuser/devices",
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["devices"].as_array().unwrap().clone()
}

async fn register_then_log_in_with_and_without_identifier(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut browser = browser();
    let (user_id, first) = register(&app, &p, &mut browser, "ann@example.com").await;
    let claims = verify(&app, &p.app_id, first["auth_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], user_id);
    assert!(!first["refresh_token"].as_str().unwrap().is_empty());

    let (status, login) = log_in(&app, &p, &mut browser, "ann@example.com").await;
    assert_eq!(status, 200, "{login}");
    let token = login["auth_result"]["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verify(&app, &p.app_id, &token).await["sub"], user_id);

    // Without identifier the credential's user handle names the user.
    let (status, login) = log_in(&app, &p, &mut browser, "").await;
    assert_eq!(status, 200, "{login}");
    let token = login["auth_result"]["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(verify(&app, &p.app_id, &token).await["sub"], user_id);

    let (status, me) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{me}");
    let user = &me["user"];
    assert_eq!(user["webauthn"], true);
    assert_eq!(user["webauthn_types"], json!(["passkey"]));
    assert_eq!(user["status"], "active");
    assert_eq!(user["login_count"], 3);
    let device = &user["webauthn_devices"][0];
    assert_eq!(device["usage_count"], 2);
    assert_eq!(device["type"], "passkey");
    assert_eq!(device["user_id"], user_id.as_str());
    assert_eq!(device["risk_signals"], json!([]));
    assert_ne!(device["last_login_at"], "0001-01-01T00:00:00Z");
    assert_eq!(
        device["aaguid"],
        uuid::Uuid::from_bytes(keyhaven::bench::authenticator::AAGUID).to_string()
    );

    // The Manage API sees the same device.
    let (status, listed) = call(
        &app,
        Method::GET,
        &p.app_id,
        &format!("/users/{user_id}/devices"),
        Some(&p.key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["devices"][0]["id"], device["id"]);
    assert_eq!(listed["devices"][0]["cred_id"], device["cred_id"]);

    // A deactivated user's passkey opens nothing.
    let path = format!("/users/{user_id}/deactivate");
    let (status, _) = call(&app, Method::PATCH, &p.app_id, &path, Some(&p.key), None).await;
    assert_eq!(status, 200);
    let (status, refused) = log_in(&app, &p, &mut browser, "").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (403, Some("user_not_active")),
        "{refused}"
    );
}

async fn a_second_device_is_added_renamed_and_revoked(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut laptop = browser();
    let (user_id, session) = register(&app, &p, &mut laptop, "bo@example.com").await;
    let token = session["auth_token"].as_str().unwrap().to_string();

    let mut phone = browser();
    let (started, added) = add_device(&app, &p, &token, &mut phone).await;
    assert_eq!(started["user"]["id"], user_id.as_str());
    // The laptop's credential was excluded: one authenticator registers once.
    let excluded = &started["handshake"]["challenge"]["publicKey"]["excludeCredentials"];
    assert_eq!(excluded.as_array().unwrap().len(), 1);
    let phone_device = added["id"].as_str().unwrap().to_string();
    assert_eq!(devices(&app, &p, &token).await.len(), 2);

    let (status, login) = log_in(&app, &p, &mut phone, "bo@example.com").await;
    assert_eq!(status, 200, "{login}");

    let path = format!("/currentuser/devices/{phone_device}");
    let (status, renamed) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        &path,
        Some(&token),
        Some(json!({"friendly_name": "Bo's phone"})),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["device"]["friendly_name"], "Bo's phone");
    let (status, _) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        &path,
        Some(&token),
        Some(json!({"friendly_name": " "})),
    )
    .await;
    assert_eq!(status, 400);
    // The contract's 404 codes name no device; the message does.
    let (status, missing) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/devices/nope",
        Some(&token),
        Some(json!({"friendly_name": "x"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), missing["code"].as_str()),
        (404, Some("user_not_found"))
    );
    assert_eq!(missing["error"], "device not found");

    let (status, body) = call(&app, Method::DELETE, &p.app_id, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    let left = devices(&app, &p, &token).await;
    assert_eq!(left.len(), 1);
    assert_ne!(left[0]["id"], phone_device.as_str());
    let (status, refused) = log_in(&app, &p, &mut phone, "").await;
    assert_eq!(status, 401, "{refused}");
    assert_eq!(refused["code"], "discoverable_login_failed");
    // The laptop still works.
    assert_eq!(log_in(&app, &p, &mut laptop, "bo@example.com").await.0, 200);
}

async fn the_last_passkey_stays_while_it_is_the_only_way_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut laptop = browser();
    let (user_id, session) = register(&app, &p, &mut laptop, "cy@example.com").await;
    let token = session["auth_token"].as_str().unwrap().to_string();
    let device = devices(&app, &p, &token).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/currentuser/devices/{device}");
    let (status, refused) = call(&app, Method::DELETE, &p.app_id, &path, Some(&token), None).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(devices(&app, &p, &token).await.len(), 1);

    // Once the email is verified (a magic link reached it), the passkey may go.
    let token = sign_in(&app, &p, "cy@example.com").await["auth_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = call(&app, Method::DELETE, &p.app_id, &path, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(devices(&app, &p, &token).await.is_empty());

    // An administrator may revoke the last one.
    let (_, added) = add_device(&app, &p, &token, &mut browser()).await;
    let path = format!("/users/{user_id}/devices/{}", added["id"].as_str().unwrap());
    let (status, body) = call(&app, Method::DELETE, &p.app_id, &path, Some(&p.key), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(devices(&app, &p, &token).await.is_empty());
}

async fn wrong_origins_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| {
        s.additional_auth_origins = vec!["https://m.shop.example".into()];
    })
    .await;
    // Another page of the same site that the app does not list: its browser signs for the
    // RP, but the server takes no ceremony from that origin.
    let mut elsewhere = SoftAuthenticator::new("https://blog.shop.example").unwrap();
    let (status, started) = post(
        &app,
        &p,
        "/register/webauthn/start",
        json!({"identifier": "di@example.com"}),
    )
    .await;
    assert_eq!(status, 200, "{started}");
    let response = elsewhere
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let (status, refused) = post(&app, &p, "/register/webauthn/finish", body).await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (400, Some("invalid_request")),
        "{refused}"
    );

    let mut real = browser();
    register(&app, &p, &mut real, "ed@example.com").await;
    real.set_origin("https://blog.shop.example").unwrap();
    let (status, refused) = log_in(&app, &p, &mut real, "ed@example.com").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (401, Some("webauthn_login_failed")),
        "{refused}"
    );

    // An additional origin of the app is accepted.
    real.set_origin("https://m.shop.example").unwrap();
    assert_eq!(log_in(&app, &p, &mut real, "ed@example.com").await.0, 200);
    // A site of another domain cannot even ask the authenticator for this RP's passkey.
    real.set_origin("https://evil.example").unwrap();
    let (_, started) = post(
        &app,
        &p,
        "/login/webauthn/start",
        json!({"identifier": "ed@example.com"}),
    )
    .await;
    assert!(real
        .login(&started["handshake"]["challenge"])
        .await
        .is_err());
}

async fn a_handshake_is_used_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut browser = browser();
    register(&app, &p, &mut browser, "fay@example.com").await;
    let (_, started) = post(
        &app,
        &p,
        "/login/webauthn/start",
        json!({"identifier": "fay@example.com"}),
    )
    .await;
    let response = browser
        .login(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let (status, first) = post(&app, &p, "/login/webauthn/finish", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (status, replayed) = post(&app, &p, "/login/webauthn/finish", body).await;
    assert_eq!(
        (status.as_u16(), replayed["code"].as_str()),
        (401, Some("webauthn_login_failed")),
        "{replayed}"
    );

    // Raced: of concurrent finishes of one login, exactly one starts a session.
    let (_, started) = post(
        &app,
        &p,
        "/login/webauthn/start",
        json!({"identifier": "fay@example.com"}),
    )
    .await;
    let response = browser
        .login(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let racers = (0..6).map(|_| post(&app, &p, "/login/webauthn/finish", body.clone()));
    let answers = futures::future::join_all(racers).await;
    let sessions = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(sessions, 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|(status, _)| *status == 200 || *status == 401));

    // A registration handshake too.
    let (_, started) = post(
        &app,
        &p,
        "/register/webauthn/start",
        json!({"identifier": "gus@example.com"}),
    )
    .await;
    let response = SoftAuthenticator::new(ORIGIN)
        .unwrap()
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    assert_eq!(
        post(&app, &p, "/register/webauthn/finish", body.clone())
            .await
            .0,
        201
    );
    let (status, replayed) = post(&app, &p, "/register/webauthn/finish", body).await;
    assert_eq!(status, 400, "{replayed}");
    let (status, unknown) = post(
        &app,
        &p,
        "/login/webauthn/finish",
        json!({"handshake_id": "nope", "handshake_response": {}, "user_id": ""}),
    )
    .await;
    assert_eq!(status, 400, "{unknown}");
}

async fn a_counter_that_goes_back_is_flagged_or_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let mut browser = browser();
    let (_, session) = register(&app, &p, &mut browser, "hal@example.com").await;
    let token = session["auth_token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        assert_eq!(
            log_in(&app, &p, &mut browser, "hal@example.com").await.0,
            200
        );
    }
    let counter = devices(&app, &p, &token).await[0]["usage_count"].clone();
    assert_eq!(counter, 3);
    // A copy of the key that lags behind: accepted by default, and flagged.
    browser.set_counter(1);
    let (status, body) = log_in(&app, &p, &mut browser, "hal@example.com").await;
    assert_eq!(status, 200, "{body}");
    let device = &devices(&app, &p, &token).await[0];
    assert_eq!(device["risk_signals"], json!(["counter_regressed"]));
    assert_eq!(device["usage_count"], 4);

    // Under the strict policy the same login is refused.
    let (status, body) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "",
        Some(&p.key),
        Some(json!({"passkey_strict_mode": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["app"]["passkey_strict_mode"], true);
    browser.set_counter(1);
    let (status, refused) = log_in(&app, &p, &mut browser, "hal@example.com").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (401, Some("webauthn_login_failed")),
        "{refused}"
    );
    let device = &devices(&app, &p, &token).await[0];
    assert_eq!(device["usage_count"], 4);
    assert_eq!(device["risk_signals"], json!(["counter_regressed"]));

    // Operators see both: the accepted and the refused login with the signal.
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for refused in ["false", "true"] {
        let line = format!(
            "keyhaven_passkey_risk_signals_total{{signal=\"counter_regressed\",refused=\"{refused}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

async fn a_credential_is_registered_once(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let (_, session) = register(&app, &p, &mut browser(), "lu@example.com").await;
    let token = session["auth_token"].as_str().unwrap().to_string();
    let taken = devices(&app, &p, &token).await[0]["cred_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Another sign-up presents that credential id: with no attestation the id is not signed,
    // so only the server's own record can tell.
    let (_, started) = post(
        &app,
        &p,
        "/register/webauthn/start",
        json!({"identifier": "max@example.com"}),
    )
    .await;
    let response = browser()
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let response = with_credential_id(response, &taken);
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let (status, refused) = post(&app, &p, "/register/webauthn/finish", body).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("registered already"),
        "{refused}"
    );
    assert_eq!(devices(&app, &p, &token).await.len(), 1);
}

/// A registration response whose attested credential carries the id `cred_id` (of the same
/// length) instead of its own.
fn with_credential_id(mut response: Value, cred_id: &str) -> Value {
    use base64::Engine as _;
    use serde_cbor_2::Value as Cbor;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let id = engine.decode(cred_id).unwrap();
    let object = response["response"]["attestationObject"].as_str().unwrap();
    let mut object: Cbor = serde_cbor_2::from_slice(&engine.decode(object).unwrap()).unwrap();
    let Cbor::Map(entries) = &mut object else {
        panic!("attestation object is not a map")
    };
    let auth_data = entries
        .iter_mut()
        .find(|(k, _)| **k == Cbor::Text("authData".into()))
        .map(|(_, v)| v)
        .unwrap();
    let Cbor::Bytes(data) = auth_data else {
        panic!("authData is not bytes")
    };
    // rpIdHash 32, flags 1, counter 4, AAGUID 16, then the id's length (2) and the id.
    let len = usize::from(u16::from_be_bytes([data[53], data[54]]));
    assert_eq!(len, id.len());
    data[55..55 + len].copy_from_slice(&id);
    let encoded = engine.encode(serde_cbor_2::to_vec(&object).unwrap());
    response["response"]["attestationObject"] = json!(encoded);
    response["id"] = json!(cred_id);
    response["rawId"] = json!(cred_id);
    response
}

async fn passkeys_do_not_cross_apps(b: Backend) {
    let app = TestApp::spawn(b).await;
    let shop = create_app(&app, |_| {}).await;
    let other = create_app(&app, |_| {}).await;
    let mut browser = browser();
    register(&app, &shop, &mut browser, "ivy@example.com").await;
    // The same person exists in the other app, with no passkey there.
    sign_in(&app, &other, "ivy@example.com").await;
    let (status, body) = post(
        &app,
        &other,
        "/login/webauthn/start",
        json!({"identifier": "ivy@example.com"}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // A discoverable login in the other app with the shop's credential.
    let (status, refused) = log_in(&app, &other, &mut browser, "").await;
    assert_eq!(
        (status.as_u16(), refused["code"].as_str()),
        (401, Some("discoverable_login_failed")),
        "{refused}"
    );
}

async fn a_ceremony_started_on_one_node_finishes_on_another(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let other = app.another_node().await;
    let mut browser = browser();
    let (_, started) = post(
        &app,
        &p,
        "/register/webauthn/start",
        json!({"identifier": "kim@example.com"}),
    )
    .await;
    let response = browser
        .register(&started["handshake"]["challenge"])
        .await
        .unwrap();
    let body = json!({"handshake_id": started["handshake"]["id"], "handshake_response": response, "user_id": started["user"]["id"]});
    let (status, done) = app
        .send(
            app.http
                .post(format!(
                    "{}/v1/apps/{}/register/webauthn/finish",
                    other.base, p.app_id
                ))
                .json(&body),
        )
        .await;
    assert_eq!(status, 201, "{done}");
    other.stop().await;
}
