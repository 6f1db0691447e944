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
    /// The field name when not given.
    #[serde(default)]
    pub id: String,
    pub field_name: String,
    #[serde(default)]
    pub friendly_name: String,
    /// `string`, `boolean`, `integer`, `date`, `phone` or `email`.
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default)]
    pub profile: bool,
    #[serde(default)]
    pub registration: bool,
}

/// Metadata field types the schema can declare.
const METADATA_TYPES: [&str; 6] = ["string", "boolean", "integer", "date", "phone", "email"];

impl AppSettings {
    /// Checks the settings and normalises the origin and the metadata schema.
    pub fn validate(&mut self) -> Result<(), Error> {
        self.auth_origin = origin(&self.auth_origin)?;
        for (field, value) in [
            ("allowed_identifier", &self.allowed_identifier),
            ("required_identifier", &self.required_identifier),
        ] {
            if !matches!(value.as_str(), "email" | "phone" | "both") {
                return Err(Error::invalid(field, "must be email, phone or both"));
            }
        }
        for (field, value) in [
            ("redirect_url", &self.redirect_url),
            ("login_url", &self.login_url),
        ] {
            if !value.starts_with('/') || value.starts_with("//") {
                return Err(Error::invalid(field, "must be a path starting with `/`"));
            }
        }
        for (field, seconds) in [
            ("session_timeout_length", self.session_timeout_length),
            ("refresh_absolute_lifetime", self.refresh_absolute_lifetime),
            (
                "refresh_inactivity_lifetime",
                self.refresh_inactivity_lifetime,
            ),
            ("auth_methods.otp.ttl", self.otp_ttl),
            ("auth_methods.magic_link.ttl", self.magic_link_ttl),
        ] {
            if !(1..=10 * 365 * 24 * 3600).contains(&seconds) {
                return Err(Error::invalid(
                    field,
                    "must be a positive number of seconds",
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for f in &mut self.user_metadata_schema {
            let name_ok = !f.field_name.is_empty()
                && f.field_name.len() <= 100
                && f.field_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok || !names.insert(f.field_name.clone()) {
                return Err(Error::invalid(
                    "user_metadata_schema",
                    format!(
                        "`{}` is not a unique field name of letters, digits, _ or -",
                        f.field_name
                    ),
                ));
            }
            if !METADATA_TYPES.contains(&f.field_type.as_str()) {
                return Err(Error::invalid(
                    "user_metadata_schema",
                    format!(
                        "type of `{}` must be one of {}",
                        f.field_name,
                        METADATA_TYPES.join(", ")
                    ),
                ));
            }
            if f.id.is_empty() {
                f.id = f.field_name.clone();
            }
            if f.friendly_name.is_empty() {
                f.friendly_name = f.field_name.clone();
            }
        }
        Ok(())
    }
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
    settings.validate()?;
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

/// Fields of the App object that are shown but not set through an update; a client that
/// sends back the object it read is not refused for them.
const READ_ONLY: [&str; 22] = [
    "id",
    "created_at",
    "rsa_public_key",
    "layouts",
    "element_customization",
    "element_customization_dark",
    "social_connections",
    "hosted",
    "hosted_subdomain",
    "role",
    "type",
    "secret",
    "technologies",
    "light_logo_url",
    "dark_logo_url",
    "id_token_lifetime",
    "additional_auth_origins",
    "allowed_logout_urls",
    "application_login_uri",
    "updated_at",
    "hosted_theme",
    "auto_theme_enabled",
];

/// `PATCH /v1/apps/{app_id}` and `keyhaven app update`: the App object's fields, flat, as the
/// hosted update-app took them (`auth_methods` nested as in the object). Unknown fields are
/// refused; read-only ones are ignored.
pub async fn update(store: &Store, app_id: &str, patch: serde_json::Value) -> Result<App, Error> {
    use serde_json::Value;
    let app = App::load(store, app_id).await?;
    let Value::Object(patch) = patch else {
        return Err(Error::invalid("body", "expected a JSON object"));
    };
    let mut name = app.name;
    let mut fields = match serde_json::to_value(&app.settings) {
        Ok(Value::Object(fields)) => fields,
        _ => {
            return Err(Error::Internal(anyhow::anyhow!(
                "settings are not an object"
            )))
        }
    };
    for (key, value) in patch {
        match key.as_str() {
            "name" => {
                name = value
                    .as_str()
                    .map(|n| n.trim().to_string())
                    .filter(|n| (1..=200).contains(&n.len()))
                    .ok_or_else(|| Error::invalid("name", "must be 1 to 200 characters"))?;
            }
            "auth_methods" => {
                for (method, setting) in [("otp", "otp_ttl"), ("magic_link", "magic_link_ttl")] {
                    if let Some(ttl) = value.get(method).and_then(|m| m.get("ttl")) {
                        fields.insert(setting.to_string(), ttl.clone());
                    }
                }
            }
            "allowed_callback_urls" => {
                fields.insert("allowed_redirect_urls".into(), value);
            }
            k if fields.contains_key(k) => {
                fields.insert(key, value);
            }
            k if READ_ONLY.contains(&k) => {}
            _ => return Err(Error::invalid("body", format!("unknown app field `{key}`"))),
        }
    }
    let mut settings: AppSettings = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::invalid("body", e.to_string()))?;
    settings.validate()?;
    let json = serde_json::to_string(&settings).map_err(|e| Error::Internal(e.into()))?;
    store.update_app(app_id, &name, &json, now_ms()).await?;
    App::load(store, app_id).await
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
