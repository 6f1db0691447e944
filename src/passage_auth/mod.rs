//! Passage Auth API v1 under `/v1/apps/{app_id}`: the App object and its published keys,
//! passcode and magic-link logins, sessions, and the signed-in user.

pub mod apps;
pub mod cors;
mod current_user;
pub mod error;
pub mod extract;
pub mod magic_link;
pub mod otp;
pub mod session;
pub mod throttle;
pub mod users;
pub mod wire;

use std::sync::Arc;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, patch, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use self::{apps::App, error::PassageError, extract::Body};
use crate::{app::AppState, domain::now_ms, error::Error};

type Reply = Result<Json<Value>, PassageError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}", get(get_app))
        .route("/apps/{app_id}/.well-known/jwks.json", get(jwks))
        .route("/apps/{app_id}/login/otp", post(login_otp))
        .route("/apps/{app_id}/register/otp", post(register_otp))
        .route("/apps/{app_id}/otp/activate", post(activate_otp))
        .route("/apps/{app_id}/login/magic-link", post(login_magic_link))
        .route(
            "/apps/{app_id}/register/magic-link",
            post(register_magic_link),
        )
        .route(
            "/apps/{app_id}/magic-link/activate",
            patch(activate_magic_link),
        )
        .route("/apps/{app_id}/magic-link/status", post(magic_link_status))
        .merge(current_user::router())
        .route(
            "/apps/{app_id}/tokens",
            post(refresh_tokens).delete(revoke_tokens),
        )
        .route(
            "/apps/{app_id}/.well-known/openid-configuration",
            get(openid_configuration),
        )
        // An unknown route is not an unknown app.
        .fallback(|| async { PassageError::from(Error::NotFound).not_found_as("route_not_found") })
        .method_not_allowed_fallback(|| async { PassageError::from(Error::MethodNotAllowed) })
}

/// The token issuer of an app, also its OpenID Connect issuer.
pub fn issuer(s: &AppState, app_id: &str) -> String {
    format!("{}/v1/apps/{app_id}", s.config.public_url)
}

async fn load_app(s: &AppState, app_id: &str) -> Result<Arc<App>, PassageError> {
    Ok(s.app(app_id).await?)
}

/// Passage: GET /v1/apps/{app_id} (Auth, public; and the Manage API's get-app).
async fn get_app(State(s): State<AppState>, Path(app_id): Path<String>) -> Reply {
    let app = load_app(&s, &app_id).await?;
    app_response(&s, &app).await
}

/// `{"app": ...}` with the current signing key's public half.
pub async fn app_response(s: &AppState, app: &App) -> Reply {
    let keys = s.store.published_signing_keys(&app.id, now_ms()).await?;
    let current = keys
        .iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("app has no signing key")))?;
    Ok(Json(json!({"app": wire::app(app, &current.public_pem)})))
}

/// Passage: GET /v1/apps/{app_id}/.well-known/jwks.json — the current key and retired keys
/// whose tokens may still be valid.
async fn jwks(State(s): State<AppState>, Path(app_id): Path<String>) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let keys = s.store.published_signing_keys(&app.id, now_ms()).await?;
    let keys = keys
        .iter()
        .map(|k| serde_json::from_str(&k.public_jwk).map_err(|e| Error::Internal(e.into())))
        .collect::<Result<Vec<Value>, Error>>()?;
    Ok(Json(json!({ "keys": keys })))
}

/// Passage: GET /v1/apps/{app_id}/.well-known/openid-configuration
async fn openid_configuration(State(s): State<AppState>, Path(app_id): Path<String>) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let issuer = issuer(&s, &app.id);
    Ok(Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "authorization_endpoint": format!("{}/login/{}", s.config.public_url, app.id),
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
    })))
}

#[derive(Debug, Deserialize)]
struct IdentifierRequest {
    identifier: String,
}

/// Passage: POST /v1/apps/{app_id}/login/otp → 201 `{otp_id}`
async fn login_otp(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<IdentifierRequest>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = load_app(&s, &app_id).await?;
    let otp_id = otp::login(&s, &app, &req.identifier)
        .await
        .map_err(|e| PassageError::from(e).not_found_as("user_not_found"))?;
    Ok((StatusCode::CREATED, Json(json!({ "otp_id": otp_id }))))
}

