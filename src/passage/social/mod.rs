//! Social login (OAuth 2.0 / OpenID Connect with PKCE), a sibling of passcodes, magic links
//! and passkeys. The app's front end sends the person to `social/authorize` with its PKCE
//! challenge; Keyhaven sends them on to the provider with its own state, PKCE and nonce; the
//! provider returns to `social/oauth2_callback`, where Keyhaven learns who the person is and
//! hands the app a one-time code; the app trades it, with its PKCE verifier, at
//! `social/token` for a session (or at `link_account` for a link to the signed-in user).
//!
//! The flow and the code are ceremonies in the database (single use, expiring), so each
//! step may land on another node. Who the person is becomes a user only at the token step,
//! in the unit that ends the code: found by a link made before, linked to the user with the
//! same email only when both sides verified it, or created.

mod apple;
pub mod connections;
mod links;
mod providers;

use serde::{Deserialize, Serialize};
use url::Url;

pub use links::{link, of_user, of_users, unlink};
pub use providers::Providers;
use providers::{Identity, ProviderError};

use super::{
    sessions::{self, AuthResult},
    users, App, Passage,
};
use crate::{
    crypto,
    domain::{now_ms, Email, UserStatus},
    error::Error,
    storage::{CeremonyRow, SocialLinkRow, Store, Unit, User},
};

/// How long the person may take at the provider.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the app has to trade the code for a session.
const CODE_TTL_MS: i64 = 60 * 1000;

const FLOW: &str = "social_flow";
const CODE: &str = "social_code";

/// `social/authorize`'s query.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthorizeRequest {
    pub redirect_uri: String,
    pub state: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub connection_type: String,
}

/// `social/oauth2_callback`'s query (or Apple's form).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CallbackRequest {
    pub code: String,
    pub state: String,
    pub error: String,
    pub error_description: String,
    /// The issuer of the response (RFC 9207), when the provider names it.
    pub iss: String,
}

/// A started flow, kept until the provider returns.
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    connection_type: String,
    redirect_uri: String,
    /// The app's own state, given back with the code.
    app_state: String,
    code_challenge: String,
    verifier: String,
    nonce: String,
}

/// What the one-time code stands for.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Grant {
    pub connection_type: String,
    code_challenge: String,
    pub identity: Identity,
}

impl Grant {
    /// The link of the grant's identity to `user_id`, made at `now`.
    pub(super) fn link_to(&self, app: &App, user_id: &str, now: i64) -> SocialLinkRow {
        SocialLinkRow {
            app_id: app.id.clone(),
            user_id: user_id.to_string(),
            connection_type: self.connection_type.clone(),
            provider_id: self.identity.provider_id.clone(),
            provider_identifier: self.identity.email.clone().unwrap_or_default(),
            created_at: now,
            last_login_at: now,
        }
    }
}

/// The ceremony id of a state or code: its digest, so the database holds no usable secret.
fn ceremony_id(secret: &str) -> String {
    crypto::base64url(&crypto::sha256(secret))
}

/// Keyhaven's redirect URI at the providers.
fn callback_url(p: &Passage, app: &App) -> String {
    format!("{}/social/oauth2_callback", p.issuer(&app.id))
}

/// `social/authorize`: checks the app's request and answers where to send the person.
pub async fn authorize(p: &Passage, app: &App, r: AuthorizeRequest) -> Result<Url, Error> {
    // Byte for byte: a prefix, a query or another port is another URL.
    if !app.settings.allowed_redirect_urls.contains(&r.redirect_uri) {
        return Err(Error::invalid(
            "redirect_uri",
            "is not one of the app's allowed redirect URLs",
        ));
    }
    if r.code_challenge_method != "S256" {
        return Err(Error::invalid("code_challenge_method", "must be S256"));
    }
    let challenge_ok = r.code_challenge.len() == 43
        && r.code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return Err(Error::invalid(
            "code_challenge",
            "must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    let connection = connections::named(p, app, &r.connection_type).await?;
    let state = crypto::random_token();
    let authorization = p
        .providers
        .authorize(&connection, &callback_url(p, app), &state)
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("{}: {}", e.error, e.description)))?;
    let flow = Flow {
        connection_type: r.connection_type,
        redirect_uri: r.redirect_uri,
        app_state: r.state,
        code_challenge: r.code_challenge,
        verifier: authorization.verifier,
        nonce: authorization.nonce,
    };
    store_ceremony(p, app, FLOW, &state, &flow, FLOW_TTL_MS).await?;
    Ok(authorization.url)
}

