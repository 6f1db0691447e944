//! Operator endpoints: liveness, readiness, metrics and the OpenAPI description.

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde_json::json;

use crate::{crypto, state::AppState};

/// Liveness, readiness and the OpenAPI description.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
}

/// `/metrics`, on the main listener or on its own (`metrics_listen`).
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_text))
}

/// GET /healthz: the process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// GET /readyz: the database answers.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "reason": "database unreachable"})),
            )
        }
    }
}

/// GET /metrics: Prometheus text format; with `metrics_token` set, for its Bearer only.
async fn metrics_text(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &s.config.metrics_token {
        let given = crate::http::bearer(&headers).unwrap_or_default();
        if !crypto::constant_time_eq(&crypto::sha256(given), &crypto::sha256(token.expose())) {
            let body = json!({"code": "unauthorized", "error": "the metrics token is required"});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    if let Ok(n) = s.store.pending_deliveries().await {
        s.metrics.outbox_pending.set(n);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// GET /openapi.json: the tyntec 2FA surface as served here.
async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}
