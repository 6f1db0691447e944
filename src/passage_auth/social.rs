//! Social login (`social/*`) and the signed-in user's social connections.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use serde::Deserialize;

use super::{extract::CurrentUser, NoStore};
use crate::{
    passage::{
        social::{self, AuthorizeRequest, CallbackRequest},
        wire::{AuthResponse, SocialConnectionsResponse},
    },
    passage_http::{
        extract::{Path, PathApp, Query},
        PassageError,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}/social/authorize", get(authorize))
        .route(
            "/apps/{app_id}/social/oauth2_callback",
            get(callback).post(callback_form),
        )
        .route("/apps/{app_id}/social/token", get(token))
        .route(
            "/apps/{app_id}/currentuser/social/link_account",
            get(link_account),
        )
        .route(
            "/apps/{app_id}/currentuser/social-connections",
            get(connections),
        )
        .route(
            "/apps/{app_id}/currentuser/social-connections/{connection_type}",
            axum::routing::delete(unlink),
        )
}

/// A 302 to `url`, which no cache keeps.
fn found(url: url::Url) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, url.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

/// Passage: GET /v1/apps/{app_id}/social/authorize → 302 to the provider.
async fn authorize(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Query(req): Query<AuthorizeRequest>,
) -> Result<Response, PassageError> {
    Ok(found(social::authorize(&s.passage, &app, req).await?))
}

/// Passage: GET /v1/apps/{app_id}/social/oauth2_callback → 302 to the app.
async fn callback(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Query(req): Query<CallbackRequest>,
) -> Result<Response, PassageError> {
    Ok(found(social::callback(&s.passage, &app, req).await?))
}

/// The same callback as a form POST (Apple's `response_mode=form_post`).
async fn callback_form(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    body: Bytes,
) -> Result<Response, PassageError> {
    let mut req = CallbackRequest::default();
    for (name, value) in url::form_urlencoded::parse(&body) {
        let field = match name.as_ref() {
            "code" => &mut req.code,
            "state" => &mut req.state,
            "error" => &mut req.error,
            "error_description" => &mut req.error_description,
            "iss" => &mut req.iss,
            _ => continue,
        };
        *field = value.into_owned();
    }
    Ok(found(social::callback(&s.passage, &app, req).await?))
}

/// `social/token` and `link_account`: the code and the app's PKCE verifier.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodeQuery {
    code: String,
    verifier: String,
}

/// Passage: GET /v1/apps/{app_id}/social/token → 201 AuthResponse
async fn token(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Query(q): Query<CodeQuery>,
) -> Result<(StatusCode, NoStore<Json<AuthResponse>>), PassageError> {
    let auth_result = social::token(&s.passage, &app, &q.code, &q.verifier).await?;
    Ok((
        StatusCode::CREATED,
        NoStore(Json(AuthResponse { auth_result })),
    ))
}

/// Passage: GET /v1/apps/{app_id}/currentuser/social/link_account → 201
async fn link_account(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Query(q): Query<CodeQuery>,
) -> Result<StatusCode, PassageError> {
    social::link(&s.passage, &app, &user, &q.code, &q.verifier).await?;
    Ok(StatusCode::CREATED)
}

/// Passage: GET /v1/apps/{app_id}/currentuser/social-connections
async fn connections(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
) -> Result<Json<SocialConnectionsResponse>, PassageError> {
    let social_connections = social::of_user(&s.passage, &app, &user).await?;
    Ok(Json(SocialConnectionsResponse { social_connections }))
}

#[derive(Debug, Deserialize)]
struct ConnectionPath {
    connection_type: String,
}

/// Passage: DELETE /v1/apps/{app_id}/currentuser/social-connections/{type} → 200
async fn unlink(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Path(p): Path<ConnectionPath>,
) -> Result<StatusCode, PassageError> {
    social::unlink(&s.passage, &app, &user, &p.connection_type).await?;
    Ok(StatusCode::OK)
}
