//! JSON shapes of the Manage API. Users never carry `null` or absent fields: empty strings,
//! `0001-01-01T00:00:00Z` for "never", empty arrays and objects.

use serde_json::{json, Map, Value};

use crate::{domain::iso_ms, storage::UserRow};

/// The hosted service's "never" for `last_login_at`.
const NEVER: &str = "0001-01-01T00:00:00Z";

pub fn user(u: &UserRow) -> Value {
    let metadata = u
        .user_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<Value>(m).ok())
        .unwrap_or(Value::Object(Map::new()));
    json!({
        "id": u.id,
        "email": u.email.as_deref().unwrap_or(""),
        "email_verified": u.email_verified != 0,
        "phone": u.phone.as_deref().unwrap_or(""),
        "phone_verified": u.phone_verified != 0,
        "status": u.status,
        "external_id": u.external_id,
        "user_metadata": metadata,
        "created_at": iso_ms(u.created_at),
        "updated_at": iso_ms(u.updated_at),
        "last_login_at": u.last_login_at.map(iso_ms).unwrap_or_else(|| NEVER.to_string()),
        "login_count": u.login_count,
        "recent_events": [],
        "social_connections": {},
        "webauthn": false,
        "webauthn_devices": [],
        "webauthn_types": [],
    })
}
