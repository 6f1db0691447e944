//! The signed-in user with a Bearer auth token: profile, metadata against the app's schema,
//! email and phone changes that wait for verification, and app settings changed with the key.

use reqwest::Method;
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{activate, call, create_app, link_in, sign_in, token_of, verify},
};

both_backends!(
    profile_needs_a_valid_token_of_the_app,
    metadata_follows_the_schema,
    each_metadata_field_is_written_only_where_the_schema_shows_it,
    email_change_takes_effect_when_verified,
    phone_change_takes_effect_when_verified,
    deactivated_users_are_refused,
    app_settings_change_with_the_app_key,
);

fn token(auth: &Value) -> String {
    auth["auth_token"].as_str().unwrap().to_string()
}

async fn profile_needs_a_valid_token_of_the_app(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let auth = sign_in(&app, &p, "ann@example.com").await;
    let (code, me) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser",
        Some(&token(&auth)),
        None,
    )
    .await;
    assert_eq!(code, 200, "{me}");
    let user = &me["user"];
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["phone"], "");
    assert_eq!(user["login_count"], 1);
    assert_eq!(user["status"], "active");
    assert_eq!(user["webauthn"], false);
    assert_eq!(user["webauthn_devices"], json!([]));
    assert_eq!(user["webauthn_types"], json!([]));
    assert_eq!(user["social_connections"], json!({}));
    assert!(user["last_login_at"].as_str().unwrap().starts_with("20"));
    let (code, devices) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser/devices",
        Some(&token(&auth)),
        None,
    )
    .await;
    assert_eq!((code.as_u16(), devices), (200, json!({"devices": []})));

    // No token, a forged one, or a token of another app: 401 invalid_access_token.
    let other = create_app(&app, |_| {}).await;
    let foreign = sign_in(&app, &other, "ann@example.com").await;
    let t = token(&auth);
    let (head, rest) = t.split_once('.').unwrap();
    let (claims, _) = rest.split_once('.').unwrap();
    let unsigned = format!("{head}.{claims}.");
    let mut tampered = t.clone();
    tampered.pop();
    tampered.push(if t.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        None,
        Some("garbage"),
        Some(unsigned.as_str()),
        Some(tampered.as_str()),
        Some(&token(&foreign)),
        Some(p.key.as_str()),
    ] {
        let (code, err) = call(&app, Method::GET, &p.app_id, "/currentuser", bad, None).await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (401, Some("invalid_access_token")),
            "{bad:?}"
        );
    }
}

async fn metadata_follows_the_schema(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let t = token(&sign_in(&app, &p, "bo@example.com").await);
    let path = "/currentuser/user-metadata";
    let (code, empty) = call(&app, Method::GET, &p.app_id, path, Some(&t), None).await;
    assert_eq!((code.as_u16(), empty), (200, json!({"user_metadata": {}})));
    let (code, updated) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        path,
        Some(&t),
        Some(json!({"user_metadata": {"plan": "pro", "seats": 3}})),
    )
    .await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(
        updated["user"]["user_metadata"],
        json!({"plan": "pro", "seats": 3})
    );
    for bad in [
        json!({"user_metadata": {"nickname": "bo"}}),
        json!({"user_metadata": {"seats": "three"}}),
        json!({"user_metadata": "plan"}),
        json!({}),
    ] {
        let (code, err) = call(
            &app,
            Method::PATCH,
            &p.app_id,
            path,
            Some(&t),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
    let (_, kept) = call(&app, Method::GET, &p.app_id, path, Some(&t), None).await;
    assert_eq!(
        kept["user_metadata"],
        json!({"plan": "pro", "seats": 3}),
        "a refused update changes nothing"
    );
}

async fn email_change_takes_effect_when_verified(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let t = token(&sign_in(&app, &p, "old@example.com").await);
    sign_in(&app, &p, "taken@example.com").await;
    let (code, err) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/email",
        Some(&t),
        Some(json!({"new_email": "taken@example.com"})),
    )
    .await;
    assert_eq!(code, 400, "{err}");
    let (code, started) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/email",
        Some(&t),
        Some(json!({"new_email": "New@Example.com", "redirect_url": "/settings"})),
    )
    .await;
    assert_eq!(code, 200, "{started}");
    assert!(started["magic_link"]["id"].is_string());
    let (_, me) = call(&app, Method::GET, &p.app_id, "/currentuser", Some(&t), None).await;
    assert_eq!(
        me["user"]["email"], "old@example.com",
        "not before it is verified"
    );

    let mail = app.mailbox.next_for("new@example.com").await;
    let (code, auth) = activate(&app, &p.app_id, &token_of(&link_in(&mail))).await;
    assert_eq!(code, 200, "{auth}");
    assert_eq!(auth["auth_result"]["redirect_url"], "/settings");
    let (_, me) = call(&app, Method::GET, &p.app_id, "/currentuser", Some(&t), None).await;
    assert_eq!(me["user"]["email"], "new@example.com");
    assert_eq!(me["user"]["email_verified"], true);
}

