//! Passage apps: the App object, the JWKS and OpenID configuration, and key rotation, checked
//! with an independent JWT implementation against the served keys.

use keyhaven::{
    crypto::ServerKeys,
    domain::now_ms,
    passage::apps::{self, AppSettings, NewApp},
};
use serde_json::{json, Value};

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::try_verify,
};

both_backends!(
    app_object_has_every_required_field,
    jwks_and_openid_configuration,
    rotated_keys_stay_published_and_new_tokens_use_the_new_key,
    unknown_apps_answer_in_passage_shape,
    cors_allows_the_auth_origin_on_every_answer,
);

fn server_keys(app: &TestApp) -> ServerKeys {
    ServerKeys::from_secret(app.config.secret.as_ref().unwrap().expose())
}

async fn create_app(app: &TestApp, id: Option<&str>) -> String {
    let new = NewApp {
        id: id.map(str::to_string),
        name: "Shop".into(),
        settings: AppSettings {
            auth_origin: "https://shop.example".into(),
            ..AppSettings::default()
        },
    };
    let (created, api_key) = apps::create(&app.passage(), new).await.unwrap();
    assert!(api_key.starts_with("kh_"));
    created.id
}

fn swagger() -> Value {
    serde_json::from_str(include_str!("../contracts/passage-auth.swagger.json")).unwrap()
}

async fn app_object_has_every_required_field(b: Backend) {
    let app = TestApp::spawn(b).await;
    let id = create_app(&app, Some("legacyAppId123")).await;
    assert_eq!(
        id, "legacyAppId123",
        "an id from the hosted service is kept"
    );
    let (status, body) = app
        .send(app.http.get(app.url(&format!("/v1/apps/{id}"))))
        .await;
    assert_eq!(status, 200, "{body}");
    let object = &body["app"];
    let required = swagger()["definitions"]["App"]["required"].clone();
    for field in required.as_array().unwrap() {
        let name = field.as_str().unwrap();
        assert!(
            object.get(name).is_some_and(|v| !v.is_null()),
            "App.{name} missing or null: {object}"
        );
    }
    assert_eq!(object["id"], id);
    assert_eq!(object["auth_origin"], "https://shop.example");
    assert_eq!(object["user_metadata_schema"], json!([]));
    assert_eq!(
        object["layouts"],
        json!({"profile": [], "registration": []})
    );
    assert_eq!(object["session_timeout_length"], 3600);
    let pem = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        object["rsa_public_key"].as_str().unwrap(),
    )
    .unwrap();
    assert!(String::from_utf8(pem)
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
}

async fn jwks_and_openid_configuration(b: Backend) {
    let app = TestApp::spawn(b).await;
    let id = create_app(&app, None).await;
    assert_eq!(id.len(), 24);
    let (status, jwks) = app
        .send(
            app.http
                .get(app.url(&format!("/v1/apps/{id}/.well-known/jwks.json"))),
        )
        .await;
    assert_eq!(status, 200);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert_eq!(keys[0]["alg"], "RS256");
    assert_eq!(keys[0]["e"], "AQAB");
    let (status, oidc) = app
        .send(
            app.http
                .get(app.url(&format!("/v1/apps/{id}/.well-known/openid-configuration"))),
        )
        .await;
    assert_eq!(status, 200);
    let issuer = format!("{}/v1/apps/{id}", app.config.public_url);
    assert_eq!(oidc["issuer"], issuer);
    assert_eq!(oidc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert!(oidc["authorization_endpoint"].is_string());
}

async fn sign(app: &TestApp, app_id: &str) -> String {
    let published = app
        .store
        .published_signing_keys(app_id, now_ms())
        .await
        .unwrap();
    let key = apps::current_signing_key(&server_keys(app), &published).unwrap();
    let now = now_ms() / 1000;
    key.sign_jwt(&json!({"sub": "user-1", "aud": [app_id], "iat": now, "exp": now + 60}))
        .unwrap()
}

async fn rotated_keys_stay_published_and_new_tokens_use_the_new_key(b: Backend) {
    let app = TestApp::spawn(b).await;
    let id = create_app(&app, None).await;
    let old_token = sign(&app, &id).await;
    assert_eq!(
        try_verify(&app, &id, &old_token).await.unwrap()["sub"],
        "user-1"
    );
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    let new_kid = apps::rotate_key(&app.passage(), &id).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let (_, jwks) = app
        .send(
            app.http
                .get(app.url(&format!("/v1/apps/{id}/.well-known/jwks.json"))),
        )
        .await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        [new_kid.as_str(), old_kid.as_str()],
        "new key first, old kept"
    );
    assert!(
        try_verify(&app, &id, &old_token).await.is_ok(),
        "old tokens stay valid"
    );
    let new_token = sign(&app, &id).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap(),
        new_kid
    );
    assert!(try_verify(&app, &id, &new_token).await.is_ok());
    // A token with a tampered payload fails.
    let mut parts: Vec<String> = new_token.split('.').map(str::to_string).collect();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"sub": "admin", "aud": [id], "exp": now_ms() / 1000 + 60}).to_string(),
    );
    assert!(try_verify(&app, &id, &parts.join(".")).await.is_err());
    // Past the old tokens' lifetime the old key is no longer published.
    let later = now_ms() + (3600 + 61) * 1000;
    let published = app.store.published_signing_keys(&id, later).await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].kid, new_kid);
}

async fn unknown_apps_answer_in_passage_shape(b: Backend) {
    let app = TestApp::spawn(b).await;
    for path in [
        "/v1/apps/nope",
        "/v1/apps/nope/.well-known/jwks.json",
        "/v1/apps/nope/.well-known/openid-configuration",
        "/v1/nothing",
    ] {
        let (status, body) = app.send(app.http.get(app.url(path))).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body["code"].is_string() && body["error"].is_string(),
            "{path}: {body}"
        );
    }
}

async fn cors_allows_the_auth_origin_on_every_answer(b: Backend) {
    let app = TestApp::spawn(b).await;
    let id = create_app(&app, None).await;
    let origin = "https://shop.example";
    let preflight = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/v1/apps/{id}/users")),
        )
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type, passage-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], origin);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for m in ["GET", "POST", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    for name in ["content-type", "passage-version", "authorization"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    // A GET and an error answer carry it too.
    for path in [
        format!("/v1/apps/{id}"),
        format!("/v1/apps/{id}/users?identifier=bad"),
    ] {
        let res = app
            .http
            .get(app.url(&path))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.headers()["access-control-allow-origin"],
            origin,
            "{path}"
        );
    }
    // Another origin gets no CORS grant.
    let res = app
        .http
        .get(app.url(&format!("/v1/apps/{id}")))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
}
