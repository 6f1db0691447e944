//! What the Passage scenarios share: an app with its API key, calls with or without a
//! credential, and checks of tokens and links as a client would make them.

use keyhaven::passage::apps::{self, AppSettings, NewApp, UserMetadataField};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::TestApp;

pub struct PassageApp {
    pub app_id: String,
    pub key: String,
}

/// An app on `https://shop.example` taking email and phone, with a `plan` (string) and
/// `seats` (integer) metadata schema, adjusted by `tweak`.
pub async fn create_app(app: &TestApp, tweak: impl FnOnce(&mut AppSettings)) -> PassageApp {
    let field = |name: &str, t: &str| UserMetadataField {
        id: name.into(),
        field_name: name.into(),
        friendly_name: name.into(),
        field_type: t.into(),
        profile: true,
        registration: false,
    };
    let mut settings = AppSettings {
        auth_origin: "https://shop.example".into(),
        allowed_identifier: "both".into(),
        login_url: "/login".into(),
        redirect_url: "/dashboard".into(),
        user_metadata_schema: vec![field("plan", "string"), field("seats", "integer")],
        ..AppSettings::default()
    };
    tweak(&mut settings);
    let new = NewApp {
        id: None,
        name: "Shop".into(),
        settings,
    };
    let (created, key) = apps::create(&app.passage(), new).await.unwrap();
    PassageApp {
        app_id: created.id,
        key,
    }
}

/// `method /v1/apps/{app_id}{path}` with an optional Bearer credential and JSON body.
pub async fn call(
    app: &TestApp,
    method: Method,
    app_id: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, app.url(&format!("/v1/apps/{app_id}{path}")));
    if let Some(credential) = bearer {
        req = req.bearer_auth(credential);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let (status, headers, body) = app.send_full(req).await;
    assert_tokens_not_cached(&headers, &body);
    (status, body)
}

/// An answer that carries a session says that no cache may keep it.
pub fn assert_tokens_not_cached(headers: &reqwest::header::HeaderMap, body: &Value) {
    if body.get("auth_result").is_some() {
        let cache = headers.get(reqwest::header::CACHE_CONTROL);
        assert_eq!(
            cache.and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{body}"
        );
    }
}

/// Checks `token` with `jsonwebtoken` against the served JWKS, RS256 pinned, audience checked.
pub async fn verify(app: &TestApp, app_id: &str, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    try_verify(app, app_id, token).await.unwrap()
}

/// As [`verify`], answering why a token is refused.
pub async fn try_verify(app: &TestApp, app_id: &str, token: &str) -> Result<Value, String> {
    let (_, jwks) = app
        .send(
            app.http
                .get(app.url(&format!("/v1/apps/{app_id}/.well-known/jwks.json"))),
        )
        .await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("kid not published")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[app_id]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// The magic link URL in a message (an SMS text, or a mail that may be quoted-printable).
pub fn link_in(text: &str) -> String {
    let text = text
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    text.split_whitespace()
        .find(|w| w.starts_with("https://") && w.contains("psg_magic_link="))
        .unwrap_or_else(|| panic!("no magic link in {text:?}"))
        .to_string()
}

/// The token a magic link URL carries.
pub fn token_of(url: &str) -> String {
    url.split("psg_magic_link=").nth(1).unwrap().to_string()
}

/// `PATCH magic-link/activate` with a link's token.
pub async fn activate(app: &TestApp, app_id: &str, token: &str) -> (StatusCode, Value) {
    call(
        app,
        Method::PATCH,
        app_id,
        "/magic-link/activate",
        None,
        Some(serde_json::json!({ "magic_link": token })),
    )
    .await
}

/// A session for the user with `email` (created when new): an embeddable magic link made
/// with the app key, then activated. Returns the `auth_result`.
pub async fn sign_in(app: &TestApp, p: &PassageApp, email: &str) -> Value {
    let (code, made) = call(
        app,
        Method::POST,
        &p.app_id,
        "/magic-links",
        Some(&p.key),
        Some(serde_json::json!({ "email": email })),
    )
    .await;
    assert_eq!(code, 201, "{made}");
    let secret = made["magic_link"]["secret"].as_str().unwrap();
    let (code, auth) = activate(app, &p.app_id, secret).await;
    assert_eq!(code, 200, "{auth}");
    auth["auth_result"].clone()
}
