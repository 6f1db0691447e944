//! An app's API keys for the Manage API: several, each with a name, created and revoked
//! without downtime (create the new key, deploy it, revoke the old one). Keys are stored as
//! digests and checked on every request, so a revocation holds at once on every node.

use serde::Serialize;

use super::{App, Passage};
use crate::{
    crypto,
    domain::{iso_ms, now_ms},
    error::Error,
    storage::{AppKeyRow, Statement, Store, Unit},
};

/// An API key as listed (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct AppKey {
    pub id: String,
    pub name: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&AppKeyRow> for AppKey {
    fn from(row: &AppKeyRow) -> Self {
        AppKey {
            id: row.id.clone(),
            name: row.name.clone(),
            created_at: iso_ms(row.created_at),
            revoked_at: row.revoked_at.map(iso_ms),
        }
    }
}

/// A new key of `app_id` named `name`: its row, its secret (shown once) and the statement
/// that stores its digest.
pub(super) fn new_key(app_id: &str, name: &str, now: i64) -> (AppKeyRow, String, Statement) {
    let secret = crypto::new_api_key();
    let row = AppKeyRow {
        id: format!("key_{}", crypto::random_id()),
        app_id: app_id.to_string(),
        name: name.to_string(),
        created_at: now,
        revoked_at: None,
    };
    let insert = Store::insert_app_key(&row, &crypto::sha256(&secret));
    (row, secret, insert)
}

/// Creates a key named `name`; returns it with its secret, which is not stored.
pub async fn create(p: &Passage, app: &App, name: &str) -> Result<(AppKey, String), Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("name", "must be 1 to 100 characters"));
    }
    let (row, secret, insert) = new_key(&app.id, name, now_ms());
    p.store.commit(Unit::all(vec![insert])).await?;
    Ok((AppKey::from(&row), secret))
}

pub async fn list(p: &Passage, app: &App) -> Result<Vec<AppKey>, Error> {
    let rows = p.store.list_app_keys(&app.id).await?;
    Ok(rows.iter().map(AppKey::from).collect())
}

/// Revokes a key; the app's last key cannot be revoked (it would lock the app out).
pub async fn revoke(p: &Passage, app: &App, key_id: &str) -> Result<(), Error> {
    if p.store.revoke_app_key(&app.id, key_id, now_ms()).await? {
        Ok(())
    } else {
        Err(Error::invalid(
            "key",
            "the app's last key cannot be revoked; create another first",
        ))
    }
}
