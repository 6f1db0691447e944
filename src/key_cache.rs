//! A short-lived, per-node cache of API key look-ups: keys are checked on every request, and
//! this takes the database off that path. A revoked key stops working on every node within
//! `TTL`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{error::Error, storage::Store};

pub const TTL: Duration = Duration::from_secs(10);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct KeyCache {
    /// SHA-256 of the key → (account id, when it was looked up).
    entries: Mutex<HashMap<Vec<u8>, (String, Instant)>>,
}

impl KeyCache {
    /// The account owning the key with this digest, if the key is valid.
    pub async fn account(&self, store: &Store, digest: &[u8]) -> Result<Option<String>, Error> {
        if let Some((account, at)) = self.lock().get(digest) {
            if at.elapsed() < TTL {
                return Ok(Some(account.clone()));
            }
        }
        let account = store.account_for_key(digest).await?;
        let mut entries = self.lock();
        match &account {
            Some(id) => {
                if entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, (_, at)| at.elapsed() < TTL);
                }
                entries.insert(digest.to_vec(), (id.clone(), Instant::now()));
            }
            None => {
                entries.remove(digest);
            }
        }
        Ok(account)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, (String, Instant)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
