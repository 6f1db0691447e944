//! Passage apps and their RS256 signing keys.

use super::rows::row_type;
use super::{Statement, Store};
use crate::error::{Error, Resource};

row_type! {
    #[derive(Debug, Clone)]
    pub struct AppRow {
        pub id: String,
        pub name: String,
        /// The App object's settings, as JSON.
        pub settings: String,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

row_type! {
    #[derive(Clone)]
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
}

row_type! {
    /// A named API key of an app (its digest is never read back).
    #[derive(Debug, Clone)]
    pub struct AppKeyRow {
        pub id: String,
        pub app_id: String,
        pub name: String,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
    }
}

impl Store {
    pub fn insert_app_key(key: &AppKeyRow, key_hash: &[u8]) -> Statement {
        Statement::new(
            "insert into passage_app_keys (id, app_id, name, key_hash, created_at)
             values ($1, $2, $3, $4, $5)",
        )
        .text(key.id.clone())
        .text(key.app_id.clone())
        .text(key.name.clone())
        .blob(key_hash.to_vec())
        .int(key.created_at)
    }

    /// Whether `key_hash` is the digest of an unrevoked key of app `app_id`.
    pub async fn is_app_key(&self, app_id: &str, key_hash: &[u8]) -> Result<bool, Error> {
        let row: Option<(i64,)> = Statement::new(
            "select 1 from passage_app_keys
              where app_id = $1 and key_hash = $2 and revoked_at is null",
        )
        .bind(app_id)
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// An app's keys, revoked ones included, oldest first.
    pub async fn list_app_keys(&self, app_id: &str) -> Result<Vec<AppKeyRow>, Error> {
        Statement::new(
            "select id, app_id, name, created_at, revoked_at from passage_app_keys
              where app_id = $1 order by created_at, id",
        )
        .bind(app_id)
        .fetch_all(&self.read)
        .await
    }

    /// Revokes a key of the app unless it is the app's last one: `NotFound` for an unknown or
    /// revoked key, `false` when it is the last.
    pub async fn revoke_app_key(&self, app_id: &str, id: &str, now: i64) -> Result<bool, Error> {
        let done = Statement::new(
            "update passage_app_keys set revoked_at = $3
              where app_id = $1 and id = $2 and revoked_at is null
                and exists (select 1 from passage_app_keys o
                             where o.app_id = $1 and o.id <> $2 and o.revoked_at is null)",
        )
        .bind(app_id)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        if done == 1 {
            return Ok(true);
        }
        let live = self.list_app_keys(app_id).await?;
        if live.iter().any(|k| k.id == id && k.revoked_at.is_none()) {
            Ok(false)
        } else {
            Err(Error::NotFound(Resource::ApiKey))
        }
    }

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
        Statement::new(
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
        let done = Statement::new(
            "update passage_apps set name = $2, settings = $3, updated_at = $4 where id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(settings)
        .bind(now)
        .execute(&self.write)
        .await?;
        if done == 0 {
            return Err(Error::NotFound(Resource::App));
        }
        Ok(())
    }

    pub async fn list_apps(&self) -> Result<Vec<AppRow>, Error> {
        Statement::new(
            "select id, name, settings, created_at, updated_at from passage_apps
              order by created_at, id",
        )
        .fetch_all(&self.read)
        .await
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
        Statement::new(
            "select kid, app_id, private_key, public_jwk, public_pem, created_at, retired_at,
                    publish_until
               from signing_keys
              where app_id = $1 and (retired_at is null or publish_until > $2)
              order by created_at desc, kid",
        )
        .bind(app_id)
        .bind(now)
        .fetch_all(&self.read)
        .await
    }
}