async fn phone_change_takes_effect_when_verified(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let t = token(&sign_in(&app, &p, "cy@example.com").await);
    let (code, err) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/phone",
        Some(&t),
        Some(json!({"new_phone": "12"})),
    )
    .await;
    assert_eq!(code, 400, "{err}");
    let (code, started) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "/currentuser/phone",
        Some(&t),
        Some(json!({"new_phone": "+4915123456789"})),
    )
    .await;
    assert_eq!(code, 200, "{started}");
    let sms = app.receiver.next_for("+4915123456789").await;
    let (code, _) = activate(
        &app,
        &p.app_id,
        &token_of(&link_in(sms["text"].as_str().unwrap())),
    )
    .await;
    assert_eq!(code, 200);
    let (_, me) = call(&app, Method::GET, &p.app_id, "/currentuser", Some(&t), None).await;
    assert_eq!(me["user"]["phone"], "+4915123456789");
    assert_eq!(me["user"]["phone_verified"], true);
    assert_eq!(me["user"]["email"], "cy@example.com");
}

async fn deactivated_users_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let auth = sign_in(&app, &p, "dee@example.com").await;
    let claims = verify(&app, &p.app_id, &token(&auth)).await;
    let path = format!("/users/{}/deactivate", claims["sub"].as_str().unwrap());
    let (code, _) = call(&app, Method::PATCH, &p.app_id, &path, Some(&p.key), None).await;
    assert_eq!(code, 200);
    let (code, err) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser",
        Some(&token(&auth)),
        None,
    )
    .await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (403, Some("user_not_active"))
    );
}

