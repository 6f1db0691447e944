//! JSON shapes of the Passage Auth API. No field is ever absent or `null` where the SDKs
//! expect a value.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};

use super::apps::App;
use crate::storage::UserRow;

/// The App object (`GET /v1/apps/{app_id}`). `rsa_public_key` is the current signing key's
/// PEM, base64-encoded as the hosted service sent it.
pub fn app(app: &App, rsa_public_pem: &str) -> Value {
    let s = &app.settings;
    json!({
        "id": app.id,
        "name": app.name,
        "auth_origin": s.auth_origin,
        "redirect_url": s.redirect_url,
        "login_url": s.login_url,
        "allowed_identifier": s.allowed_identifier,
        "required_identifier": s.required_identifier,
        "public_signup": s.public_signup,
        "require_identifier_verification": s.require_identifier_verification,
        "require_email_verification": s.require_email_verification,
        "session_timeout_length": s.session_timeout_length,
        "refresh_enabled": s.refresh_enabled,
        "refresh_absolute_lifetime": s.refresh_absolute_lifetime,
        "refresh_inactivity_lifetime": s.refresh_inactivity_lifetime,
        "default_language": s.default_language,
        "auth_fallback_method": s.auth_fallback_method,
        "auth_fallback_method_ttl": s.auth_fallback_method_ttl,
        "auth_methods": {
            "passkeys": {},
            "otp": {"ttl": s.otp_ttl, "ttl_display_unit": "s"},
            "magic_link": {"ttl": s.magic_link_ttl, "ttl_display_unit": "s"},
        },
        "ephemeral": s.ephemeral,
        "passage_branding": s.passage_branding,
        "profile_management": s.profile_management,
        "rsa_public_key": STANDARD.encode(rsa_public_pem),
        "user_metadata_schema": s.user_metadata_schema,
        "layouts": {"profile": [], "registration": []},
        "element_customization": {},
        "element_customization_dark": {},
        "social_connections": {},
        "hosted": false,
        "hosted_subdomain": "",
        "hosted_theme": "auto",
        "auto_theme_enabled": false,
        "type": "flex",
        "role": "",
        "technologies": [],
        "additional_auth_origins": [],
        "allowed_callback_urls": s.allowed_redirect_urls,
        "allowed_logout_urls": [],
        "application_login_uri": "",
        "created_at": crate::domain::iso_ms(app.created_at),
    })
}

/// The Auth API's User (`GET users?identifier=`, `POST users`).
pub fn user(u: &UserRow) -> Value {
    let metadata = u
        .user_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or_else(|| json!({}));
    json!({
        "id": u.id,
        "email": u.email.as_deref().unwrap_or(""),
        "email_verified": u.email_verified != 0,
        "phone": u.phone.as_deref().unwrap_or(""),
        "phone_verified": u.phone_verified != 0,
        "status": u.status,
        "user_metadata": metadata,
        "webauthn": false,
        "webauthn_types": [],
    })
}