/// Passage: POST /v1/apps/{app_id}/register/otp → 201 `{otp_id}`
async fn register_otp(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<IdentifierRequest>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = load_app(&s, &app_id).await?;
    let otp_id = otp::register(&s, &app, &req.identifier).await?;
    Ok((StatusCode::CREATED, Json(json!({ "otp_id": otp_id }))))
}

#[derive(Debug, Deserialize)]
struct ActivateRequest {
    otp: String,
    otp_id: String,
}

/// Passage: POST /v1/apps/{app_id}/otp/activate → 200 AuthResponse
async fn activate_otp(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<ActivateRequest>,
) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let result = otp::activate(&s, &app, &req.otp_id, &req.otp).await?;
    Ok(Json(json!({ "auth_result": result })))
}

#[derive(Debug, Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

/// Passage: POST /v1/apps/{app_id}/tokens → 201 AuthResponse
async fn refresh_tokens(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<RefreshRequest>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = load_app(&s, &app_id).await?;
    let result = session::refresh(&s, &app, &req.refresh_token).await?;
    Ok((StatusCode::CREATED, Json(json!({ "auth_result": result }))))
}

/// Passage: DELETE /v1/apps/{app_id}/tokens?refresh_token=
async fn revoke_tokens(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<StatusCode, PassageError> {
    let app = load_app(&s, &app_id).await?;
    let token = q
        .get("refresh_token")
        .ok_or_else(|| Error::invalid("refresh_token", "is required"))?;
    session::revoke(&s, &app, token).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct MagicLinkRequest {
    identifier: String,
    language: Option<String>,
    magic_link_path: Option<String>,
}

fn magic_link_error(e: Error) -> PassageError {
    PassageError::from(e)
        .not_found_as("magic_link_not_found")
        .code_as(StatusCode::UNAUTHORIZED, "invalid_magic_link")
}

/// Passage: POST /v1/apps/{app_id}/login/magic-link → 200 `{magic_link: {id}}`
async fn login_magic_link(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<MagicLinkRequest>,
) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let (path, language) = (req.magic_link_path.as_deref(), req.language.as_deref());
    let id = magic_link::login(&s, &app, &req.identifier, path, language)
        .await
        .map_err(|e| PassageError::from(e).not_found_as("user_not_found"))?;
    Ok(Json(json!({"magic_link": {"id": id}})))
}

/// Passage: POST /v1/apps/{app_id}/register/magic-link → 201 `{magic_link: {id}}`
async fn register_magic_link(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<MagicLinkRequest>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = load_app(&s, &app_id).await?;
    let (path, language) = (req.magic_link_path.as_deref(), req.language.as_deref());
    let id = magic_link::register(&s, &app, &req.identifier, path, language).await?;
    Ok((StatusCode::CREATED, Json(json!({"magic_link": {"id": id}}))))
}

#[derive(Debug, Deserialize)]
struct ActivateMagicLinkRequest {
    magic_link: String,
}

/// Passage: PATCH /v1/apps/{app_id}/magic-link/activate → 200 AuthResponse
async fn activate_magic_link(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<ActivateMagicLinkRequest>,
) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let result = magic_link::activate(&s, &app, &req.magic_link)
        .await
        .map_err(magic_link_error)?;
    Ok(Json(json!({ "auth_result": result })))
}

#[derive(Debug, Deserialize)]
struct MagicLinkStatusRequest {
    id: String,
}

/// Passage: POST /v1/apps/{app_id}/magic-link/status → 200 AuthResponse once the link was
/// activated; 401 `invalid_magic_link` while it is not.
async fn magic_link_status(
    State(s): State<AppState>,
    Path(app_id): Path<String>,
    Body(req): Body<MagicLinkStatusRequest>,
) -> Reply {
    let app = load_app(&s, &app_id).await?;
    let result = magic_link::status(&s, &app, &req.id)
        .await
        .map_err(magic_link_error)?;
    Ok(Json(json!({ "auth_result": result })))
}
