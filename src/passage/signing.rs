//! The apps' RS256 keys at work: signing auth tokens and checking those that come back.

use std::{sync::Arc, time::Duration};

use serde_json::{json, Value};

use super::{apps, App, Passage};
use crate::{
    crypto::rs256::{self, SigningKey, VerifyingKey},
    domain::now_ms,
    error::Error,
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
    async fn current(&self, p: &Passage, app_id: &str) -> Result<Arc<SigningKey>, Error> {
        if let Some((key, _)) = self.keys.get(app_id) {
            return Ok(key);
        }
        let published = p.store.published_signing_keys(app_id, now_ms()).await?;
        let key = Arc::new(apps::current_signing_key(&p.keys, &published)?);
        self.keys.insert(app_id, key.clone());
        Ok(key)
    }

    /// The published key named `kid`. An unknown kid re-reads the keys (a rotation on
    /// another node), at most once a second per app.
    async fn verifying(
        &self,
        p: &Passage,
        app_id: &str,
        kid: &str,
    ) -> Result<Option<Arc<Vec<VerifyingKey>>>, Error> {
        let has_kid = |keys: &[VerifyingKey]| keys.iter().any(|k| k.kid() == kid);
        if let Some((keys, age)) = self.published.get(app_id) {
            if has_kid(&keys) || age < Duration::from_secs(1) {
                return Ok(has_kid(&keys).then_some(keys));
            }
        }
        let keys = p
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

/// The JWT the SDKs accept: RS256 with `kid` and `typ: JWT`; `sub` the user id, `aud` the app
/// id in an array, `iss` the app's issuer, `exp - iat` the app's session length.
pub async fn auth_token(p: &Passage, app: &App, user_id: &str) -> Result<String, Error> {
    let key = p.signing.current(p, &app.id).await?;
    let iat = now_ms() / 1000;
    let claims = json!({
        "sub": user_id,
        "aud": [app.id],
        "iss": p.issuer(&app.id),
        "iat": iat,
        "nbf": iat,
        "exp": iat + app.settings.session_timeout_length,
    });
    key.sign_jwt(&claims)
}

/// The user id of a valid auth token of `app`: signed by one of its published keys, `aud`
/// naming the app, not expired. Anything else is `Unauthenticated`.
pub async fn verify(p: &Passage, app: &App, token: &str) -> Result<String, Error> {
    let kid = rs256::jwt_kid(token).ok_or(Error::Unauthenticated)?;
    let keys = p
        .signing
        .verifying(p, &app.id, &kid)
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
        Some(sub) if audience_ok && live && claims["iss"] == p.issuer(&app.id) => {
            Ok(sub.to_string())
        }
        _ => Err(Error::Unauthenticated),
    }
}
