//! Social login end to end over HTTP, on both databases: GitHub-shaped OAuth 2.0 and OpenID
//! Connect against a provider served by the test (`provider.rs`), and against a real
//! OpenID Connect provider, the npm package oidc-provider (`oidc.rs`).

mod oidc;
pub mod provider;

use reqwest::{header::LOCATION, redirect::Policy, Method, StatusCode};
use serde_json::{json, Value};
use url::Url;

use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{call, create_app, sign_in, verify, PassageApp},
};
use provider::{FakeProvider, Person, Spoil, CLIENT_ID, CLIENT_SECRET};

both_backends!(
    a_github_login_creates_a_user_then_logs_them_in_again,
    connections_are_set_over_http_with_the_app_key,
    authorize_checks_the_app_request,
    state_and_code_are_single_use_and_pkce_bound,
    provider_errors_go_back_to_the_app,
    id_tokens_are_verified,
    an_unverified_email_never_takes_over_an_account,
    identities_are_linked_listed_and_unlinked,
    a_flow_started_on_one_node_finishes_on_another,
);

pub const APP_REDIRECT: &str = "https://shop.example/auth/callback";
pub const APP_STATE: &str = "app-state-1";

/// The app's PKCE pair: a verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = keyhaven::crypto::random_token() + "-verifier-padding";
    let challenge = keyhaven::crypto::base64url(&keyhaven::crypto::sha256(&verifier));
    (verifier, challenge)
}

/// A client that shows redirects instead of following them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The 302's Location, or the JSON error when there is none.
pub async fn redirected(res: reqwest::Response) -> Result<Url, (StatusCode, Value)> {
    let status = res.status();
    if status == StatusCode::FOUND {
        let location = res.headers()[LOCATION].to_str().unwrap().to_string();
        return Ok(Url::parse(&location).unwrap());
    }
    Err((status, res.json().await.unwrap_or(Value::Null)))
}

pub fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// An app allowed to return to [`APP_REDIRECT`], with `connection` set to the provider.
async fn social_app(app: &TestApp, provider: &FakeProvider, connection: &str) -> PassageApp {
    let p = create_app(app, |s| s.allowed_redirect_urls = vec![APP_REDIRECT.into()]).await;
    set_connection(app, &p, connection, settings(provider, connection)).await;
    p
}

pub fn settings(provider: &FakeProvider, connection: &str) -> Value {
    let base = &provider.base;
    if connection == "github" {
        json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorize_url": format!("{base}/login/oauth/authorize"),
            "token_url": format!("{base}/login/oauth/access_token"),
            "userinfo_url": format!("{base}/user"),
        })
    } else {
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": base})
    }
}

pub async fn set_connection(app: &TestApp, p: &PassageApp, connection: &str, body: Value) {
    let path = format!("/social-connections/{connection}");
    let (status, answer) = call(app, Method::PUT, &p.app_id, &path, Some(&p.key), Some(body)).await;
    assert!(status == 201 || status == 200, "{status} {answer}");
}

/// `social/authorize` with the app's PKCE challenge: the provider URL it redirects to.
pub async fn authorize(
    app: &TestApp,
    p: &PassageApp,
    connection: &str,
    challenge: &str,
) -> Result<Url, (StatusCode, Value)> {
    let url = format!(
        "/v1/apps/{}/social/authorize?redirect_uri={}&state={APP_STATE}&code_challenge={challenge}&code_challenge_method=S256&connection_type={connection}",
        p.app_id,
        urlencode(APP_REDIRECT),
    );
    redirected(browser().get(app.url(&url)).send().await.unwrap()).await
}

/// The provider's redirect to Keyhaven's callback, sent to this server (the provider names
/// the server's public URL): Keyhaven's redirect to the app.
pub async fn callback(app: &TestApp, provider_redirect: &Url) -> Result<Url, (StatusCode, Value)> {
    let path = &provider_redirect[url::Position::BeforePath..];
    redirected(browser().get(app.url(path)).send().await.unwrap()).await
}

/// `social/token`: the status and body.
pub async fn token(
    app: &TestApp,
    p: &PassageApp,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let path = format!(
        "/social/token?code={}&verifier={}",
        urlencode(code),
        urlencode(verifier)
    );
    call(app, Method::GET, &p.app_id, &path, None, None).await
}

