//! The running server: the router of every surface, and start-up.

use std::{any::Any, net::SocketAddr};

use axum::{
    http::StatusCode,
    middleware,
    response::{IntoResponse, Response},
    Json, Router,
};
use serde_json::json;
use tokio::net::TcpListener;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};

use crate::{
    delivery::{worker::Worker, Providers},
    error::{Error, Resource},
    metrics, ops, passage_auth, passage_http, passage_manage,
    state::AppState,
    tyntec,
};

pub fn router(state: AppState) -> Router {
    Router::new()
        .nest("/2fa/v1", tyntec::router())
        .nest(
            "/v1",
            passage_auth::router()
                .merge(passage_manage::router())
                .fallback(passage_http::unknown_route)
                .method_not_allowed_fallback(passage_http::wrong_method)
                .layer(CatchPanicLayer::custom(passage_http::panic_response)),
        )
        .merge(ops::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            passage_http::throttle::per_client,
        ))
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
    let cors = middleware::from_fn_with_state(state.clone(), passage_http::cors::cors);
    let app = tower::Layer::layer(&cors, router(state.clone()));
    let worker = Worker::new(
        &state.outbox,
        providers,
        state.metrics.clone(),
        state.config.delivery_max_attempts,
    );
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
