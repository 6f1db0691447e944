//! A short-lived, per-node cache of API key look-ups: keys are checked on every request, and
//! this takes the database off that path. A revoked key stops working on every node within
//! `TTL`.

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::{error::Error, storage::Store, ttl_cache::TtlCache};

pub const TTL: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct KeyCache {
    /// SHA-256 of the key (base64url) → account id.
    accounts: TtlCache<String>,
}

impl Default for KeyCache {
    fn default() -> Self {
        KeyCache {
            accounts: TtlCache::new(TTL),
        }
    }
}

impl KeyCache {
    /// The account owning the key with this digest, if the key is valid.
    pub async fn account(&self, store: &Store, digest: &[u8]) -> Result<Option<String>, Error> {
        let key = URL_SAFE_NO_PAD.encode(digest);
        if let Some((account, _)) = self.accounts.get(&key) {
            return Ok(Some(account));
        }
        let account = store.account_for_key(digest).await?;
        match &account {
            Some(id) => self.accounts.insert(&key, id.clone()),
            None => self.accounts.remove(&key),
        }
        Ok(account)
    }
}
