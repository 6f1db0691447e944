//! Passage apps: settings, creation with an API key and a signing key, key rotation, and the
//! published keys.

use serde::{Deserialize, Serialize};

use crate::{
    crypto::{self, rs256::SigningKey, ServerKeys},
    domain::now_ms,
    error::Error,
    storage::{AppRow, SigningKeyRow, Store},
};

/// An app's settings, stored as JSON. New fields take their defaults on old rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppSettings {
    /// The page origin passkey ceremonies are checked against.
    pub auth_origin: String,
    pub redirect_url: String,
    pub login_url: String,
    /// Exact URLs a social login may return to.
    pub allowed_redirect_urls: Vec<String>,
    /// `email`, `phone` or `both`.
    pub allowed_identifier: String,
    pub required_identifier: String,
    pub public_signup: bool,
    pub require_identifier_verification: bool,
    pub require_email_verification: bool,
    /// Lifetime of an auth token, in seconds.
    pub session_timeout_length: i64,
    pub refresh_enabled: bool,
    pub refresh_absolute_lifetime: i64,
    pub refresh_inactivity_lifetime: i64,
    pub otp_ttl: i64,
    pub magic_link_ttl: i64,
    pub default_language: String,
    pub auth_fallback_method: String,
    pub auth_fallback_method_ttl: i64,
    pub profile_management: bool,
    pub passage_branding: bool,
    pub ephemeral: bool,
    pub user_metadata_schema: Vec<UserMetadataField>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            auth_origin: String::new(),
            redirect_url: "/".into(),
            login_url: "/".into(),
            allowed_redirect_urls: Vec::new(),
            allowed_identifier: "email".into(),
            required_identifier: "email".into(),
            public_signup: true,
            require_identifier_verification: false,
            require_email_verification: false,
            session_timeout_length: 3600,
            refresh_enabled: true,
            refresh_absolute_lifetime: 30 * 24 * 3600,
            refresh_inactivity_lifetime: 5 * 24 * 3600,
            otp_ttl: 300,
            magic_link_ttl: 300,
            default_language: "en".into(),
            auth_fallback_method: "magic_link".into(),
            auth_fallback_method_ttl: 300,
            profile_management: true,
            passage_branding: false,
            ephemeral: false,
            user_metadata_schema: Vec::new(),
        }
    }
}

/// One field of `user_metadata_schema`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserMetadataField {
    pub id: String,
    pub field_name: String,
    pub friendly_name: String,
    /// `string`, `boolean`, `integer`, `date`, `phone` or `email`.
    #[serde(rename = "type")]
    pub field_type: String,
    pub profile: bool,
    pub registration: bool,
}

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
pub async fn create(store: &Store, keys: &ServerKeys, new: NewApp) -> Result<(App, String), Error> {
    let id = match new.id {
        Some(id) => app_id(&id)?,
        None => crypto::random_id(),
    };
    let name = new.name.trim().to_string();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::invalid("name", "must be 1 to 200 characters"));
    }
    let mut settings = new.settings;
    settings.auth_origin = origin(&settings.auth_origin)?;
    let now = now_ms();
    let row = AppRow {
        id: id.clone(),
        name,
        settings: serde_json::to_string(&settings).map_err(|e| Error::Internal(e.into()))?,
        created_at: now,
        updated_at: now,
    };
    let api_key = format!("kh_{}", crypto::random_token());
    let signing = new_signing_key(keys, &id, now)?;
    let mut tx = store.begin().await?;
    Store::insert_app(&mut tx, &row, &crypto::sha256(&api_key)).await?;
    Store::insert_signing_key(&mut tx, &signing).await?;
    tx.commit().await?;
    Ok((row.try_into()?, api_key))
}

/// Publishes a new signing key; the old ones stay in the JWKS until the tokens they signed
/// have expired (plus a minute for clocks and caches), and sign nothing more.
pub async fn rotate_key(store: &Store, keys: &ServerKeys, app_id: &str) -> Result<String, Error> {
    let app = App::load(store, app_id).await?;
    let now = now_ms();
    let publish_until = now + (app.settings.session_timeout_length + 60) * 1000;
    let signing = new_signing_key(keys, app_id, now)?;
    let mut tx = store.begin().await?;
    Store::retire_signing_keys(&mut tx, app_id, now, publish_until).await?;
    Store::insert_signing_key(&mut tx, &signing).await?;
    tx.commit().await?;
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

/// `https://example.com[:port]`: a scheme and host, nothing else.
fn origin(input: &str) -> Result<String, Error> {
    let bad = || {
        Error::invalid(
            "auth_origin",
            "expected an origin such as https://example.com",
        )
    };
    let url = url::Url::parse(input.trim()).map_err(|_| bad())?;
    let origin = url.origin().ascii_serialization();
    let trimmed = input.trim().trim_end_matches('/');
    if !matches!(url.scheme(), "http" | "https") || origin != trimmed {
        return Err(bad());
    }
    Ok(origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://example.com/").unwrap(),
            "https://example.com"
        );
        assert_eq!(
            origin("http://localhost:3000").unwrap(),
            "http://localhost:3000"
        );
        for bad in [
            "example.com",
            "https://example.com/login",
            "ftp://x.y",
            "https://a.b?x=1",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn app_ids() {
        assert!(app_id("Old_App-1").is_ok());
        assert!(app_id("has space").is_err());
        assert!(app_id("").is_err());
    }

    #[test]
    fn old_settings_rows_take_defaults() {
        let s: AppSettings = serde_json::from_str(r#"{"auth_origin":"https://a.b"}"#).unwrap();
        assert_eq!(s.session_timeout_length, 3600);
        assert!(s.public_signup);
    }
}
