//! Accounts of the tyntec surface and their API keys.

use super::rows::row_type;
use super::{Statement, Store};
use crate::error::{Error, Resource};

row_type! {
    #[derive(Debug, Clone)]
    pub struct AccountRow {
        pub id: String,
        pub name: String,
        pub created_at: i64,
    }
}

row_type! {
    #[derive(Debug, Clone)]
    pub struct ApiKeyRow {
        pub id: String,
        pub account_id: String,
        pub label: String,
        pub created_at: i64,
        pub revoked_at: Option<i64>,
    }
}

impl Store {
    pub fn insert_account(account: &AccountRow) -> Statement {
        Statement::new("insert into accounts (id, name, created_at) values ($1, $2, $3)")
            .text(account.id.clone())
            .text(account.name.clone())
            .int(account.created_at)
    }

    pub async fn list_accounts(&self) -> Result<Vec<AccountRow>, Error> {
        Statement::new("select id, name, created_at from accounts order by created_at, id")
            .fetch_all(&self.read)
            .await
    }

    pub async fn account_exists(&self, id: &str) -> Result<bool, Error> {
        let row: Option<(String,)> = Statement::new("select id from accounts where id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    pub fn insert_api_key(key: &ApiKeyRow, key_hash: &[u8]) -> Statement {
        Statement::new(
            "insert into api_keys (id, account_id, key_hash, label, created_at)
             values ($1, $2, $3, $4, $5)",
        )
        .text(key.id.clone())
        .text(key.account_id.clone())
        .blob(key_hash.to_vec())
        .text(key.label.clone())
        .int(key.created_at)
    }

    /// The account owning an unrevoked key with this SHA-256 digest.
    pub async fn account_for_key(&self, key_hash: &[u8]) -> Result<Option<String>, Error> {
        let row: Option<(String,)> = Statement::new(
            "select account_id from api_keys where key_hash = $1 and revoked_at is null",
        )
        .bind(key_hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn list_api_keys(&self, account_id: &str) -> Result<Vec<ApiKeyRow>, Error> {
        Statement::new(
            "select id, account_id, label, created_at, revoked_at from api_keys
              where account_id = $1 order by created_at, id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await
    }

    /// Revokes a key; `NotFound` when it does not exist or was revoked before.
    pub async fn revoke_api_key(&self, key_id: &str, now: i64) -> Result<(), Error> {
        let done = Statement::new(
            "update api_keys set revoked_at = $2 where id = $1 and revoked_at is null",
        )
        .bind(key_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        if done == 0 {
            return Err(Error::NotFound(Resource::ApiKey));
        }
        Ok(())
    }
}
