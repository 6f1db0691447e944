//! Sessions: RS256 auth tokens and rotating refresh tokens.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{json, Value};

use super::apps::{self, App};
use crate::{
    app::AppState,
    crypto::{
        self,
        rs256::{self, SigningKey, VerifyingKey},
    },
    domain::now_ms,
    error::Error,
    storage::{RefreshTokenRow, Store, UserRow},
};

/// Signing keys are re-read this often, so a rotation reaches every node within it.
const KEY_TTL: Duration = Duration::from_secs(60);

/// A cache entry and when it was read.
type Cached<T> = Mutex<HashMap<String, (Arc<T>, Instant)>>;

/// Per-node cache of each app's current signing key (parsing an RSA key is not free) and of
/// its published keys, which check the auth tokens that come back.
#[derive(Debug, Default)]
pub struct SigningKeys {
    keys: Cached<SigningKey>,
    published: Cached<Vec<VerifyingKey>>,
}

impl SigningKeys {
    async fn current(&self, s: &AppState, app_id: &str) -> Result<Arc<SigningKey>, Error> {
        if let Some((key, at)) = lock(&self.keys).get(app_id) {
            if at.elapsed() < KEY_TTL {
                return Ok(key.clone());
            }
        }
        let published = s.store.published_signing_keys(app_id, now_ms()).await?;
        let key = Arc::new(apps::current_signing_key(&s.keys, &published)?);
        lock(&self.keys).insert(app_id.to_string(), (key.clone(), Instant::now()));
        Ok(key)
    }