/// `social/oauth2_callback`: where to send the person back. Without a known state there is
/// nowhere safe to send them (an error); once it is known, every failure goes back to the
/// app's redirect URL with `error`, `error_description` and the app's state.
pub async fn callback(p: &Passage, app: &App, r: CallbackRequest) -> Result<Url, Error> {
    let unknown = || Error::invalid("state", "is unknown, used or expired");
    if r.state.is_empty() {
        return Err(unknown());
    }
    let id = ceremony_id(&r.state);
    let now = now_ms();
    let (_, stored) = p
        .store
        .ceremony(&app.id, &id, FLOW, now)
        .await?
        .ok_or_else(unknown)?;
    if !p.store.drop_ceremony(&app.id, &id, FLOW, now).await? {
        return Err(unknown());
    }
    let flow: Flow = from_json(&stored)?;
    let back = |query: &[(&str, &str)]| -> Result<Url, Error> {
        let mut url = Url::parse(&flow.redirect_uri)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored redirect URL: {e}")))?;
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("state", &flow.app_state);
        Ok(url)
    };
    let failed = |e: ProviderError| {
        tracing::info!(app_id = %app.id, connection = %flow.connection_type, error = %e.error, "social login failed: {}", e.description);
        back(&[("error", &e.error), ("error_description", &e.description)])
    };
    if !r.error.is_empty() {
        let description = if r.error_description.is_empty() {
            "the provider refused the login".to_string()
        } else {
            r.error_description
        };
        return failed(ProviderError {
            error: r.error,
            description,
        });
    }
    if r.code.is_empty() {
        return failed(ProviderError {
            error: "invalid_request".into(),
            description: "the provider returned no code".into(),
        });
    }
    let connection = match connections::named(p, app, &flow.connection_type).await {
        Ok(c) => c,
        Err(e) => {
            return failed(ProviderError {
                error: "server_error".into(),
                description: e.to_string(),
            })
        }
    };
    let issuer = &connection.provider.issuer;
    if !r.iss.is_empty() && !issuer.is_empty() && r.iss.trim_end_matches('/') != issuer {
        // A response from another provider than the one the flow went to (a mix-up).
        return failed(ProviderError {
            error: "invalid_request".into(),
            description: "the response comes from another issuer".into(),
        });
    }
    let mut identity = match p
        .providers
        .identify(
            &connection,
            &callback_url(p, app),
            &r.code,
            &flow.verifier,
            &flow.nonce,
        )
        .await
    {
        Ok(identity) => identity,
        Err(e) => return failed(e),
    };
    // Stored and compared as Keyhaven writes addresses; one it cannot read is no address.
    identity.email = identity
        .email
        .and_then(|e| Email::parse(&e).ok())
        .map(|e| e.as_str().to_string());
    // A login the token step would refuse is refused on the redirect already.
    if let Err(refusal) = account(p, app, &flow.connection_type, &identity).await? {
        return failed(refusal);
    }
    let code = crypto::random_token();
    let grant = Grant {
        connection_type: flow.connection_type.clone(),
        code_challenge: flow.code_challenge.clone(),
        identity,
    };
    store_ceremony(p, app, CODE, &code, &grant, CODE_TTL_MS).await?;
    back(&[("code", &code)])
}

/// Whom the identity logs in as.
enum Account {
    /// Linked before.
    Linked(String),
    /// The user with the same email, both sides having verified it: linked now.
    SameEmail(Box<User>),
    /// Nobody yet.
    New,
}

