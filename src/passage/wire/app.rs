//! The App object and the app's published keys.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    domain::iso_ms,
    passage::{
        app_keys::AppKey,
        apps::{App, UserMetadataField},
    },
};

/// `POST api-keys`: the new key, and its secret (shown only here).
#[derive(Debug, Serialize)]
pub struct NewApiKeyResponse {
    pub api_key: AppKey,
    pub secret: String,
}

/// `GET api-keys`.
#[derive(Debug, Serialize)]
pub struct ApiKeysResponse {
    pub api_keys: Vec<AppKey>,
}

/// `{"app": ...}`.
#[derive(Debug, Serialize)]
pub struct AppResponse {
    pub app: AppObject,
}

/// The App object (`GET /v1/apps/{app_id}`). `rsa_public_key` is the current signing key's
/// PEM, base64-encoded as the hosted service sent it.
#[derive(Debug, Serialize)]
pub struct AppObject {
    id: String,
    name: String,
    auth_origin: String,
    redirect_url: String,
    login_url: String,
    allowed_identifier: String,
    required_identifier: String,
    public_signup: bool,
    require_identifier_verification: bool,
    require_email_verification: bool,
    session_timeout_length: i64,
    refresh_enabled: bool,
    refresh_absolute_lifetime: i64,
    refresh_inactivity_lifetime: i64,
    default_language: String,
    auth_fallback_method: String,
    auth_fallback_method_ttl: i64,
    auth_methods: AuthMethods,
    ephemeral: bool,
    passage_branding: bool,
    profile_management: bool,
    rsa_public_key: String,
    user_metadata_schema: Vec<UserMetadataField>,
    layouts: Layouts,
    element_customization: Map<String, Value>,
    element_customization_dark: Map<String, Value>,
    social_connections: Map<String, Value>,
    hosted: bool,
    hosted_subdomain: String,
    hosted_theme: &'static str,
    auto_theme_enabled: bool,
    #[serde(rename = "type")]
    app_type: &'static str,
    role: String,
    technologies: Vec<String>,
    additional_auth_origins: Vec<String>,
    passkey_strict_mode: bool,
    allowed_callback_urls: Vec<String>,
    allowed_logout_urls: Vec<String>,
    application_login_uri: String,
    created_at: String,
}

#[derive(Debug, Serialize)]
struct AuthMethods {
    passkeys: Map<String, Value>,
    otp: Ttl,
    magic_link: Ttl,
}

#[derive(Debug, Serialize)]
struct Ttl {
    ttl: i64,
    ttl_display_unit: &'static str,
}

#[derive(Debug, Default, Serialize)]
struct Layouts {
    profile: Vec<Value>,
    registration: Vec<Value>,
}

impl AppObject {
    pub fn new(app: &App, rsa_public_pem: &str) -> AppObject {
        let s = &app.settings;
        let ttl = |ttl| Ttl {
            ttl,
            ttl_display_unit: "s",
        };
        AppObject {
            id: app.id.clone(),
            name: app.name.clone(),
            auth_origin: s.auth_origin.clone(),
            redirect_url: s.redirect_url.clone(),
            login_url: s.login_url.clone(),
            allowed_identifier: s.allowed_identifier.clone(),
            required_identifier: s.required_identifier.clone(),
            public_signup: s.public_signup,
            require_identifier_verification: s.require_identifier_verification,
            require_email_verification: s.require_email_verification,
            session_timeout_length: s.session_timeout_length,
            refresh_enabled: s.refresh_enabled,
            refresh_absolute_lifetime: s.refresh_absolute_lifetime,
            refresh_inactivity_lifetime: s.refresh_inactivity_lifetime,
            default_language: s.default_language.clone(),
            auth_fallback_method: s.auth_fallback_method.clone(),
            auth_fallback_method_ttl: s.auth_fallback_method_ttl,
            auth_methods: AuthMethods {
                passkeys: Map::new(),
                otp: ttl(s.otp_ttl),
                magic_link: ttl(s.magic_link_ttl),
            },
            ephemeral: s.ephemeral,
            passage_branding: s.passage_branding,
            profile_management: s.profile_management,
            rsa_public_key: STANDARD.encode(rsa_public_pem),
            user_metadata_schema: s.user_metadata_schema.clone(),
            layouts: Layouts::default(),
            element_customization: Map::new(),
            element_customization_dark: Map::new(),
            social_connections: Map::new(),
            hosted: false,
            hosted_subdomain: String::new(),
            hosted_theme: "auto",
            auto_theme_enabled: false,
            app_type: "flex",
            role: String::new(),
            technologies: Vec::new(),
            additional_auth_origins: s.additional_auth_origins.clone(),
            passkey_strict_mode: s.passkey_strict_mode,
            allowed_callback_urls: s.allowed_redirect_urls.clone(),
            allowed_logout_urls: Vec::new(),
            application_login_uri: String::new(),
            created_at: iso_ms(app.created_at),
        }
    }

    /// The app's social login providers: `{type: {client_id}}`.
    pub fn with_social_connections(mut self, connections: Map<String, Value>) -> AppObject {
        self.social_connections = connections;
        self
    }
}

/// `GET .well-known/jwks.json`.
#[derive(Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<Value>,
}

/// `GET .well-known/openid-configuration`.
#[derive(Debug, Serialize)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub jwks_uri: String,
    pub authorization_endpoint: String,
    pub id_token_signing_alg_values_supported: [&'static str; 1],
    pub subject_types_supported: [&'static str; 1],
    pub response_types_supported: [&'static str; 1],
}