    /// The published key named `kid`. An unknown kid re-reads the keys (a rotation on
    /// another node), at most once a second per app.
    async fn verifying(
        &self,
        s: &AppState,
        app_id: &str,
        kid: &str,
    ) -> Result<Option<Arc<Vec<VerifyingKey>>>, Error> {
        let has_kid = |keys: &[VerifyingKey]| keys.iter().any(|k| k.kid() == kid);
        if let Some((keys, at)) = lock(&self.published).get(app_id) {
            let fresh = at.elapsed() < KEY_TTL;
            if fresh && (has_kid(keys) || at.elapsed() < Duration::from_secs(1)) {
                return Ok(has_kid(keys).then(|| keys.clone()));
            }
        }
        let keys = s
            .store
            .published_signing_keys(app_id, now_ms())
            .await?
            .iter()
            .map(|k| {
                let jwk =
                    serde_json::from_str(&k.public_jwk).map_err(|e| Error::Internal(e.into()))?;
                VerifyingKey::from_jwk(&jwk)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let keys = Arc::new(keys);
        lock(&self.published).insert(app_id.to_string(), (keys.clone(), Instant::now()));
        Ok(has_kid(&keys).then_some(keys))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user id of a valid auth token of `app`: signed by one of its published keys, `aud`
/// naming the app, not expired. Anything else is `Unauthenticated`.
pub async fn verify(s: &AppState, app: &App, token: &str) -> Result<String, Error> {
    let kid = rs256::jwt_kid(token).ok_or(Error::Unauthenticated)?;
    let keys = s
        .signing_keys
        .verifying(s, &app.id, &kid)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let claims = keys
        .iter()
        .find(|k| k.kid() == kid)
        .and_then(|k| k.verify_jwt(token))
        .ok_or(Error::Unauthenticated)?;
    let now = now_ms() / 1000;
    let audience_ok = match &claims["aud"] {
        Value::Array(a) => a.iter().any(|v| v == app.id.as_str()),
        v => v == app.id.as_str(),
    };
    let live = claims["exp"].as_i64().is_some_and(|exp| exp > now)
        && claims["nbf"].as_i64().is_none_or(|nbf| nbf <= now + 60);
    match claims["sub"].as_str() {
        Some(sub) if audience_ok && live && claims["iss"] == super::issuer(s, &app.id) => {
            Ok(sub.to_string())
        }
        _ => Err(Error::Unauthenticated),
    }
}

/// `auth_result` of an AuthResponse.
#[derive(Debug, Serialize)]
pub struct AuthResult {
    pub auth_token: String,
    pub redirect_url: String,
    pub refresh_token: String,
    /// Epoch seconds; 0 when refresh tokens are off.
    pub refresh_token_expiration: i64,
}

/// A new session for `user`: an auth token and, unless the app turned them off, a refresh
/// token of a new family.
pub async fn start(s: &AppState, app: &App, user: &UserRow) -> Result<AuthResult, Error> {
    let auth_token = auth_token(s, app, &user.id).await?;
    let (refresh_token, refresh_token_expiration) = if app.settings.refresh_enabled {
        let now = now_ms();
        let expires_at = now + app.settings.refresh_absolute_lifetime * 1000;
        let (_, token) = new_refresh_token(
            s,
            app,
            &user.id,
            &uuid::Uuid::new_v4().to_string(),
            expires_at,
            now,
        )
        .await?;
        (token, expires_at / 1000)
    } else {
        (String::new(), 0)
    };
    Ok(AuthResult {
        auth_token,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token,
        refresh_token_expiration,
    })
}

/// The JWT the SDKs accept: RS256 with `kid` and `typ: JWT`; `sub` the user id, `aud` the app
/// id in an array, `iss` the app's issuer, `exp - iat` the app's session length.
async fn auth_token(s: &AppState, app: &App, user_id: &str) -> Result<String, Error> {
    let key = s.signing_keys.current(s, &app.id).await?;
    let iat = now_ms() / 1000;
    let claims = json!({
        "sub": user_id,
        "aud": [app.id],
        "iss": super::issuer(s, &app.id),
        "iat": iat,
        "nbf": iat,
        "exp": iat + app.settings.session_timeout_length,
    });
    key.sign_jwt(&claims)
}

/// Stores a new refresh token of `family_id`; returns (row id, token).
async fn new_refresh_token(
    s: &AppState,
    app: &App,
    user_id: &str,
    family_id: &str,
    expires_at: i64,
    now: i64,
) -> Result<(String, String), Error> {
    let token = crypto::random_token();
    let row = RefreshTokenRow {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: app.id.clone(),
        user_id: user_id.to_string(),
        family_id: family_id.to_string(),
        created_at: now,
        expires_at,
        rotated_at: None,
        successor_sealed: None,
        revoked_at: None,
    };
    s.store
        .write_all(vec![Store::insert_refresh_token(
            &row,
            &crypto::sha256(&token),
        )])
        .await?;
    Ok((row.id, token))
}

/// `POST tokens`: a fresh auth token and the successor of `presented`. The first refresh
/// rotates; a repeat within the grace window (parallel tabs) gets the same successor; a repeat
/// after it is treated as theft and revokes the whole family.
pub async fn refresh(s: &AppState, app: &App, presented: &str) -> Result<AuthResult, Error> {
    let now = now_ms();
    let current = s
        .store
        .refresh_token_by_hash(&app.id, &crypto::sha256(presented.trim()))
        .await?
        .ok_or(Error::Unauthenticated)?;
    if current.revoked_at.is_some() || current.expires_at <= now {
        return Err(Error::Unauthenticated);
    }
    let user = s
        .store
        .get_user(&app.id, &current.user_id)
        .await
        .map_err(|_| Error::Unauthenticated)?;
    if user.status != "active" {
        return Err(Error::Unauthenticated);
    }
    let successor = match current.rotated_at {
        None => rotate(s, app, &current, now).await?,
        Some(_) => None,
    };
    let successor = match successor {
        Some(token) => token,
        // Rotated before, by an earlier request or one racing with this one.
        None => within_grace(s, &current.id, &current.family_id, &app.id, presented).await?,
    };
    Ok(AuthResult {
        auth_token: auth_token(s, app, &user.id).await?,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token: successor,
        refresh_token_expiration: current.expires_at / 1000,
    })
}

/// Writes the successor, then claims the rotation; the loser of a race drops its successor.
async fn rotate(
    s: &AppState,
    app: &App,
    current: &RefreshTokenRow,
    now: i64,
) -> Result<Option<String>, Error> {
    // The family keeps its absolute lifetime.
    let (id, token) = new_refresh_token(
        s,
        app,
        &current.user_id,
        &current.family_id,
        current.expires_at,
        now,
    )
    .await?;
    let sealed = s.keys.seal(&current.id, &token)?;
    if s.store
        .rotate_refresh_token(&current.id, &sealed, now)
        .await?
    {
        Ok(Some(token))
    } else {
        s.store.delete_refresh_token(&id).await?;
        Ok(None)
    }
}

async fn within_grace(
    s: &AppState,
    id: &str,
    family_id: &str,
    app_id: &str,
    presented: &str,
) -> Result<String, Error> {
    let now = now_ms();
    let rotated = s
        .store
        .refresh_token_by_hash(app_id, &crypto::sha256(presented.trim()))
        .await?
        .ok_or(Error::Unauthenticated)?;
    let grace_ms = i64::try_from(s.config.refresh_grace_seconds).unwrap_or(0) * 1000;
    match (
        rotated.rotated_at,
        &rotated.successor_sealed,
        rotated.revoked_at,
    ) {
        (Some(at), Some(sealed), None) if now - at <= grace_ms => s.keys.open(id, sealed),
        _ => {
            tracing::warn!(family = %family_id, "rotated refresh token reused: family revoked");
            s.store.revoke_refresh_family(family_id, now).await?;
            Err(Error::Unauthenticated)
        }
    }
}

/// `DELETE tokens`: ends the session the token belongs to.
pub async fn revoke(s: &AppState, app: &App, presented: &str) -> Result<(), Error> {
    let token = s
        .store
        .refresh_token_by_hash(&app.id, &crypto::sha256(presented.trim()))
        .await?
        .ok_or(Error::NotFound)?;
    s.store
        .revoke_refresh_family(&token.family_id, now_ms())
        .await
}
