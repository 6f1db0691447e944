//! The running server: the router of every surface, and start-up.

mod listen;

use std::{any::Any, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    client_address,
    delivery::{worker::Worker, Providers},
    error::{Error, Resource},
    hosted,
    http::body_deadline,
    metrics, ops, passage_auth, passage_http, passage_manage,
    state::AppState,
    tyntec,
};
use listen::{serve, ConnectionLimits};

pub fn router(state: AppState) -> Router {
    let trusted_proxies = Arc::new(state.config.trusted_proxies.clone());
    let body_timeout = Duration::from_secs(state.config.body_read_timeout_seconds);
    let operator = if state.config.metrics_listen.is_some() {
        ops::router()
    } else {
        ops::router().merge(ops::metrics_router())
    };
    Router::new()
        .nest("/2fa/v1", tyntec::router())
        .nest(
            "/v1",
            passage_auth::router()
                .merge(passage_manage::router())
                .fallback(passage_http::unknown_route)
                .method_not_allowed_fallback(passage_http::wrong_method)
                .layer(DefaultBodyLimit::max(64 * 1024))
                .layer(CatchPanicLayer::custom(passage_http::panic_response)),
        )
        .merge(hosted::router())
        .merge(operator)
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            passage_http::throttle::per_client,
        ))
        .layer(middleware::from_fn(move |req, next| {
            let trusted = trusted_proxies.clone();
            async move { client_address::identify(&trusted, req, next).await }
        }))
        .layer(middleware::from_fn(move |req, next| {
            body_deadline(body_timeout, req, next)
        }))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        // Spans name the path only: query strings may carry an API key (`?apiKey=`).
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// A path outside every surface.
async fn unknown_route() -> Response {
    let error = Error::NotFound(Resource::Route);
    outside(StatusCode::NOT_FOUND, "route_not_found", error)
}

/// A wrong method on an operator endpoint.
async fn wrong_method() -> Response {
    let error = Error::MethodNotAllowed;
    outside(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", error)
}

/// The answer outside the surfaces: `{"code", "error"}`.
fn outside(status: StatusCode, code: &str, error: Error) -> Response {
    (
        status,
        Json(json!({"code": code, "error": error.to_string()})),
    )
        .into_response()
}

/// A panic outside the surfaces' own handlers (each surface answers its own in its shape).
fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("panicked outside a surface");
    let error = Error::Internal(anyhow::anyhow!("panic"));
    outside(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_server_error",
        error,
    )
}

/// Where a bound server listens.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub addr: SocketAddr,
    /// The separate `/metrics` listener, when configured.
    pub metrics_addr: Option<SocketAddr>,
}

/// Binds the listeners and returns where they listen and the server future (which also runs
/// the outbox worker until the server stops).
pub async fn bind(
    state: AppState,
    providers: Providers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(
    Listening,
    impl std::future::Future<Output = anyhow::Result<()>>,
)> {
    let config = state.config.clone();
    let listener = TcpListener::bind(config.listen).await?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let listening = Listening {
        addr: listener.local_addr()?,
        metrics_addr: metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?,
    };
    let limits = ConnectionLimits {
        max_connections: config.max_connections as usize,
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds.max(1)),
    };
    // CORS runs before routing, so that preflights reach it on every path and method.
    let cors = middleware::from_fn_with_state(state.clone(), passage_http::cors::cors);
    let app = tower::Layer::layer(&cors, router(state.clone()));
    let worker = Worker::new(&state.outbox, providers, state.metrics.clone(), &config);
    let server = async move {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(worker.run(stop_rx.clone()));
        let metrics = metrics_listener.map(|listener| {
            let mut stop = stop_rx.clone();
            let metrics_app = ops::metrics_router().with_state(state.clone());
            tokio::spawn(serve(listener, metrics_app, limits, async move {
                let _ = stop.wait_for(|stop| *stop).await;
            }))
        });
        serve(listener, app, limits, shutdown).await;
        let _ = stop_tx.send(true);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        let _ = worker.await;
        Ok(())
    };
    Ok((listening, server))
}
