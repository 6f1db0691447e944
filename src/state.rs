//! What request handlers and background tasks share. Imports no surface: the surfaces import
//! it.

use std::{ops::Deref, sync::Arc};

use crate::{
    config::Config, crypto::ServerKeys, delivery::Outbox, key_cache::KeyCache, metrics::Metrics,
    passage::Passage, storage::Store, throttle::Limits,
};

/// Everything a request handler needs. Cheap to clone (the router clones it for every
/// request): one reference to the shared [`Shared`].
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the state holds.
#[derive(Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: ServerKeys,
    pub metrics: Arc<Metrics>,
    pub outbox: Outbox,
    pub limits: Limits,
    /// tyntec API keys, cached per node.
    pub api_keys: Arc<KeyCache>,
    /// The Passage core, for the Passage surfaces.
    pub passage: Passage,
}

impl AppState {
    pub fn new(config: Config, store: Store, keys: ServerKeys) -> Self {
        let config = Arc::new(config);
        let metrics = Arc::<Metrics>::default();
        let outbox = Outbox::new(store.clone(), keys.clone());
        let limits = Limits::new(config.clone(), store.clone(), metrics.clone());
        let passage = Passage::new(
            &config,
            store.clone(),
            keys.clone(),
            outbox.clone(),
            limits.clone(),
            metrics.clone(),
        );
        AppState(Arc::new(Shared {
            config,
            store,
            keys,
            metrics,
            outbox,
            limits,
            api_keys: Arc::default(),
            passage,
        }))
    }
}