/// A whole login as `person`: the app's code (after checking the redirect back).
async fn login_code(
    app: &TestApp,
    provider: &FakeProvider,
    p: &PassageApp,
    connection: &str,
    person: Person,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let at_provider = authorize(app, p, connection, &challenge).await.unwrap();
    let back = callback(app, &provider.approve(&at_provider, person))
        .await
        .unwrap();
    let q = query(&back);
    assert!(back.as_str().starts_with(APP_REDIRECT), "{back}");
    assert_eq!(q["state"], APP_STATE);
    assert!(!q.contains_key("error"), "{back}");
    (q["code"].clone(), verifier)
}

/// A whole login as `person`: the `auth_result`.
async fn log_in(
    app: &TestApp,
    provider: &FakeProvider,
    p: &PassageApp,
    connection: &str,
    person: Person,
) -> Value {
    let (code, verifier) = login_code(app, provider, p, connection, person).await;
    let (status, body) = token(app, p, &code, &verifier).await;
    assert_eq!(status, 201, "{body}");
    body["auth_result"].clone()
}

/// Goes as far as Keyhaven's redirect back to the app: its query.
async fn back_to_app(
    app: &TestApp,
    provider: &FakeProvider,
    p: &PassageApp,
    connection: &str,
    person: Person,
) -> std::collections::HashMap<String, String> {
    let (_, challenge) = pkce();
    let at_provider = authorize(app, p, connection, &challenge).await.unwrap();
    let back = callback(app, &provider.approve(&at_provider, person))
        .await
        .unwrap();
    assert!(back.as_str().starts_with(APP_REDIRECT), "{back}");
    query(&back)
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn current_user(app: &TestApp, p: &PassageApp, auth_token: &str) -> Value {
    let (status, body) = call(
        app,
        Method::GET,
        &p.app_id,
        "/currentuser",
        Some(auth_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["user"].clone()
}

async fn a_github_login_creates_a_user_then_logs_them_in_again(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "github").await;

    let (_, challenge) = pkce();
    let at_provider = authorize(&app, &p, "github", &challenge).await.unwrap();
    let q = query(&at_provider);
    assert!(at_provider
        .as_str()
        .starts_with(&format!("{}/login/oauth/authorize", provider.base)));
    assert_eq!(q["scope"], "read:user user:email");
    // Keyhaven's own PKCE and state, not the app's.
    assert_ne!(q["code_challenge"], challenge);
    assert_ne!(q["state"], APP_STATE);
    assert_eq!(
        q["redirect_uri"],
        format!(
            "{}/v1/apps/{}/social/oauth2_callback",
            app.config.public_url, p.app_id
        )
    );

    let person = Person::verified("4242", "octo@users.example");
    let first = log_in(&app, &provider, &p, "github", person.clone()).await;
    let claims = verify(&app, &p.app_id, first["auth_token"].as_str().unwrap()).await;
    let user = current_user(&app, &p, first["auth_token"].as_str().unwrap()).await;
    assert_eq!(user["id"], claims["sub"]);
    assert_eq!(user["email"], "octo@users.example");
    assert_eq!(user["email_verified"], true);
    let github = &user["social_connections"]["github"];
    assert_eq!(github["provider_id"], "4242");
    assert_eq!(github["provider_identifier"], "octo@users.example");
    assert!(first["refresh_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));

    let again = log_in(&app, &provider, &p, "github", person).await;
    let claims_again = verify(&app, &p.app_id, again["auth_token"].as_str().unwrap()).await;
    assert_eq!(claims_again["sub"], claims["sub"]);
    let user = current_user(&app, &p, again["auth_token"].as_str().unwrap()).await;
    assert_eq!(user["login_count"], 2);
}

async fn connections_are_set_over_http_with_the_app_key(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = create_app(&app, |_| {}).await;
    let path = "/social-connections/github";
    let body = settings(&provider, "github");

    let (status, _) = call(&app, Method::PUT, &p.app_id, path, None, Some(body.clone())).await;
    assert_eq!(status, 401);
    let (status, answer) = call(
        &app,
        Method::PUT,
        &p.app_id,
        path,
        Some(&p.key),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["social_connections"]["github"]["client_id"],
        CLIENT_ID
    );
    let (status, _) = call(&app, Method::PUT, &p.app_id, path, Some(&p.key), Some(body)).await;
    assert_eq!(status, 200);

    // The App object lists it, never with its secret.
    let (_, got) = call(&app, Method::GET, &p.app_id, "", None, None).await;
    assert_eq!(
        got["app"]["social_connections"],
        json!({"github": {"client_id": CLIENT_ID}})
    );
    assert!(!got.to_string().contains(CLIENT_SECRET));

    for (connection, bad) in [
        // A generic provider needs an issuer or all three endpoints.
        (
            "corp",
            json!({"client_id": "c", "client_secret": "s", "token_url": "https://corp.example/token"}),
        ),
        (
            "corp",
            json!({"client_id": "c", "client_secret": "s", "issuer": "http://corp.example"}),
        ),
        (
            "corp",
            json!({"client_id": "c", "issuer": "https://corp.example"}),
        ),
        (
            "Bad Name",
            json!({"client_id": "c", "client_secret": "s", "issuer": "https://corp.example"}),
        ),
        (
            "apple",
            json!({"client_id": "c", "apple_team_id": "T", "apple_key_id": "K", "apple_private_key": "nope"}),
        ),
        (
            "corp",
            json!({"client_id": "c", "client_secret": "s", "issuer": "https://corp.example", "extra": 1}),
        ),
    ] {
        let path = format!("/social-connections/{}", urlencode(connection));
        let (status, answer) = call(
            &app,
            Method::PUT,
            &p.app_id,
            &path,
            Some(&p.key),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(status, 400, "{bad} → {answer}");
        assert_eq!(answer["code"], "invalid_request");
    }

    let (status, _) = call(&app, Method::DELETE, &p.app_id, path, Some(&p.key), None).await;
    assert_eq!(status, 204);
    let (status, answer) = call(&app, Method::DELETE, &p.app_id, path, Some(&p.key), None).await;
    assert_eq!(status, 404);
    assert_eq!(answer["code"], "social_connection_not_found");
    let (_, got) = call(&app, Method::GET, &p.app_id, "", None, None).await;
    assert_eq!(got["app"]["social_connections"], json!({}));
}

async fn authorize_checks_the_app_request(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "github").await;
    let (_, challenge) = pkce();
    let base = format!("/v1/apps/{}/social/authorize", p.app_id);
    let good = format!(
        "redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&connection_type=github",
        urlencode(APP_REDIRECT)
    );
    let ok = redirected(
        browser()
            .get(app.url(&format!("{base}?{good}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(ok.is_ok(), "{ok:?}");

    let near_misses = [
        "https://shop.example/auth/callback/",
        "https://shop.example/auth/callback?x=1",
        "https://shop.example/auth/callback#f",
        "https://shop.example:444/auth/callback",
        "https://shop.example/auth/callbac",
        "https://shop.example/auth/callback/../evil",
        "http://shop.example/auth/callback",
    ];
    let mut requests: Vec<String> = near_misses
        .iter()
        .map(|r| good.replace(&urlencode(APP_REDIRECT), &urlencode(r)))
        .collect();
    requests.extend([
        good.replace("S256", "plain"),
        good.replace(&format!("code_challenge={challenge}&"), ""),
        good.replace(&challenge, "short"),
        good.replace("connection_type=github", "connection_type=google"),
        good.replace("&connection_type=github", ""),
    ]);
    for q in requests {
        let res = browser()
            .get(app.url(&format!("{base}?{q}")))
            .send()
            .await
            .unwrap();
        let (status, body) = redirected(res).await.expect_err(&q);
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["code"], "invalid_request", "{q}");
    }
    assert_eq!(provider.token_requests(), 0);
}

async fn state_and_code_are_single_use_and_pkce_bound(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "github").await;
    let person = Person::verified("7", "seven@users.example");

    // A state is used once; an unknown one has nowhere to go back to.
    let (verifier, challenge) = pkce();
    let at_provider = authorize(&app, &p, "github", &challenge).await.unwrap();
    let to_keyhaven = provider.approve(&at_provider, person.clone());
    let back = callback(&app, &to_keyhaven).await.unwrap();
    let (status, body) = callback(&app, &to_keyhaven).await.unwrap_err();
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut forged = to_keyhaven.clone();
    forged.set_query(Some("code=x&state=forged"));
    assert_eq!(callback(&app, &forged).await.unwrap_err().0, 400);
    forged.set_query(Some("code=x"));
    assert_eq!(callback(&app, &forged).await.unwrap_err().0, 400);

    // A wrong verifier burns the code; a missing one too.
    let code = query(&back)["code"].clone();
    let (status, body) = token(
        &app,
        &p,
        &code,
        "not-the-verifier-not-the-verifier-0123456789",
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, _) = token(&app, &p, &code, &verifier).await;
    assert_eq!(status, 400);

    // The right verifier works once.
    let (code, verifier) = login_code(&app, &provider, &p, "github", person.clone()).await;
    let (status, _) = token(&app, &p, &code, "").await;
    assert_eq!(status, 400);
    let (code, verifier2) = login_code(&app, &provider, &p, "github", person).await;
    let (status, body) = token(&app, &p, &code, &verifier2).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = token(&app, &p, &code, &verifier2).await;
    assert_eq!(status, 400);
    let _ = verifier;

    // Codes are bound to their app.
    let other = social_app(&app, &provider, "github").await;
    let (code, verifier) = login_code(
        &app,
        &provider,
        &p,
        "github",
        Person::verified("8", "eight@users.example"),
    )
    .await;
    let (status, _) = token(&app, &other, &code, &verifier).await;
    assert_eq!(status, 400);
    let (status, _) = token(&app, &p, &code, &verifier).await;
    assert_eq!(status, 201);
}

async fn provider_errors_go_back_to_the_app(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "github").await;

    // The person declines at the provider.
    let (_, challenge) = pkce();
    let at_provider = authorize(&app, &p, "github", &challenge).await.unwrap();
    let declined = provider.approve(&at_provider, Person::verified("1", "one@users.example"));
    let state = query(&declined)["state"].clone();
    let mut refused = declined.clone();
    refused.set_query(Some(&format!(
        "error=access_denied&error_description=The+user+declined&state={state}"
    )));
    let back = callback(&app, &refused).await.unwrap();
    let q = query(&back);
    assert!(back.as_str().starts_with(APP_REDIRECT));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["error_description"], "The user declined");
    assert_eq!(q["state"], APP_STATE);
    assert!(!q.contains_key("code"));

    // Apple's form POST: the same callback; a response naming another issuer is refused.
    let p_oidc = social_app(&app, &provider, "corp").await;
    let (_, challenge) = pkce();
    let at_provider = authorize(&app, &p_oidc, "corp", &challenge).await.unwrap();
    let to_keyhaven = provider.approve(&at_provider, Person::verified("2", "two@corp.example"));
    let mut form = query(&to_keyhaven);
    form.insert("iss".into(), "https://other-issuer.example".into());
    let res = browser()
        .post(app.url(to_keyhaven.path()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let q = query(&redirected(res).await.unwrap());
    assert_eq!(q["error"], "invalid_request", "{q:?}");
    assert_eq!(q["state"], APP_STATE);
    let res = browser()
        .post(app.url(to_keyhaven.path()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, body) = redirected(res).await.unwrap_err();
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let (_, challenge) = pkce();
    let at_provider = authorize(&app, &p_oidc, "corp", &challenge).await.unwrap();
    let to_keyhaven = provider.approve(&at_provider, Person::verified("2", "two@corp.example"));
    let mut form = query(&to_keyhaven);
    form.insert("iss".into(), provider.base.clone());
    let res = browser()
        .post(app.url(to_keyhaven.path()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let q = query(&redirected(res).await.unwrap());
    assert!(q.contains_key("code"), "{q:?}");

    // GitHub refuses the code (HTTP 200 with an error).
    provider.fail_next_token_request("bad_verification_code");
    let q = back_to_app(
        &app,
        &provider,
        &p,
        "github",
        Person::verified("1", "one@users.example"),
    )
    .await;
    assert_eq!(q["error"], "bad_verification_code");
    assert_eq!(q["state"], APP_STATE);
    assert!(!q.contains_key("code"));
}

async fn id_tokens_are_verified(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "corp").await;
    let person = || Person::verified("subject-1", "ana@corp.example");

    let auth = log_in(&app, &provider, &p, "corp", person()).await;
    let user = current_user(&app, &p, auth["auth_token"].as_str().unwrap()).await;
    assert_eq!(
        user["social_connections"]["corp"]["provider_id"],
        "subject-1"
    );
    assert_eq!(user["email_verified"], true);

    for (what, spoil) in [
        (
            "audience",
            Spoil {
                audience: Some("someone-else".into()),
                ..Spoil::default()
            },
        ),
        (
            "nonce",
            Spoil {
                nonce: Some("replayed".into()),
                ..Spoil::default()
            },
        ),
        (
            "expiry",
            Spoil {
                expires_in: Some(-120),
                ..Spoil::default()
            },
        ),
        (
            "key",
            Spoil {
                unknown_key: true,
                ..Spoil::default()
            },
        ),
        (
            "alg none",
            Spoil {
                unsigned: true,
                ..Spoil::default()
            },
        ),
    ] {
        provider.spoil_next_id_token(spoil);
        let q = back_to_app(&app, &provider, &p, "corp", person()).await;
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("invalid_grant"),
            "{what}: {q:?}"
        );
        assert!(!q.contains_key("code"), "{what}");
        assert_eq!(q["state"], APP_STATE);
    }

    // A key published after discovery was cached: fetched again once, then accepted.
    provider.rotate_key();
    let again = log_in(&app, &provider, &p, "corp", person()).await;
    let claims = verify(&app, &p.app_id, again["auth_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], user["id"]);
}

async fn an_unverified_email_never_takes_over_an_account(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "corp").await;

    // A user who proved their email (magic link).
    let owner = sign_in(&app, &p, "ana@corp.example").await;
    let owner_id =
        verify(&app, &p.app_id, owner["auth_token"].as_str().unwrap()).await["sub"].clone();

    // The provider does not vouch for the address: refused on the redirect.
    let unverified = Person {
        id: "attacker".into(),
        email: Some("ana@corp.example".into()),
        email_verified: false,
    };
    let q = back_to_app(&app, &provider, &p, "corp", unverified).await;
    assert_eq!(q["error"], "access_denied", "{q:?}");
    assert!(!q.contains_key("code"));

    // Both sides verified: the same person, linked.
    let auth = log_in(
        &app,
        &provider,
        &p,
        "corp",
        Person::verified("ana-at-corp", "ana@corp.example"),
    )
    .await;
    let claims = verify(&app, &p.app_id, auth["auth_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], owner_id);

    // A user whose email nobody verified is not taken over by a verified provider email.
    let (status, created) = call(
        &app,
        Method::POST,
        &p.app_id,
        "/users",
        Some(&p.key),
        Some(json!({"email": "bo@corp.example"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let q = back_to_app(
        &app,
        &provider,
        &p,
        "corp",
        Person::verified("bo-at-corp", "bo@corp.example"),
    )
    .await;
    assert_eq!(q["error"], "access_denied", "{q:?}");

    // No email at all: a new user without one.
    let anonymous = Person {
        id: "no-email".into(),
        email: None,
        email_verified: false,
    };
    let auth = log_in(&app, &provider, &p, "corp", anonymous).await;
    let user = current_user(&app, &p, auth["auth_token"].as_str().unwrap()).await;
    assert_eq!(user["email"], "");
    assert_ne!(user["id"], owner_id);
}

async fn identities_are_linked_listed_and_unlinked(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "github").await;
    set_connection(&app, &p, "corp", settings(&provider, "corp")).await;

    // A user signed in by magic link links their GitHub identity.
    let auth = sign_in(&app, &p, "lea@shop.example").await;
    let auth_token = auth["auth_token"].as_str().unwrap().to_string();
    let (code, verifier) = login_code(
        &app,
        &provider,
        &p,
        "github",
        Person::verified("99", "lea@elsewhere.example"),
    )
    .await;
    let link = |code: String, verifier: String, bearer: Option<String>| {
        let app = &app;
        let p = &p;
        async move {
            let path = format!(
                "/currentuser/social/link_account?code={}&verifier={}",
                urlencode(&code),
                urlencode(&verifier)
            );
            call(app, Method::GET, &p.app_id, &path, bearer.as_deref(), None).await
        }
    };
    let (status, _) = link(code.clone(), verifier.clone(), None).await;
    assert_eq!(status, 401);
    let (status, body) = link(code, verifier, Some(auth_token.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, listed) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser/social-connections",
        Some(&auth_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed["social_connections"]["github"]["provider_id"], "99");
    assert_eq!(
        listed["social_connections"]["github"]["provider_identifier"],
        "lea@elsewhere.example"
    );

    // Logging in with GitHub now reaches the same user.
    let again = log_in(
        &app,
        &provider,
        &p,
        "github",
        Person::verified("99", "lea@elsewhere.example"),
    )
    .await;
    let me = verify(&app, &p.app_id, &auth_token).await["sub"].clone();
    assert_eq!(
        verify(&app, &p.app_id, again["auth_token"].as_str().unwrap()).await["sub"],
        me
    );

    // Someone else cannot link the same identity.
    let other = sign_in(&app, &p, "max@shop.example").await;
    let (code, verifier) = login_code(
        &app,
        &provider,
        &p,
        "github",
        Person::verified("99", "lea@elsewhere.example"),
    )
    .await;
    let (status, body) = link(
        code,
        verifier,
        other["auth_token"].as_str().map(str::to_string),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Unlinking: 404 for what is not linked, 200 while another way in remains.
    let path = "/currentuser/social-connections/google";
    let (status, body) = call(
        &app,
        Method::DELETE,
        &p.app_id,
        path,
        Some(&auth_token),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("social_connection_not_found"))
    );
    let path = "/currentuser/social-connections/github";
    let (status, _) = call(
        &app,
        Method::DELETE,
        &p.app_id,
        path,
        Some(&auth_token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (_, listed) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser/social-connections",
        Some(&auth_token),
        None,
    )
    .await;
    assert_eq!(listed["social_connections"], json!({}));

    // A user whose only way in is one provider keeps it.
    let only = Person {
        id: "only-1".into(),
        email: None,
        email_verified: false,
    };
    let auth = log_in(&app, &provider, &p, "corp", only).await;
    let token = auth["auth_token"].as_str().unwrap();
    let (status, body) = call(
        &app,
        Method::DELETE,
        &p.app_id,
        "/currentuser/social-connections/corp",
        Some(token),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("operation_not_allowed"))
    );

    // The Manage API shows the identities too.
    let user_id = verify(&app, &p.app_id, token).await["sub"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, managed) = call(
        &app,
        Method::GET,
        &p.app_id,
        &format!("/users/{user_id}"),
        Some(&p.key),
        None,
    )
    .await;
    assert_eq!(
        managed["user"]["social_connections"]["corp"]["provider_id"],
        "only-1"
    );
    let (_, list) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/users?limit=100",
        Some(&p.key),
        None,
    )
    .await;
    let listed = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == user_id.as_str())
        .unwrap();
    assert_eq!(
        listed["social_connections"]["corp"]["provider_id"],
        "only-1"
    );
}

async fn a_flow_started_on_one_node_finishes_on_another(b: Backend) {
    let app = TestApp::spawn(b).await;
    let provider = FakeProvider::start().await;
    let p = social_app(&app, &provider, "corp").await;
    let second = app.another_node().await;

    let (verifier, challenge) = pkce();
    let at_provider = authorize(&app, &p, "corp", &challenge).await.unwrap();
    let to_keyhaven = provider.approve(&at_provider, Person::verified("n-1", "node@corp.example"));
    let path = &to_keyhaven[url::Position::BeforePath..];
    let res = browser()
        .get(format!("{}{path}", second.base))
        .send()
        .await
        .unwrap();
    let back = redirected(res).await.unwrap();
    let code = query(&back)["code"].clone();
    let (status, body) = token(&app, &p, &code, &verifier).await;
    assert_eq!(status, 201, "{body}");
    second.stop().await;
}
