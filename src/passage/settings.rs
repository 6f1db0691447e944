//! An app's settings: their defaults, their checks, and changes to them.

use serde::{de::IgnoredAny, Deserialize, Serialize};
use serde_json::Value;

use crate::{domain::LocalPath, error::Error};

/// An app's settings, stored as JSON. New fields take their defaults on old rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppSettings {
    /// The page origin passkey ceremonies are checked against.
    pub auth_origin: String,
    /// More origins passkey ceremonies accept: other web origins of the same site, or
    /// `android:apk-key-hash:…` for Android apps.
    pub additional_auth_origins: Vec<String>,
    /// Refuse a passkey login whose sign counter went backwards or whose backup eligibility
    /// changed, instead of only recording the signal.
    pub passkey_strict_mode: bool,
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
            additional_auth_origins: Vec::new(),
            passkey_strict_mode: false,
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
        for extra in &mut self.additional_auth_origins {
            *extra = additional_origin(extra)?;
        }
        for (field, value) in [
            ("allowed_identifier", &self.allowed_identifier),
            ("required_identifier", &self.required_identifier),
        ] {
            if !matches!(value.as_str(), "email" | "phone" | "both") {
                return Err(Error::invalid(field, "must be email, phone or both"));
            }
        }
        self.redirect_url = LocalPath::parse("redirect_url", &self.redirect_url)?
            .as_str()
            .to_string();
        // Magic links open the login URL with their token appended.
        self.login_url = LocalPath::for_link("login_url", &self.login_url)?
            .as_str()
            .to_string();
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

/// A change of settings: the App object's fields, flat, as the hosted update-app took them
/// (`auth_methods` nested as in the object). Unknown fields are refused; the read-only fields
/// of the App object are ignored, so a client may send back the object it read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppChanges {
    name: Option<String>,
    auth_origin: Option<String>,
    redirect_url: Option<String>,
    login_url: Option<String>,
    #[serde(alias = "allowed_redirect_urls")]
    allowed_callback_urls: Option<Vec<String>>,
    allowed_identifier: Option<String>,
    required_identifier: Option<String>,
    public_signup: Option<bool>,
    require_identifier_verification: Option<bool>,
    require_email_verification: Option<bool>,
    session_timeout_length: Option<i64>,
    refresh_enabled: Option<bool>,
    refresh_absolute_lifetime: Option<i64>,
    refresh_inactivity_lifetime: Option<i64>,
    otp_ttl: Option<i64>,
    magic_link_ttl: Option<i64>,
    default_language: Option<String>,
    auth_fallback_method: Option<String>,
    auth_fallback_method_ttl: Option<i64>,
    profile_management: Option<bool>,
    passage_branding: Option<bool>,
    ephemeral: Option<bool>,
    user_metadata_schema: Option<Vec<UserMetadataField>>,
    auth_methods: Option<AuthMethodChanges>,
    // The App object's fields that are shown but not set through an update.
    #[serde(default, rename = "id")]
    _id: IgnoredAny,
    #[serde(default, rename = "created_at")]
    _created_at: IgnoredAny,
    #[serde(default, rename = "updated_at")]
    _updated_at: IgnoredAny,
    #[serde(default, rename = "rsa_public_key")]
    _rsa_public_key: IgnoredAny,
    #[serde(default, rename = "layouts")]
    _layouts: IgnoredAny,
    #[serde(default, rename = "element_customization")]
    _element_customization: IgnoredAny,
    #[serde(default, rename = "element_customization_dark")]
    _element_customization_dark: IgnoredAny,
    #[serde(default, rename = "social_connections")]
    _social_connections: IgnoredAny,
    #[serde(default, rename = "hosted")]
    _hosted: IgnoredAny,
    #[serde(default, rename = "hosted_subdomain")]
    _hosted_subdomain: IgnoredAny,
    #[serde(default, rename = "hosted_theme")]
    _hosted_theme: IgnoredAny,
    #[serde(default, rename = "auto_theme_enabled")]
    _auto_theme_enabled: IgnoredAny,
    #[serde(default, rename = "role")]
    _role: IgnoredAny,
    #[serde(default, rename = "type")]
    _type: IgnoredAny,
    #[serde(default, rename = "secret")]
    _secret: IgnoredAny,
    #[serde(default, rename = "technologies")]
    _technologies: IgnoredAny,
    #[serde(default, rename = "light_logo_url")]
    _light_logo_url: IgnoredAny,
    #[serde(default, rename = "dark_logo_url")]
    _dark_logo_url: IgnoredAny,
    #[serde(default, rename = "id_token_lifetime")]
    _id_token_lifetime: IgnoredAny,
    additional_auth_origins: Option<Vec<String>>,
    passkey_strict_mode: Option<bool>,
    #[serde(default, rename = "allowed_logout_urls")]
    _allowed_logout_urls: IgnoredAny,
    #[serde(default, rename = "application_login_uri")]
    _application_login_uri: IgnoredAny,
}

