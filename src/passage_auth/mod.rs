//! Passage Auth API v1 under `/v1/apps/{app_id}`: the App object and its published keys,
//! passcode, magic-link, passkey and social logins, sessions, and the signed-in user. Each handler extracts,
//! calls one service of the Passage core and answers what it returns.

mod current_user;
mod extract;
mod passkeys;
mod social;

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};

use crate::{
    error::Error,
    passage::{apps, magic_links, passcodes, sessions, users::Entry, wire::*},
    passage_http::{
        extract::{Body, PathApp, Query},
        PassageError,
    },
    state::AppState,
};

type Reply<T> = Result<Json<T>, PassageError>;
type Created<T> = Result<(StatusCode, Json<T>), PassageError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}", get(get_app))
        .route("/apps/{app_id}/.well-known/jwks.json", get(jwks))
        .route(
            "/apps/{app_id}/.well-known/openid-configuration",
            get(openid_configuration),
        )
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
        .route(
            "/apps/{app_id}/tokens",
            post(refresh_tokens).delete(revoke_tokens),
        )
        .merge(passkeys::router())
        .merge(current_user::router())
        .merge(social::router())
}

fn created<T>(body: T) -> Created<T> {
    Ok((StatusCode::CREATED, Json(body)))
}

/// An answer that carries a session: no cache may keep it.
struct NoStore<T>(T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        let no_store = HeaderValue::from_static("no-store");
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, no_store);
        response
    }
}

type Session = Result<NoStore<Json<AuthResponse>>, PassageError>;

fn session(auth_result: sessions::AuthResult) -> Session {
    Ok(NoStore(Json(AuthResponse { auth_result })))
}

/// Passage: GET /v1/apps/{app_id} (Auth, public; and the Manage API's get-app).
async fn get_app(State(s): State<AppState>, PathApp(app): PathApp) -> Reply<AppResponse> {
    let app = apps::describe(&s.passage, &app).await?;
    Ok(Json(AppResponse { app }))
}

/// Passage: GET /v1/apps/{app_id}/.well-known/jwks.json
async fn jwks(State(s): State<AppState>, PathApp(app): PathApp) -> Reply<Jwks> {
    Ok(Json(apps::jwks(&s.passage, &app).await?))
}

/// Passage: GET /v1/apps/{app_id}/.well-known/openid-configuration
async fn openid_configuration(
    State(s): State<AppState>,
    PathApp(app): PathApp,
) -> Reply<OpenIdConfiguration> {
    Ok(Json(apps::openid_configuration(&s.passage, &app)))
}

/// Passage: POST /v1/apps/{app_id}/login/otp → 201 `{otp_id}`
async fn login_otp(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<IdentifierRequest>,
) -> Created<OtpResponse> {
    let otp_id = passcodes::start(&s.passage, &app, &req.identifier, Entry::Login).await?;
    created(OtpResponse { otp_id })
}

/// Passage: POST /v1/apps/{app_id}/register/otp → 201 `{otp_id}`
async fn register_otp(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<IdentifierRequest>,
) -> Created<OtpResponse> {
    let otp_id = passcodes::start(&s.passage, &app, &req.identifier, Entry::Register).await?;
    created(OtpResponse { otp_id })
}

/// Passage: POST /v1/apps/{app_id}/otp/activate → 200 AuthResponse
async fn activate_otp(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<ActivateOtpRequest>,
) -> Session {
    session(passcodes::activate(&s.passage, &app, &req.otp_id, &req.otp).await?)
}

/// Passage: POST /v1/apps/{app_id}/tokens → 201 AuthResponse
async fn refresh_tokens(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<RefreshRequest>,
) -> Result<(StatusCode, NoStore<Json<AuthResponse>>), PassageError> {
    let auth_result = sessions::refresh(&s.passage, &app, &req.refresh_token).await?;
    Ok((
        StatusCode::CREATED,
        NoStore(Json(AuthResponse { auth_result })),
    ))
}

/// Passage: DELETE /v1/apps/{app_id}/tokens?refresh_token=
async fn revoke_tokens(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Query(q): Query<RevokeQuery>,
) -> Result<StatusCode, PassageError> {
    let token = q
        .refresh_token
        .ok_or_else(|| Error::invalid("refresh_token", "is required"))?;
    sessions::revoke(&s.passage, &app, &token).await?;
    Ok(StatusCode::OK)
}

/// Passage: POST /v1/apps/{app_id}/login/magic-link → 200 `{magic_link: {id}}`
async fn login_magic_link(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<IdentifierRequest>,
) -> Reply<MagicLinkResponse<MagicLinkId>> {
    let id = magic_links::start(
        &s.passage,
        &app,
        &req.identifier,
        Entry::Login,
        &req.target(),
    )
    .await?;
    Ok(Json(MagicLinkResponse {
        magic_link: MagicLinkId { id },
    }))
}

/// Passage: POST /v1/apps/{app_id}/register/magic-link → 201 `{magic_link: {id}}`
async fn register_magic_link(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<IdentifierRequest>,
) -> Created<MagicLinkResponse<MagicLinkId>> {
    let id = magic_links::start(
        &s.passage,
        &app,
        &req.identifier,
        Entry::Register,
        &req.target(),
    )
    .await?;
    created(MagicLinkResponse {
        magic_link: MagicLinkId { id },
    })
}

/// Passage: PATCH /v1/apps/{app_id}/magic-link/activate → 200 AuthResponse
async fn activate_magic_link(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<ActivateMagicLinkRequest>,
) -> Session {
    session(magic_links::activate(&s.passage, &app, &req.magic_link).await?)
}

/// Passage: POST /v1/apps/{app_id}/magic-link/status → 200 AuthResponse once the link was
/// activated; 401 `invalid_magic_link` while it is not.
async fn magic_link_status(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<MagicLinkStatusRequest>,
) -> Session {
    session(magic_links::status(&s.passage, &app, &req.id).await?)
}
