//! A provider for social login tests, over real HTTP on 127.0.0.1: GitHub's token, user and
//! emails endpoints (errors as HTTP 200 with `error`, as GitHub answers them), and an OpenID
//! Connect provider (discovery, JWKS, token endpoint) whose ID tokens a test can spoil one
//! claim at a time. The person's consent is the test's call to [`FakeProvider::approve`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Form, State},
    http::{HeaderMap, StatusCode},
    routing::{get, post},
    Json, Router,
};
use keyhaven::crypto::{self, rs256::SigningKey};
use serde_json::{json, Value};
use url::Url;

pub const CLIENT_ID: &str = "keyhaven-client";
pub const CLIENT_SECRET: &str = "provider-secret";

/// Who approves at the provider.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

impl Person {
    pub fn verified(id: &str, email: &str) -> Person {
        Person {
            id: id.into(),
            email: Some(email.into()),
            email_verified: true,
        }
    }
}

/// How the next ID token is spoiled.
#[derive(Debug, Clone, Default)]
pub struct Spoil {
    pub audience: Option<String>,
    pub nonce: Option<String>,
    /// Seconds from now; negative for an expired token.
    pub expires_in: Option<i64>,
    /// Signed with a key the JWKS does not list.
    pub unknown_key: bool,
    /// `alg: none`, no signature.
    pub unsigned: bool,
}

struct Approval {
    person: Person,
    challenge: String,
    redirect_uri: String,
    nonce: String,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, Approval>,
    tokens: HashMap<String, Person>,
    spoil: Spoil,
    /// GitHub's answer to the next token request, instead of a token.
    token_error: Option<String>,
    /// Keys published in the JWKS; the last one signs.
    keys: Vec<Arc<SigningKey>>,
    token_requests: usize,
}

#[derive(Clone)]
pub struct FakeProvider {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

fn new_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate().unwrap().0)
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            keys: vec![new_key()],
            ..Inner::default()
        }));
        let provider = FakeProvider { base, inner };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/login/oauth/access_token", post(token))
            .route("/user", get(github_user))
            .route("/user/emails", get(github_emails))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        provider
    }

    /// The person consents to the authorization request at `authorize` (the URL Keyhaven
    /// redirected to): the provider's redirect back to Keyhaven, with a code.
    pub fn approve(&self, authorize: &Url, person: Person) -> Url {
        let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        let code = crypto::random_token();
        self.inner.lock().unwrap().codes.insert(
            code.clone(),
            Approval {
                person,
                challenge: q["code_challenge"].clone(),
                redirect_uri: q["redirect_uri"].clone(),
                nonce: q.get("nonce").cloned().unwrap_or_default(),
            },
        );
        let mut back = Url::parse(&q["redirect_uri"]).unwrap();
        back.query_pairs_mut()
            .append_pair("code", &code)
            .append_pair("state", &q["state"]);
        back
    }

    pub fn spoil_next_id_token(&self, spoil: Spoil) {
        self.inner.lock().unwrap().spoil = spoil;
    }

    pub fn fail_next_token_request(&self, error: &str) {
        self.inner.lock().unwrap().token_error = Some(error.into());
    }

    /// Publishes a new signing key (the old one stays listed).
    pub fn rotate_key(&self) {
        self.inner.lock().unwrap().keys.push(new_key());
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }
}

async fn discovery(State(p): State<FakeProvider>) -> Json<Value> {
    let base = &p.base;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

async fn jwks(State(p): State<FakeProvider>) -> Json<Value> {
    let keys: Vec<Value> = p
        .inner
        .lock()
        .unwrap()
        .keys
        .iter()
        .map(|k| k.jwk())
        .collect();
    Json(json!({ "keys": keys }))
}

/// The client authenticates with HTTP Basic or in the body; PKCE and the redirect URI must
/// match the authorization request.
async fn token(
    State(p): State<FakeProvider>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let mut inner = p.inner.lock().unwrap();
    inner.token_requests += 1;
    if let Some(error) = inner.token_error.take() {
        // GitHub's way: HTTP 200 with an error.
        return (
            StatusCode::OK,
            Json(json!({"error": error, "error_description": "the code is wrong"})),
        );
    }
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let expected_basic = format!(
        "Basic {}",
        base64_standard(&format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let client_ok = basic.as_deref() == Some(expected_basic.as_str())
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET));
    if !client_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        );
    }
    let refused = |what: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": what})),
        )
    };
    let Some(approval) = form.get("code").and_then(|c| inner.codes.remove(c)) else {
        return refused("unknown code");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if crypto::base64url(&crypto::sha256(&verifier)) != approval.challenge {
        return refused("PKCE verifier mismatch");
    }
    if form.get("redirect_uri") != Some(&approval.redirect_uri) {
        return refused("redirect_uri mismatch");
    }
    let access_token = crypto::random_token();
    inner
        .tokens
        .insert(access_token.clone(), approval.person.clone());
    let spoil = std::mem::take(&mut inner.spoil);
    let now = chrono_now();
    let person = &approval.person;
    let mut claims = json!({
        "iss": p.base,
        "sub": person.id,
        "aud": spoil.audience.unwrap_or_else(|| CLIENT_ID.into()),
        "iat": now,
        "exp": now + spoil.expires_in.unwrap_or(300),
        "nonce": spoil.nonce.unwrap_or(approval.nonce),
        "email_verified": person.email_verified,
    });
    if let Some(email) = &person.email {
        claims["email"] = json!(email);
    }
    let id_token = if spoil.unsigned {
        format!(
            "{}.{}.",
            crypto::base64url(br#"{"alg":"none","typ":"JWT"}"#),
            crypto::base64url(claims.to_string().as_bytes())
        )
    } else if spoil.unknown_key {
        new_key().sign_jwt(&claims).unwrap()
    } else {
        inner.keys.last().unwrap().sign_jwt(&claims).unwrap()
    };
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access_token,
            "token_type": "bearer",
            "scope": "read:user,user:email",
            "expires_in": 300,
            "id_token": id_token,
        })),
    )
}

fn person_of(p: &FakeProvider, headers: &HeaderMap) -> Option<Person> {
    assert!(
        headers.contains_key("user-agent"),
        "GitHub refuses API calls without a User-Agent"
    );
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    p.inner.lock().unwrap().tokens.get(token).cloned()
}

async fn github_user(
    State(p): State<FakeProvider>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    match person_of(&p, &headers) {
        // The profile's email is the public one, here none.
        Some(person) => (
            StatusCode::OK,
            Json(json!({"id": person.id.parse::<u64>().unwrap(), "login": "octo", "email": null})),
        ),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        ),
    }
}

async fn github_emails(
    State(p): State<FakeProvider>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    match person_of(&p, &headers) {
        Some(person) => {
            let mut emails =
                vec![json!({"email": "old@users.example", "primary": false, "verified": true})];
            if let Some(email) = person.email {
                emails.push(
                    json!({"email": email, "primary": true, "verified": person.email_verified}),
                );
            }
            (StatusCode::OK, Json(Value::from(emails)))
        }
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        ),
    }
}

fn base64_standard(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
