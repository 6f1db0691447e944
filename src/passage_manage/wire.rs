//! JSON shapes of the Manage API. Users never carry `null` or absent fields: empty strings,
//! `0001-01-01T00:00:00Z` for "never", empty arrays and objects.

use serde_json::{json, Value};

use crate::{domain::iso_ms, passage_auth, storage::UserRow};

/// The hosted service's "never" for `last_login_at`.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// The Manage API's user: the Auth API's user and what administrators see besides.
pub fn user(u: &UserRow) -> Value {
    let mut user = passage_auth::wire::user(u);
    if let Value::Object(fields) = &mut user {
        let extra = json!({
            "external_id": u.external_id,
            "created_at": iso_ms(u.created_at),
            "updated_at": iso_ms(u.updated_at),
            "last_login_at": u.last_login_at.map(iso_ms).unwrap_or_else(|| NEVER.to_string()),
            "login_count": u.login_count,
            "recent_events": [],
            "social_connections": {},
            "webauthn_devices": [],
        });
        if let Value::Object(extra) = extra {
            fields.extend(extra);
        }
    }
    user
}
