//! Magic links: login and sign-up links by email (a real SMTP exchange) and SMS (the webhook
//! receiver), single use under concurrency, expiry, the cross-device status poll, and the
//! Manage API's embeddable links.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{activate, call, create_app, link_in, token_of, verify, PassageApp},
};

both_backends!(
    login_link_by_email_and_the_cross_device_poll,
    register_link_by_sms,
    one_of_concurrent_activations_wins,
    expired_and_unknown_links_are_refused,
    links_stay_on_the_app_origin,
    embeddable_links_from_the_manage_api,
);

async fn manage_user(app: &TestApp, p: &PassageApp, body: Value) -> Value {
    let (status, created) = call(
        app,
        Method::POST,
        &p.app_id,
        "/users",
        Some(&p.key),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["user"].clone()
}

async fn login_link(app: &TestApp, app_id: &str, body: Value) -> (reqwest::StatusCode, Value) {
    call(
        app,
        Method::POST,
        app_id,
        "/login/magic-link",
        None,
        Some(body),
    )
    .await
}

async fn status(app: &TestApp, app_id: &str, id: &Value) -> (reqwest::StatusCode, Value) {
    call(
        app,
        Method::POST,
        app_id,
        "/magic-link/status",
        None,
        Some(json!({"id": id})),
    )
    .await
}

async fn login_link_by_email_and_the_cross_device_poll(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let user = manage_user(&app, &p, json!({"email": "ann@example.com"})).await;
    let (code, started) =
        login_link(&app, &p.app_id, json!({"identifier": "ann@example.com"})).await;
    assert_eq!(code, 200, "{started}");
    let link_id = &started["magic_link"]["id"];
    assert!(link_id.as_str().is_some_and(|id| !id.is_empty()));
    let (code, waiting) = status(&app, &p.app_id, link_id).await;
    assert_eq!(code, 401, "not activated yet: {waiting}");
    assert_eq!(waiting["code"], "invalid_magic_link");

    let mail = app.mailbox.next_for("ann@example.com").await;
    assert!(mail.contains("Subject: Sign in to Shop"), "{mail}");
    let url = link_in(&mail);
    assert!(
        url.starts_with("https://shop.example/login?psg_magic_link="),
        "{url}"
    );
    let token = token_of(&url);

    // The link's own device.
    let (code, auth) = activate(&app, &p.app_id, &token).await;
    assert_eq!(code, 200, "{auth}");
    assert_eq!(auth["auth_result"]["redirect_url"], "/dashboard");
    let claims = verify(
        &app,
        &p.app_id,
        auth["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(claims["sub"], user["id"]);

    // The device that asked for the link gets its own session, once.
    let (code, polled) = status(&app, &p.app_id, link_id).await;
    assert_eq!(code, 200, "{polled}");
    let polled_claims = verify(
        &app,
        &p.app_id,
        polled["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(polled_claims["sub"], user["id"]);
    assert_ne!(
        polled["auth_result"]["refresh_token"],
        auth["auth_result"]["refresh_token"]
    );
    assert_eq!(status(&app, &p.app_id, link_id).await.0, 401);

    // Single use; the email is now verified and the login counted.
    let (code, again) = activate(&app, &p.app_id, &token).await;
    assert_eq!(code, 401, "{again}");
    assert_eq!(again["code"], "invalid_magic_link");
    let (_, fetched) = call(
        &app,
        Method::GET,
        &p.app_id,
        &format!("/users/{}", user["id"].as_str().unwrap()),
        Some(&p.key),
        None,
    )
    .await;
    assert_eq!(fetched["user"]["email_verified"], true);
    assert_eq!(fetched["user"]["login_count"], 1);
}

async fn register_link_by_sms(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let phone = "+4915123456789";
    let (code, started) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/register/magic-link",
        None,
        Some(json!({"identifier": phone, "magic_link_path": "/welcome"})),
    )
    .await;
    assert_eq!(code, 201, "{started}");
    assert!(started["magic_link"]["id"].is_string());
    let sms = app.receiver.next_for(phone).await;
    let url = link_in(sms["text"].as_str().unwrap());
    assert!(
        url.starts_with("https://shop.example/welcome?psg_magic_link="),
        "{url}"
    );
    let (code, auth) = activate(&app, &p.app_id, &token_of(&url)).await;
    assert_eq!(code, 200, "{auth}");
    let claims = verify(
        &app,
        &p.app_id,
        auth["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    let (_, found) = app
        .send(app.http.get(app.url(&format!(
            "/v1/apps/{}/users?identifier=%2B4915123456789",
            p.app_id
        ))))
        .await;
    assert_eq!(found["user"]["id"], claims["sub"]);
    assert_eq!(found["user"]["phone_verified"], true);

    // Signing up twice with one identifier is refused.
    let (code, err) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/register/magic-link",
        None,
        Some(json!({"identifier": phone})),
    )
    .await;
    assert_eq!(code, 400, "{err}");
}

async fn one_of_concurrent_activations_wins(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    manage_user(&app, &p, json!({"email": "bo@example.com"})).await;
    let (code, _) = login_link(&app, &p.app_id, json!({"identifier": "bo@example.com"})).await;
    assert_eq!(code, 200);
    let token = token_of(&link_in(&app.mailbox.next_for("bo@example.com").await));
    let results = join_all((0..20).map(|_| activate(&app, &p.app_id, &token))).await;
    let won = results.iter().filter(|(c, _)| *c == 200).count();
    let refused = results
        .iter()
        .filter(|(c, body)| *c == 401 && body["code"] == "invalid_magic_link")
        .count();
    assert_eq!((won, refused), (1, 19), "{results:?}");
}

async fn expired_and_unknown_links_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| s.magic_link_ttl = 1).await;
    manage_user(&app, &p, json!({"email": "cy@example.com"})).await;
    let (_, started) = login_link(&app, &p.app_id, json!({"identifier": "cy@example.com"})).await;
    let token = token_of(&link_in(&app.mailbox.next_for("cy@example.com").await));
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (code, err) = activate(&app, &p.app_id, &token).await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (401, Some("invalid_magic_link"))
    );
    let (code, err) = status(&app, &p.app_id, &started["magic_link"]["id"]).await;
    assert_eq!(code, 401, "{err}");
    assert!(err["error"].as_str().unwrap().contains("expired"), "{err}");

    let (code, err) = status(&app, &p.app_id, &json!("no-such-link")).await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (404, Some("magic_link_not_found"))
    );
    let (code, err) = activate(&app, &p.app_id, "not-a-token").await;
    assert_eq!(code, 401, "{err}");
    let (code, err) =
        login_link(&app, &p.app_id, json!({"identifier": "nobody@example.com"})).await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (404, Some("user_not_found"))
    );

    // A deactivated user gets no link.
    let user = manage_user(&app, &p, json!({"email": "dee@example.com"})).await;
    let path = format!("/users/{}/deactivate", user["id"].as_str().unwrap());
    call(&app, Method::PATCH, &p.app_id, &path, Some(&p.key), None).await;
    let (code, err) = login_link(&app, &p.app_id, json!({"identifier": "dee@example.com"})).await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (403, Some("user_not_active"))
    );
}