async fn app_settings_change_with_the_app_key(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |_| {}).await;
    let (_, before) = call(&app, Method::GET, &p.app_id, "", None, None).await;
    let patch = json!({
        "name": "Shop Two",
        "session_timeout_length": 120,
        "public_signup": false,
        "auth_methods": {"otp": {"ttl": 90, "ttl_display_unit": "s"}, "magic_link": {"ttl": 600}},
        "user_metadata_schema": [{"field_name": "born", "type": "date"}],
    });
    let (code, err) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "",
        None,
        Some(patch.clone()),
    )
    .await;
    assert_eq!(
        (code.as_u16(), err["code"].as_str()),
        (401, Some("invalid_access_token"))
    );
    let (code, updated) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "",
        Some(&p.key),
        Some(patch),
    )
    .await;
    assert_eq!(code, 200, "{updated}");
    let a = &updated["app"];
    assert_eq!(a["name"], "Shop Two");
    assert_eq!(a["session_timeout_length"], 120);
    assert_eq!(a["public_signup"], false);
    assert_eq!(a["auth_methods"]["otp"]["ttl"], 90);
    assert_eq!(a["auth_methods"]["magic_link"]["ttl"], 600);
    assert_eq!(a["user_metadata_schema"][0]["field_name"], "born");
    assert_eq!(a["user_metadata_schema"][0]["id"], "born");
    assert_eq!(
        a["auth_origin"], before["app"]["auth_origin"],
        "untouched fields stay"
    );
    let (_, read) = call(&app, Method::GET, &p.app_id, "", Some(&p.key), None).await;
    assert_eq!(read["app"], *a, "the Manage get-app reads the same object");

    // New sessions follow the new length.
    let auth = sign_in(&app, &p, "eve@example.com").await;
    let claims = verify(&app, &p.app_id, &token(&auth)).await;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );

    // The object read back is accepted as it is; unknown fields and bad values are not.
    let (code, same) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        "",
        Some(&p.key),
        Some(read["app"].clone()),
    )
    .await;
    assert_eq!(code, 200, "{same}");
    assert_eq!(same["app"]["name"], "Shop Two");
    for bad in [
        json!({"colour": "red"}),
        json!({"session_timeout_length": "long"}),
        json!({"session_timeout_length": 0}),
        json!({"allowed_identifier": "fax"}),
        json!({"auth_origin": "not an origin"}),
        json!({"user_metadata_schema": [{"field_name": "x", "type": "colour"}]}),
        json!([1]),
    ] {
        let (code, err) = call(
            &app,
            Method::PATCH,
            &p.app_id,
            "",
            Some(&p.key),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (code.as_u16(), err["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

/// `registration` fields are set at public sign-up, `profile` fields by the signed-in user, and
/// a field marked for neither by the Manage API alone.
async fn each_metadata_field_is_written_only_where_the_schema_shows_it(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| {
        let mut source = s.user_metadata_schema[0].clone();
        (source.field_name, source.profile, source.registration) = ("source".into(), false, true);
        let mut tier = source.clone();
        (tier.field_name, tier.registration) = ("tier".into(), false);
        s.user_metadata_schema.extend([source, tier]);
    })
    .await;
    let sign_up = |email: &str, metadata: Value| {
        let body = json!({"identifier": email, "user_metadata": metadata});
        call(&app, Method::POST, &p.app_id, "/users", None, Some(body))
    };
    for refused in [json!({"tier": "gold"}), json!({"plan": "pro"})] {
        let (code, err) = sign_up("eve@example.com", refused.clone()).await;
        assert_eq!(
            (code.as_u16(), &err["code"]),
            (400, &json!("invalid_request")),
            "{refused}"
        );
    }
    let (code, created) = sign_up("eve@example.com", json!({"source": "ad"})).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["user"]["user_metadata"], json!({"source": "ad"}));

    let t = token(&sign_in(&app, &p, "eve@example.com").await);
    let path = "/currentuser/user-metadata";
    let patch = |metadata: Value| {
        let body = json!({ "user_metadata": metadata });
        call(&app, Method::PATCH, &p.app_id, path, Some(&t), Some(body))
    };
    for refused in [json!({"tier": "gold"}), json!({"source": "mail"})] {
        let (code, err) = patch(refused.clone()).await;
        assert_eq!(
            (code.as_u16(), &err["code"]),
            (400, &json!("invalid_request")),
            "{refused}"
        );
    }
    let (code, me) = patch(json!({"plan": "pro"})).await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(
        me["user"]["user_metadata"],
        json!({"source": "ad", "plan": "pro"})
    );

    let id = created["user"]["id"].as_str().unwrap();
    let body = json!({"user_metadata": {"tier": "gold", "source": "mail"}});
    let (code, managed) = call(
        &app,
        Method::PATCH,
        &p.app_id,
        &format!("/users/{id}"),
        Some(&p.key),
        Some(body),
    )
    .await;
    assert_eq!(code, 200, "{managed}");
    assert_eq!(
        managed["user"]["user_metadata"],
        json!({"source": "mail", "plan": "pro", "tier": "gold"})
    );
}
