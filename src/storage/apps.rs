//! Passage apps and their RS256 signing keys.

use super::{Statement, Store};
use crate::error::{Error, Resource};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppRow {
    pub id: String,
    pub name: String,
    /// The App object's settings, as JSON.
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub app_id: String,
    /// Sealed PKCS#8.
    pub private_key: Vec<u8>,
    pub public_jwk: String,
    pub public_pem: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl Store {
    pub fn insert_app(app: &AppRow, api_key_hash: &[u8]) -> Statement {
        Statement::new(
            "insert into passage_apps (id, name, settings, api_key_hash, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .text(app.id.clone())
        .text(app.name.clone())
        .text(app.settings.clone())
        .blob(api_key_hash.to_vec())
        .int(app.created_at)
        .int(app.updated_at)
    }

    pub async fn get_app(&self, id: &str) -> Result<AppRow, Error> {
        sqlx::query_as(
            "select id, name, settings, created_at, updated_at from passage_apps where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(Error::NotFound(Resource::App))
    }

    pub async fn update_app(
        &self,
        id: &str,
        name: &str,
        settings: &str,
        now: i64,
    ) -> Result<(), Error> {
        let done = sqlx::query(
            "update passage_apps set name = $2, settings = $3, updated_at = $4 where id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(settings)
        .bind(now)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(Resource::App));
        }
        Ok(())
    }

    pub async fn list_apps(&self) -> Result<Vec<AppRow>, Error> {
        Ok(sqlx::query_as(
            "select id, name, settings, created_at, updated_at from passage_apps
              order by created_at, id",
        )
        .fetch_all(&self.read)
        .await?)
    }

    pub fn insert_signing_key(key: &SigningKeyRow) -> Statement {
        Statement::new(
            "insert into signing_keys (kid, app_id, private_key, public_jwk, public_pem,
               created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .text(key.kid.clone())
        .text(key.app_id.clone())
        .blob(key.private_key.clone())
        .text(key.public_jwk.clone())
        .text(key.public_pem.clone())
        .int(key.created_at)
    }

    /// Retires the app's current signing keys: published until `publish_until`, no longer used.
    pub fn retire_signing_keys(app_id: &str, now: i64, publish_until: i64) -> Statement {
        Statement::new(
            "update signing_keys set retired_at = $2, publish_until = $3
              where app_id = $1 and retired_at is null",
        )
        .text(app_id.to_string())
        .int(now)
        .int(publish_until)
    }

    /// Keys to publish at `now`, newest first: the current one and the retired ones whose
    /// tokens may still be valid.
    pub async fn published_signing_keys(
        &self,
        app_id: &str,
        now: i64,
    ) -> Result<Vec<SigningKeyRow>, Error> {
        Ok(sqlx::query_as(
            "select kid, app_id, private_key, public_jwk, public_pem, created_at, retired_at,
                    publish_until
               from signing_keys
              where app_id = $1 and (retired_at is null or publish_until > $2)
              order by created_at desc, kid",
        )
        .bind(app_id)
        .bind(now)
        .fetch_all(&self.read)
        .await?)
    }
}
