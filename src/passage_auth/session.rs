//! Sessions: RS256 auth tokens and rotating refresh tokens.

use std::{sync::Arc, time::Duration};

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
    storage::{RefreshTokenRow, Statement, Store, WithUserStatus},
    ttl_cache::TtlCache,
};

/// Signing keys are re-read this often, so a rotation reaches every node within it.
const KEY_TTL: Duration = Duration::from_secs(60);

/// Per-node cache of each app's current signing key (parsing an RSA key is not free) and of
/// its published keys, which check the auth tokens that come back.
#[derive(Debug)]
pub struct SigningKeys {
    keys: TtlCache<Arc<SigningKey>>,
    published: TtlCache<Arc<Vec<VerifyingKey>>>,
}

impl Default for SigningKeys {
    fn default() -> Self {
        SigningKeys {
            keys: TtlCache::new(KEY_TTL),
            published: TtlCache::new(KEY_TTL),
        }
    }
}

impl SigningKeys {
    async fn current(&self, s: &AppState, app_id: &str) -> Result<Arc<SigningKey>, Error> {
        if let Some((key, _)) = self.keys.get(app_id) {
            return Ok(key);
        }
        let published = s.store.published_signing_keys(app_id, now_ms()).await?;
        let key = Arc::new(apps::current_signing_key(&s.keys, &published)?);
        self.keys.insert(app_id, key.clone());
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
        if let Some((keys, age)) = self.published.get(app_id) {
            if has_kid(&keys) || age < Duration::from_secs(1) {
                return Ok(has_kid(&keys).then_some(keys));
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
        self.published.insert(app_id, keys.clone());
        Ok(has_kid(&keys).then_some(keys))
    }
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

/// A new session for the user: an auth token and, unless the app turned them off, a refresh
/// token of a new family, with the write that stores it (for the caller to commit together
/// with what the login changes).
pub async fn new_session(
    s: &AppState,
    app: &App,
    user_id: &str,
) -> Result<(AuthResult, Vec<Statement>), Error> {
    let mut result = AuthResult {
        auth_token: auth_token(s, app, user_id).await?,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token: String::new(),
        refresh_token_expiration: 0,
    };
    let mut writes = Vec::new();
    if app.settings.refresh_enabled {
        let now = now_ms();
        let expires_at = now + app.settings.refresh_absolute_lifetime * 1000;
        let family = uuid::Uuid::new_v4().to_string();
        let (row, token) = refresh_token_row(app, user_id, &family, expires_at, now);
        writes.push(Store::insert_refresh_token(&row, &crypto::sha256(&token)));
        result.refresh_token = token;
        result.refresh_token_expiration = expires_at / 1000;
    }
    Ok((result, writes))
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

/// A new refresh token of `family_id` and its row.
fn refresh_token_row(
    app: &App,
    user_id: &str,
    family_id: &str,
    expires_at: i64,
    now: i64,
) -> (RefreshTokenRow, String) {
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
    (row, token)
}

/// `POST tokens`: a fresh auth token and the successor of `presented`. The first refresh
/// rotates; a repeat within the grace window (parallel tabs) gets the same successor; a repeat
/// after it is treated as theft and revokes the whole family.
pub async fn refresh(s: &AppState, app: &App, presented: &str) -> Result<AuthResult, Error> {
    let now = now_ms();
    let digest = crypto::sha256(presented.trim());
    let WithUserStatus {
        row: current,
        user_status,
    } = s
        .store
        .refresh_token_by_hash(&app.id, &digest)
        .await?
        .ok_or(Error::Unauthenticated)?;
    // A token unused for the inactivity lifetime ends the session (its successors are fresh).
    let idle = current.rotated_at.is_none()
        && now - current.created_at > app.settings.refresh_inactivity_lifetime * 1000;
    if current.revoked_at.is_some() || current.expires_at <= now || idle || user_status != "active"
    {
        return Err(Error::Unauthenticated);
    }
    let won = match current.rotated_at {
        None => rotate(s, app, &current, now).await?,
        Some(_) => None,
    };
    let successor = match won {
        Some(token) => token,
        // Rotated by an earlier request, or by one racing with this one (read it again).
        None if current.rotated_at.is_some() => within_grace(s, &current, now).await?,
        None => {
            let rotated = s
                .store
                .refresh_token_by_hash(&app.id, &digest)
                .await?
                .ok_or(Error::Unauthenticated)?;
            within_grace(s, &rotated.row, now).await?
        }
    };
    Ok(AuthResult {
        auth_token: auth_token(s, app, &current.user_id).await?,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token: successor,
        refresh_token_expiration: current.expires_at / 1000,
    })
}

/// Claims the rotation and stores the successor in one unit; `None` when another request
/// rotated the token first.
async fn rotate(
    s: &AppState,
    app: &App,
    current: &RefreshTokenRow,
    now: i64,
) -> Result<Option<String>, Error> {
    // The family keeps its absolute lifetime.
    let (row, token) = refresh_token_row(
        app,
        &current.user_id,
        &current.family_id,
        current.expires_at,
        now,
    );
    let sealed = s.keys.seal(&current.id, &token)?;
    let won = s
        .store
        .write_chain(vec![
            Store::rotate_refresh_token(&current.id, &sealed, now),
            Store::insert_refresh_token(&row, &crypto::sha256(&token)),
        ])
        .await?;
    Ok(won.then_some(token))
}

/// The successor of a token rotated less than the grace window ago; a later reuse revokes
/// the family.
async fn within_grace(s: &AppState, rotated: &RefreshTokenRow, now: i64) -> Result<String, Error> {
    let grace_ms = i64::try_from(s.config.refresh_grace_seconds).unwrap_or(0) * 1000;
    match (
        rotated.rotated_at,
        &rotated.successor_sealed,
        rotated.revoked_at,
    ) {
        (Some(at), Some(sealed), None) if now - at <= grace_ms => s.keys.open(&rotated.id, sealed),
        _ => {
            let family = &rotated.family_id;
            tracing::warn!(family = %family, "rotated refresh token reused: family revoked");
            s.store.revoke_refresh_family(family, now).await?;
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
        .revoke_refresh_family(&token.row.family_id, now_ms())
        .await
}
