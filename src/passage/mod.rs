//! The Passage core: apps, users and their identifiers, sessions and tokens, passcodes,
//! magic links, passkeys and social logins — the rules every Passage surface (the Auth and Manage APIs, the CLI) calls,
//! with the typed shapes of the wire. No HTTP here: the routers extract, call one service and
//! answer what it returns.

pub mod app_keys;
pub mod apps;
pub mod devices;
pub mod magic_links;
mod metadata;
pub mod passcodes;
pub mod passkeys;
pub mod sessions;
mod settings;
mod signing;
pub mod social;
pub mod transfer;
pub mod users;
pub mod wire;

use std::{sync::Arc, time::Duration};

use crate::{
    config::Config, crypto::ServerKeys, delivery::Outbox, error::Error, metrics::Metrics,
    storage::Store, throttle::Limits, ttl_cache::TtlCache,
};

pub use apps::App;
pub use users::Identifier;

/// How long another node's change of app settings may take to show on this one.
const APP_TTL: Duration = Duration::from_secs(2);

/// What the Passage services work with. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Passage {
    store: Store,
    keys: ServerKeys,
    outbox: Outbox,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Apps as read from the database, for a couple of seconds (every Auth request and its
    /// CORS check need the app's settings).
    apps: Arc<TtlCache<Arc<App>>>,
    signing: Arc<signing::SigningKeys>,
    /// Social login providers' HTTP client and discovery documents.
    providers: Arc<social::Providers>,
    /// The server's public base URL: token issuers and links.
    public_url: String,
    /// A rotated refresh token presented again within this window gets the same successor.
    refresh_grace_ms: i64,
}

impl Passage {
    pub fn new(
        config: &Config,
        store: Store,
        keys: ServerKeys,
        outbox: Outbox,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Passage {
            store,
            keys,
            outbox,
            limits,
            metrics,
            apps: Arc::new(TtlCache::new(APP_TTL)),
            signing: Arc::default(),
            providers: Arc::default(),
            public_url: config.public_url.trim_end_matches('/').to_string(),
            refresh_grace_ms: i64::try_from(config.refresh_grace_seconds)
                .unwrap_or(0)
                .saturating_mul(1000),
        }
    }

    /// The app `id` (cached for `APP_TTL`; an update on this node shows at once).
    pub async fn app(&self, id: &str) -> Result<Arc<App>, Error> {
        if let Some((app, _)) = self.apps.get(id) {
            return Ok(app);
        }
        let app = Arc::new(App::load(&self.store, id).await?);
        self.apps.insert(id, app.clone());
        Ok(app)
    }

    /// The token issuer of an app, also its OpenID Connect issuer.
    pub fn issuer(&self, app_id: &str) -> String {
        format!("{}/v1/apps/{app_id}", self.public_url)
    }
}
