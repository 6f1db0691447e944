//! Passage apps: settings, creation with an API key and a signing key, key rotation, and the
//! published keys.

use std::sync::Arc;

use serde_json::Value;

pub use super::settings::{AppChanges, AppSettings, UserMetadataField};
use super::{
    app_keys,
    wire::{AppObject, Jwks, OpenIdConfiguration},
    Passage,
};
use crate::{
    crypto::{self, rs256::SigningKey, ServerKeys},
    domain::now_ms,
    error::Error,
    storage::{AppRow, SigningKeyRow, Store, Unit},
};

/// An app with its parsed settings.
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub name: String,
    pub settings: AppSettings,
    pub created_at: i64,
}

impl TryFrom<AppRow> for App {
    type Error = Error;
    fn try_from(row: AppRow) -> Result<Self, Error> {
        let settings = serde_json::from_str(&row.settings)
            .map_err(|e| Error::Internal(anyhow::anyhow!("settings of app {}: {e}", row.id)))?;
        Ok(App {
            id: row.id,
            name: row.name,
            settings,
            created_at: row.created_at,
        })
    }
}

impl App {
    pub async fn load(store: &Store, id: &str) -> Result<App, Error> {
        store.get_app(id).await?.try_into()
    }
}

/// What `keyhaven app create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    /// Keep an id from the hosted service; a fresh one otherwise.
    pub id: Option<String>,
    pub name: String,
    pub settings: AppSettings,
}

/// Creates an app with its API key (returned once) and its first signing key.
pub async fn create(p: &Passage, new: NewApp) -> Result<(App, String), Error> {
    let (store, keys) = (&p.store, &p.keys);
    let id = match new.id {
        Some(id) => app_id(&id)?,
        None => crypto::random_id(),
    };
    let name = app_name(&new.name)?;
    let mut settings = new.settings;
    settings.validate()?;
    let now = now_ms();
    let row = AppRow {
        id: id.clone(),
        name,
        settings: serde_json::to_string(&settings).map_err(|e| Error::Internal(e.into()))?,
        created_at: now,
        updated_at: now,
    };
    let (_, api_key, insert_key) = app_keys::new_key(&id, "default", now);
    let signing = new_signing_key(keys, &id, now)?;
    let unit = Unit::all(vec![
        Store::insert_app(&row, &crypto::sha256(&api_key)),
        insert_key,
        Store::insert_signing_key(&signing),
    ]);
    store.commit(unit).await?;
    Ok((row.try_into()?, api_key))
}

/// `PATCH /v1/apps/{app_id}` and `keyhaven app update`: applies `changes`, checked as a whole.
pub async fn update(p: &Passage, app_id: &str, changes: AppChanges) -> Result<App, Error> {
    let mut app = App::load(&p.store, app_id).await?;
    changes.apply(&mut app.name, &mut app.settings);
    app.name = app_name(&app.name)?;
    app.settings.validate()?;
    let json = serde_json::to_string(&app.settings).map_err(|e| Error::Internal(e.into()))?;
    p.store
        .update_app(app_id, &app.name, &json, now_ms())
        .await?;
    // This node sees the change at once; other nodes within the cache's lifetime.
    p.apps.insert(app_id, Arc::new(app.clone()));
    Ok(app)
}

/// 1 to 200 characters, trimmed.
fn app_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::invalid("name", "must be 1 to 200 characters"));
    }
    Ok(name.to_string())
}

/// The app `app_id` when `api_key` is one of its unrevoked API keys (found by digest).
pub async fn by_key(p: &Passage, app_id: &str, api_key: &str) -> Result<Option<Arc<App>>, Error> {
    if p.store.is_app_key(app_id, &crypto::sha256(api_key)).await? {
        Ok(Some(p.app(app_id).await?))
    } else {
        Ok(None)
    }
}

/// The App object, with the current signing key's public half.
pub async fn describe(p: &Passage, app: &App) -> Result<AppObject, Error> {
    let keys = p.store.published_signing_keys(&app.id, now_ms()).await?;
    let current = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("app has no signing key")))?;
    let social = super::social::connections::describe(p, app).await?;
    Ok(AppObject::new(app, &current.public_pem).with_social_connections(social))
}

/// The current key and retired keys whose tokens may still be valid.
pub async fn jwks(p: &Passage, app: &App) -> Result<Jwks, Error> {
    let keys = p.store.published_signing_keys(&app.id, now_ms()).await?;
    let keys = keys
        .iter()
        .map(|k| serde_json::from_str(&k.public_jwk).map_err(|e| Error::Internal(e.into())))
        .collect::<Result<Vec<Value>, Error>>()?;
    Ok(Jwks { keys })
}

pub fn openid_configuration(p: &Passage, app: &App) -> OpenIdConfiguration {
    let issuer = p.issuer(&app.id);
    OpenIdConfiguration {
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        authorization_endpoint: format!("{}/login/{}", p.public_url, app.id),
        issuer,
        id_token_signing_alg_values_supported: ["RS256"],
        subject_types_supported: ["public"],
        response_types_supported: ["code"],
    }
}

/// Publishes a new signing key; the old ones stay in the JWKS until the tokens they signed
/// have expired (plus a minute for clocks and caches), and sign nothing more.
pub async fn rotate_key(p: &Passage, app_id: &str) -> Result<String, Error> {
    let (store, keys) = (&p.store, &p.keys);
    let app = App::load(store, app_id).await?;
    let now = now_ms();
    let publish_until = now + (app.settings.session_timeout_length + 60) * 1000;
    let signing = new_signing_key(keys, app_id, now)?;
    let unit = Unit::all(vec![
        Store::retire_signing_keys(app_id, now, publish_until),
        Store::insert_signing_key(&signing),
    ]);
    store.commit(unit).await?;
    Ok(signing.kid)
}

fn new_signing_key(keys: &ServerKeys, app_id: &str, now: i64) -> Result<SigningKeyRow, Error> {
    let (key, pkcs8) = SigningKey::generate()?;
    Ok(SigningKeyRow {
        kid: key.kid().to_string(),
        app_id: app_id.to_string(),
        private_key: keys.seal(key.kid(), &pkcs8)?,
        public_jwk: key.jwk().to_string(),
        public_pem: key.public_pem()?,
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// The key that signs new tokens for the app.
pub fn current_signing_key(
    keys: &ServerKeys,
    published: &[SigningKeyRow],
) -> Result<SigningKey, Error> {
    let row = published
        .iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("app has no signing key")))?;
    let pkcs8 = keys.open_bytes(&row.kid, &row.private_key)?;
    SigningKey::from_pkcs8(&row.kid, &pkcs8)
}

/// An id kept from the hosted service: 1 to 64 letters, digits, `-` or `_`.
fn app_id(id: &str) -> Result<String, Error> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id.to_string())
    } else {
        Err(Error::invalid("id", "1 to 64 letters, digits, - or _"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids() {
        assert!(app_id("Old_App-1").is_ok());
        assert!(app_id("has space").is_err());
        assert!(app_id("").is_err());
    }
}
