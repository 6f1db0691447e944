//! tyntec accounts and their API keys (administered from the CLI).

use crate::{
    crypto,
    domain::now_ms,
    error::{Error, Resource},
    storage::{AccountRow, ApiKeyRow, Statement, Store, Unit},
};

use super::applications;

/// A new account with its default application and first API key, in one transaction.
/// Returns the account and the key, which is shown only now.
pub async fn create(store: &Store, name: &str) -> Result<(AccountRow, String), Error> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(Error::invalid("name", "must be 1 to 200 characters"));
    }
    let now = now_ms();
    let account = AccountRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_string(),
        created_at: now,
    };
    let (insert_key, _, key) = new_key(&account.id, "default", now);
    let unit = Unit::all(vec![
        Store::insert_account(&account),
        applications::insert_default(&account.id, now)?,
        insert_key,
    ]);
    store.commit(unit).await?;
    Ok((account, key))
}

/// A further API key for an existing account: (key id, key).
pub async fn create_key(
    store: &Store,
    account_id: &str,
    label: &str,
) -> Result<(String, String), Error> {
    if !store.account_exists(account_id).await? {
        return Err(Error::NotFound(Resource::Account));
    }
    let (insert, id, key) = new_key(account_id, label, now_ms());
    store.commit(Unit::all(vec![insert])).await?;
    Ok((id, key))
}

/// A new key of the account: its row's insert, its id and the key itself.
fn new_key(account_id: &str, label: &str, now: i64) -> (Statement, String, String) {
    let key = crypto::new_api_key();
    let row = ApiKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        account_id: account_id.to_string(),
        label: label.to_string(),
        created_at: now,
        revoked_at: None,
    };
    let insert = Store::insert_api_key(&row, &crypto::sha256(&key));
    (insert, row.id, key)
}