#[derive(Debug, Default, Deserialize)]
struct AuthMethodChanges {
    otp: Option<TtlChange>,
    magic_link: Option<TtlChange>,
}

#[derive(Debug, Default, Deserialize)]
struct TtlChange {
    ttl: Option<i64>,
}

impl AppChanges {
    /// Changes from the App object's JSON fields (the CLI's `app update`).
    pub fn from_json(json: Value) -> Result<AppChanges, Error> {
        serde_json::from_value(json).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// Applies the changes over `name` and `s` (checked afterwards, as a whole).
    pub fn apply(self, name: &mut String, s: &mut AppSettings) {
        if let Some(n) = self.name {
            *name = n;
        }
        let set = |target: &mut String, value: Option<String>| {
            if let Some(v) = value {
                *target = v;
            }
        };
        set(&mut s.auth_origin, self.auth_origin);
        set(&mut s.redirect_url, self.redirect_url);
        set(&mut s.login_url, self.login_url);
        set(&mut s.allowed_identifier, self.allowed_identifier);
        set(&mut s.required_identifier, self.required_identifier);
        set(&mut s.default_language, self.default_language);
        set(&mut s.auth_fallback_method, self.auth_fallback_method);
        for (target, value) in [
            (&mut s.public_signup, self.public_signup),
            (
                &mut s.require_identifier_verification,
                self.require_identifier_verification,
            ),
            (
                &mut s.require_email_verification,
                self.require_email_verification,
            ),
            (&mut s.refresh_enabled, self.refresh_enabled),
            (&mut s.profile_management, self.profile_management),
            (&mut s.passage_branding, self.passage_branding),
            (&mut s.ephemeral, self.ephemeral),
            (&mut s.passkey_strict_mode, self.passkey_strict_mode),
        ] {
            if let Some(v) = value {
                *target = v;
            }
        }
        let methods = self.auth_methods.unwrap_or_default();
        let otp_ttl = methods.otp.and_then(|m| m.ttl).or(self.otp_ttl);
        let link_ttl = methods
            .magic_link
            .and_then(|m| m.ttl)
            .or(self.magic_link_ttl);
        for (target, value) in [
            (&mut s.session_timeout_length, self.session_timeout_length),
            (
                &mut s.refresh_absolute_lifetime,
                self.refresh_absolute_lifetime,
            ),
            (
                &mut s.refresh_inactivity_lifetime,
                self.refresh_inactivity_lifetime,
            ),
            (&mut s.otp_ttl, otp_ttl),
            (&mut s.magic_link_ttl, link_ttl),
            (
                &mut s.auth_fallback_method_ttl,
                self.auth_fallback_method_ttl,
            ),
        ] {
            if let Some(v) = value {
                *target = v;
            }
        }
        if let Some(origins) = self.additional_auth_origins {
            s.additional_auth_origins = origins;
        }
        if let Some(urls) = self.allowed_callback_urls {
            s.allowed_redirect_urls = urls;
        }
        if let Some(schema) = self.user_metadata_schema {
            s.user_metadata_schema = schema;
        }
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

/// An extra passkey origin: a web origin, or an Android app's `android:apk-key-hash:<hash>`.
fn additional_origin(input: &str) -> Result<String, Error> {
    let input = input.trim();
    if let Some(hash) = input.strip_prefix("android:apk-key-hash:") {
        let valid = !hash.is_empty()
            && hash
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
        return if valid {
            Ok(input.to_string())
        } else {
            Err(Error::invalid(
                "additional_auth_origins",
                "an Android origin is android:apk-key-hash: and the base64url key hash",
            ))
        };
    }
    origin(input).map_err(|_| {
        Error::invalid(
            "additional_auth_origins",
            format!("`{input}` is not an origin such as https://example.com"),
        )
    })
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
    fn additional_origins() {
        assert_eq!(
            additional_origin("https://m.example.com/").unwrap(),
            "https://m.example.com"
        );
        assert!(additional_origin("android:apk-key-hash:Abc-_9").is_ok());
        for bad in [
            "android:apk-key-hash:",
            "android:apk-key-hash:a b",
            "example.com",
        ] {
            assert!(additional_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn old_settings_rows_take_defaults() {
        let s: AppSettings = serde_json::from_str(r#"{"auth_origin":"https://a.b"}"#).unwrap();
        assert_eq!(s.session_timeout_length, 3600);
        assert!(s.public_signup);
    }

    #[test]
    fn changes_refuse_unknown_fields_and_ignore_read_only_ones() {
        let changes = AppChanges::from_json(serde_json::json!({
            "name": "New", "id": "x", "technologies": [], "auth_methods": {"otp": {"ttl": 60}}
        }))
        .unwrap();
        let (mut name, mut s) = (String::from("Old"), AppSettings::default());
        changes.apply(&mut name, &mut s);
        assert_eq!((name.as_str(), s.otp_ttl), ("New", 60));
        assert!(AppChanges::from_json(serde_json::json!({"nope": 1})).is_err());
    }
}