async fn links_stay_on_the_app_origin(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    manage_user(&app, &p, json!({"email": "di@example.com"})).await;
    let injections = ["/?psg_magic_link=ATTACKER&x=", "/login#x", "/login?next=/a"];
    for path in [
        "https://evil.example/",
        "//evil.example/x",
        "login",
        "/\\evil.example",
    ]
    .into_iter()
    .chain(injections)
    {
        let (code, err) = login_link(
            &app,
            &p.app_id,
            json!({"identifier": "di@example.com", "magic_link_path": path}),
        )
        .await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (400, Some("invalid_request")),
            "{path}"
        );
    }
    // Opening a link is a GET on the app's own page; Keyhaven has no GET that could use it.
    let (code, err) = app
        .send(
            app.http
                .get(app.url(&format!("/v1/apps/{}/magic-link/activate", p.app_id))),
        )
        .await;
    assert_eq!(code, 405, "{err}");
    assert_eq!(app.receiver.pending(), 0);
    // The app's own URLs follow the same rules.
    for (field, url) in [
        ("redirect_url", "/\\evil.example"),
        ("login_url", "/\\evil.example"),
    ]
    .into_iter()
    .chain([("login_url", "/?psg_magic_link=x")])
    {
        let body = json!({ field: url });
        let (code, err) = call(&app, Method::PATCH, &p.app_id, "", Some(&p.key), Some(body)).await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (400, Some("invalid_request")),
            "{url}"
        );
    }
}

