//! Accounts of the tyntec surface and their API keys.

use super::{Store, Tx};
use crate::error::{Error, Resource};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub account_id: String,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn insert_account(tx: &mut Tx, account: &AccountRow) -> Result<(), Error> {
        sqlx::query("insert into accounts (id, name, created_at) values ($1, $2, $3)")
            .bind(&account.id)
            .bind(&account.name)
            .bind(account.created_at)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>, Error> {
        Ok(
            sqlx::query_as("select id, name, created_at from accounts order by created_at, id")
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn account_exists(&self, id: &str) -> Result<bool, Error> {
        let row: Option<(String,)> = sqlx::query_as("select id from accounts where id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    pub async fn insert_api_key(
        tx: &mut Tx,
        key: &ApiKeyRow,
        key_hash: &[u8],
    ) -> Result<(), Error> {
        sqlx::query(
            "insert into api_keys (id, account_id, key_hash, label, created_at)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.account_id)
        .bind(key_hash)
        .bind(&key.label)
        .bind(key.created_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The account owning an unrevoked key with this SHA-256 digest.
    pub async fn account_for_key(&self, key_hash: &[u8]) -> Result<Option<String>, Error> {
        let row: Option<(String,)> = sqlx::query_as(
            "select account_id from api_keys where key_hash = $1 and revoked_at is null",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKeyRow>, Error> {
        Ok(sqlx::query_as(
            "select id, account_id, label, created_at, revoked_at from api_keys
              where account_id = $1 order by created_at, id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Revokes a key; `NotFound` when it does not exist or was revoked before.
    pub async fn revoke_api_key(&self, key_id: &str, now: i64) -> Result<(), Error> {
        let done =
            sqlx::query("update api_keys set revoked_at = $2 where id = $1 and revoked_at is null")
                .bind(key_id)
                .bind(now)
                .execute(&self.write)
                .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(Resource::ApiKey));
        }
        Ok(())
    }
}
