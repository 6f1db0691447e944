//! The running server: shared state, the router of every surface, and start-up.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{middleware, Router};
use tokio::{net::TcpListener, sync::Notify};
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    config::Config,
    crypto::ServerKeys,
    delivery::{self, Providers},
    error::Error,
    key_cache::KeyCache,
    ops::{self, metrics::Metrics},
    passage_auth::{self, apps::App},
    passage_manage,
    storage::Store,
    throttle::Throttle,
    ttl_cache::TtlCache,
    tyntec,
};

/// How long another node's change of app settings may take to show on this one.
const APP_TTL: Duration = Duration::from_secs(2);

/// Everything a request handler or background task needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub keys: ServerKeys,
    pub metrics: Arc<Metrics>,
    /// Messages committed on this node, for its outbox worker.
    pub handoff: Arc<delivery::Handoff>,
    /// Makes the outbox worker look for due messages now (after a fallback).
    pub outbox_wake: Arc<Notify>,
    pub throttle: Arc<Throttle>,
    pub api_keys: Arc<KeyCache>,
    pub signing_keys: Arc<passage_auth::session::SigningKeys>,
    /// Passage apps as read from the database, for a couple of seconds (every Auth request
    /// and its CORS check need the app's settings).
    pub apps: Arc<TtlCache<Arc<App>>>,
}

impl AppState {
    pub fn new(config: Config, store: Store, keys: ServerKeys) -> Self {
        AppState {
            config: Arc::new(config),
            store,
            keys,
            metrics: Arc::new(Metrics::default()),
            handoff: Arc::default(),
            outbox_wake: Arc::new(Notify::new()),
            throttle: Arc::default(),
            api_keys: Arc::default(),
            signing_keys: Arc::default(),
            apps: Arc::new(TtlCache::new(APP_TTL)),
        }
    }

    /// The Passage app `id` (cached for `APP_TTL`; an update on this node shows at once).
    pub async fn app(&self, id: &str) -> Result<Arc<App>, Error> {
        if let Some((app, _)) = self.apps.get(id) {
            return Ok(app);
        }
        let app = Arc::new(App::load(&self.store, id).await?);
        self.apps.insert(id, app.clone());
        Ok(app)
    }

    /// Counts a hit in a fixed window of `period_secs` (see `throttle`); `RateLimited` once
    /// `limit` hits were counted. A limit of 0 turns the throttle off.
    pub async fn throttle(&self, bucket: &str, limit: u32, period_secs: u64) -> Result<(), Error> {
        self.throttle
            .hit(&self.store, bucket, limit, period_secs)
            .await
    }

    /// The per-recipient message limit (`delivery_limit_per_recipient` an hour): a guard
    /// against SMS pumping and mail bombing.
    pub async fn throttle_recipient(&self, recipient: &str) -> Result<(), Error> {
        let limit = self.config.delivery_limit_per_recipient;
        self.throttle(&format!("recipient:{recipient}"), limit, 3600)
            .await
    }

    /// The request throttle (`rate_limit_calls` per `rate_limit_period_seconds`).
    pub async fn throttle_requests(&self, bucket: &str) -> Result<(), Error> {
        let c = &self.config;
        self.throttle(bucket, c.rate_limit_calls, c.rate_limit_period_seconds)
            .await
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/2fa/v1", tyntec::router())
        .nest(
            "/v1",
            passage_auth::router().merge(passage_manage::router()),
        )
        .merge(ops::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            passage_auth::throttle::per_client,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            ops::metrics::track,
        ))
        // Spans name the path only: query strings may carry an API key (`?apiKey=`).
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(CatchPanicLayer::custom(tyntec::error::panic_response))
        .with_state(state)
}

/// Binds the listener and returns its address and the server future (which also runs the
/// outbox worker until the server stops).
pub async fn bind(
    state: AppState,
    providers: Providers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(
    SocketAddr,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let listener = TcpListener::bind(state.config.listen).await?;
    let addr = listener.local_addr()?;
    // CORS runs before routing, so that preflights reach it on every path and method.
    let cors = middleware::from_fn_with_state(state.clone(), passage_auth::cors::cors);
    let app = tower::Layer::layer(&cors, router(state.clone()));
    let worker = delivery::worker::Worker::new(state, providers);
    let server = async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(worker.run(stop_rx));
        let served = axum::serve(
            listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
                SocketAddr,
            >(app),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop_tx.send(true);
        let _ = worker.await;
        served.map_err(anyhow::Error::from)
    };
    Ok((addr, server))
}