async fn embeddable_links_from_the_manage_api(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    // A new email creates the user; nothing is sent unless asked.
    let (code, made) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/magic-links",
        Some(&p.key),
        Some(json!({"email": "eve@example.com", "ttl": "30", "redirect_url": "/welcome"})),
    )
    .await;
    assert_eq!(code, 201, "{made}");
    let link = &made["magic_link"];
    assert_eq!(link["app_id"], p.app_id.as_str());
    assert_eq!(link["identifier"], "eve@example.com");
    assert_eq!(link["type"], "login");
    assert_eq!(link["ttl"], 30);
    assert_eq!(link["activated"], false);
    let secret = link["secret"].as_str().unwrap();
    assert_eq!(
        link["url"],
        format!("https://shop.example/login?psg_magic_link={secret}")
    );
    let (_, user) = call(
        &app,
        Method::GET,
        &p.app_id,
        &format!("/users/{}", link["user_id"].as_str().unwrap()),
        Some(&p.key),
        None,
    )
    .await;
    assert_eq!(user["user"]["email"], "eve@example.com");
    let (code, auth) = activate(&app, &p.app_id, secret).await;
    assert_eq!(code, 200, "{auth}");
    assert_eq!(auth["auth_result"]["redirect_url"], "/welcome");

    // Sent by SMS to an existing user, by id.
    let phone_user = manage_user(&app, &p, json!({"phone": "+4915123456788"})).await;
    let (code, made) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/magic-links",
        Some(&p.key),
        Some(
            json!({"user_id": phone_user["id"], "channel": "phone", "send": true,
                    "type": "verify_identifier"}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["magic_link"]["type"], "verify_identifier");
    let sms = app.receiver.next_for("+4915123456788").await;
    let token = token_of(&link_in(sms["text"].as_str().unwrap()));
    assert_eq!(token, made["magic_link"]["secret"].as_str().unwrap());

    // Errors: unknown user, no identifier, bad ttl, no key, another app's key.
    let other = create_app(&app, |_| {}).await;
    let cases = [
        (
            Some(p.key.as_str()),
            json!({"user_id": "nope"}),
            404,
            "user_not_found",
        ),
        (Some(p.key.as_str()), json!({}), 400, "invalid_request"),
        (
            Some(p.key.as_str()),
            json!({"email": "x@example.com", "ttl": 0}),
            400,
            "invalid_request",
        ),
        (
            Some(p.key.as_str()),
            json!({"email": "x@example.com", "send": "maybe"}),
            400,
            "invalid_request",
        ),
        (
            None,
            json!({"email": "x@example.com"}),
            401,
            "invalid_access_token",
        ),
        (
            Some(other.key.as_str()),
            json!({"email": "x@example.com"}),
            401,
            "invalid_access_token",
        ),
    ];
    for (key, body, want, want_code) in cases {
        let (code, err) = call(
            &app,
            Method::POST,
            &p.app_id,
            "/magic-links",
            key,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (want, Some(want_code)),
            "{body}"
        );
    }
}
