//! Social login against a real OpenID Connect provider: the npm package oidc-provider
//! (`tests/oidc/`), started on 127.0.0.1 for each scenario, with its login form posted and
//! its redirects followed as a browser without JavaScript would (cookies kept).

use std::{collections::HashMap, path::PathBuf, process::Stdio};

use reqwest::{
    header::{COOKIE, LOCATION, SET_COOKIE},
    Method,
};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::Mutex,
};
use url::Url;

use super::{
    authorize, browser, callback, pkce, query, set_connection, token, APP_REDIRECT, APP_STATE,
};
use crate::{
    both_backends,
    harness::{Backend, TestApp},
    passage::{call, create_app, sign_in, verify, PassageApp},
};

both_backends!(a_real_openid_provider_logs_people_in);

const CLIENT_ID: &str = "keyhaven-at-oidc";
const CLIENT_SECRET: &str = "oidc-client-secret";

/// The provider's folder, its packages installed once per test run.
async fn provider_dir() -> PathBuf {
    static INSTALLED: Mutex<bool> = Mutex::const_new(false);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    let mut installed = INSTALLED.lock().await;
    if !*installed && !dir.join("node_modules/oidc-provider").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .await
            .expect("npm (Node 20) runs the OpenID provider");
        assert!(status.success(), "npm ci in tests/oidc failed");
    }
    *installed = true;
    dir
}

/// oidc-provider with one client whose redirect URI is the app's callback; its issuer URL.
/// It exits when the child's stdin closes (the test ends) or after ten minutes.
async fn start_provider(redirect_uri: &str) -> (Child, String) {
    let dir = provider_dir().await;
    let clients = json!([{
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect_uri],
    }]);
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .env("OIDC_CLIENTS", clients.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs the OpenID provider");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("the provider's issuer line");
    let issuer: Value = serde_json::from_str(&line).unwrap();
    // Its stdout stays open: a write to a closed pipe would end it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, issuer["issuer"].as_str().unwrap().to_string())
}

/// A person at the provider's pages: signs in as `login` and is sent back, the cookies kept
/// across the provider's redirects. The provider's redirect to Keyhaven.
async fn sign_in_at_provider(authorize_url: Url, login: &str, keyhaven_public: &str) -> Url {
    let http = browser();
    let mut cookies: HashMap<String, String> = HashMap::new();
    let mut url = authorize_url;
    for _ in 0..12 {
        if url.as_str().starts_with(keyhaven_public) {
            return url;
        }
        let jar = |cookies: &HashMap<String, String>| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let res = http
            .get(url.clone())
            .header(COOKIE, jar(&cookies))
            .send()
            .await
            .unwrap();
        keep_cookies(&mut cookies, &res);
        let res = if res.status() == 200 {
            // The login form: post the login name to its action.
            let page = res.text().await.unwrap();
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .expect("a login form");
            let res = http
                .post(url.join(action).unwrap())
                .header(COOKIE, jar(&cookies))
                .form(&[("login", login)])
                .send()
                .await
                .unwrap();
            keep_cookies(&mut cookies, &res);
            res
        } else {
            res
        };
        assert!(
            res.status().is_redirection(),
            "provider answered {}",
            res.status()
        );
        url = url.join(res.headers()[LOCATION].to_str().unwrap()).unwrap();
    }
    panic!("the provider never sent the person back");
}

fn keep_cookies(cookies: &mut HashMap<String, String>, res: &reqwest::Response) {
    for header in res.headers().get_all(SET_COOKIE) {
        let pair = header.to_str().unwrap().split(';').next().unwrap();
        if let Some((name, value)) = pair.split_once('=') {
            cookies.insert(name.trim().to_string(), value.to_string());
        }
    }
}

/// One whole login as `login`: Keyhaven's redirect back to the app.
async fn provider_login(app: &TestApp, p: &PassageApp, login: &str) -> (Url, String) {
    let (verifier, challenge) = pkce();
    let at_provider = authorize(app, p, "corp-oidc", &challenge).await.unwrap();
    let q = query(&at_provider);
    assert_eq!(q["scope"], "openid email");
    assert!(q.contains_key("nonce"));
    let to_keyhaven = sign_in_at_provider(at_provider, login, &app.config.public_url).await;
    let back = callback(app, &to_keyhaven).await.unwrap();
    assert!(back.as_str().starts_with(APP_REDIRECT), "{back}");
    assert_eq!(query(&back)["state"], APP_STATE);
    (back, verifier)
}

async fn a_real_openid_provider_logs_people_in(b: Backend) {
    let app = TestApp::spawn(b).await;
    let p = create_app(&app, |s| {
        s.allowed_redirect_urls = vec![APP_REDIRECT.into()]
    })
    .await;
    let redirect_uri = format!(
        "{}/v1/apps/{}/social/oauth2_callback",
        app.config.public_url, p.app_id
    );
    let (_provider, issuer) = start_provider(&redirect_uri).await;
    set_connection(
        &app,
        &p,
        "corp-oidc",
        json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": issuer}),
    )
    .await;

    // A new person: a new user with the provider's verified email.
    let (back, verifier) = provider_login(&app, &p, "alice@corp.example").await;
    let (status, body) = token(&app, &p, &query(&back)["code"], &verifier).await;
    assert_eq!(status, 201, "{body}");
    let auth_token = body["auth_result"]["auth_token"].as_str().unwrap();
    let claims = verify(&app, &p.app_id, auth_token).await;
    let (_, me) = call(
        &app,
        Method::GET,
        &p.app_id,
        "/currentuser",
        Some(auth_token),
        None,
    )
    .await;
    assert_eq!(me["user"]["id"], claims["sub"]);
    assert_eq!(me["user"]["email"], "alice@corp.example");
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(
        me["user"]["social_connections"]["corp-oidc"]["provider_id"],
        "alice@corp.example"
    );

    // The same person again: the same user.
    let (back, verifier) = provider_login(&app, &p, "alice@corp.example").await;
    let (status, body) = token(&app, &p, &query(&back)["code"], &verifier).await;
    assert_eq!(status, 201, "{body}");
    let again = verify(
        &app,
        &p.app_id,
        body["auth_result"]["auth_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(again["sub"], claims["sub"]);

    // An address the provider does not vouch for never reaches an existing user's account.
    sign_in(&app, &p, "unverified-bob@example.test").await;
    let (back, _) = provider_login(&app, &p, "unverified-bob").await;
    assert_eq!(query(&back)["error"], "access_denied", "{back}");
    assert!(!query(&back).contains_key("code"));
}