async fn account(
    p: &Passage,
    app: &App,
    connection_type: &str,
    identity: &Identity,
) -> Result<Result<Account, ProviderError>, Error> {
    if let Some((link, status)) = p
        .store
        .social_link(&app.id, connection_type, &identity.provider_id)
        .await?
    {
        if status == UserStatus::Inactive {
            return Ok(Err(ProviderError {
                error: "access_denied".into(),
                description: "this user is deactivated".into(),
            }));
        }
        return Ok(Ok(Account::Linked(link.user_id)));
    }
    let same_email = match &identity.email {
        Some(email) => p.store.find_user(&app.id, email).await?,
        None => None,
    };
    Ok(match same_email {
        Some(user) if user.email_verified && identity.email_verified => {
            if user.status == UserStatus::Inactive {
                Err(ProviderError {
                    error: "access_denied".into(),
                    description: "this user is deactivated".into(),
                })
            } else {
                Ok(Account::SameEmail(Box::new(user)))
            }
        }
        // An unverified address on either side proves nothing: no takeover.
        Some(_) => Err(ProviderError {
            error: "access_denied".into(),
            description: "a user with this email exists; log in as that user and link this \
                          provider from there"
                .into(),
        }),
        None if !app.settings.public_signup => Err(ProviderError {
            error: "access_denied".into(),
            description: "this app does not allow public sign-up".into(),
        }),
        None => Ok(Account::New),
    })
}

/// Reads the code's grant and checks the app's PKCE verifier. A wrong verifier ends the code.
pub(super) async fn redeem(
    p: &Passage,
    app: &App,
    code: &str,
    verifier: &str,
) -> Result<(String, Grant), Error> {
    let unknown = || Error::invalid("code", "is unknown, used or expired");
    let id = ceremony_id(code);
    let now = now_ms();
    let (_, stored) = p
        .store
        .ceremony(&app.id, &id, CODE, now)
        .await?
        .ok_or_else(unknown)?;
    let grant: Grant = from_json(&stored)?;
    let presented = crypto::base64url(&crypto::sha256(verifier));
    if !crypto::constant_time_eq(presented.as_bytes(), grant.code_challenge.as_bytes()) {
        p.store.drop_ceremony(&app.id, &id, CODE, now).await?;
        return Err(Error::invalid(
            "verifier",
            "does not match the code challenge; the code is no longer valid",
        ));
    }
    Ok((id, grant))
}

/// `social/token`: the code and the app's PKCE verifier for a session.
pub async fn token(
    p: &Passage,
    app: &App,
    code: &str,
    verifier: &str,
) -> Result<AuthResult, Error> {
    let (id, grant) = redeem(p, app, code, verifier).await?;
    let identity = &grant.identity;
    let account = account(p, app, &grant.connection_type, identity)
        .await?
        .map_err(|refusal| Error::Forbidden(refusal.description))?;
    let now = now_ms();
    let (user_id, mut steps) = match account {
        Account::Linked(user_id) => {
            let touch = Store::touch_social_link(
                &app.id,
                &grant.connection_type,
                &identity.provider_id,
                identity.email.as_deref().unwrap_or_default(),
                now,
            );
            (user_id, vec![touch])
        }
        Account::SameEmail(user) => {
            let insert = Store::insert_social_link(&grant.link_to(app, &user.id, now));
            (user.id, vec![insert])
        }
        Account::New => {
            let user =
                users::social_user(app, identity.email.clone(), identity.email_verified, now);
            let steps = vec![
                Store::new_user(&user),
                Store::insert_social_link(&grant.link_to(app, &user.id, now)),
            ];
            (user.id, steps)
        }
    };
    let (result, session) = sessions::with_login(p, app, &user_id, now).await?;
    steps.extend(session);
    let end = Store::end_ceremony(&app.id, &id, CODE, now).into();
    match p.store.commit(Unit::chain(end, steps)).await {
        Ok(true) => Ok(result),
        Ok(false) => Err(Error::invalid("code", "is unknown, used or expired")),
        Err(Error::Conflict(_)) => Err(Error::Forbidden(
            "this identity or email was linked to another user meanwhile".into(),
        )),
        Err(e) => Err(e),
    }
}

async fn store_ceremony(
    p: &Passage,
    app: &App,
    kind: &'static str,
    secret: &str,
    state: &impl Serialize,
    ttl_ms: i64,
) -> Result<(), Error> {
    let ceremony = CeremonyRow {
        id: ceremony_id(secret),
        app_id: app.id.clone(),
        kind,
        user_id: String::new(),
        state: serde_json::to_string(state).map_err(|e| Error::Internal(e.into()))?,
        expires_at: now_ms() + ttl_ms,
    };
    p.store
        .commit(Unit::all(vec![Store::insert_ceremony(&ceremony)]))
        .await
        .map(drop)
}

fn from_json<T: serde::de::DeserializeOwned>(stored: &str) -> Result<T, Error> {
    serde_json::from_str(stored)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored social login: {e}")))
}
