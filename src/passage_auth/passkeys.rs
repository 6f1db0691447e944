//! Passkey registration and login (`register/webauthn/*`, `login/webauthn/*`).

use axum::{extract::State, http::StatusCode, routing::post, Json, Router};

use super::{session, NoStore, Reply, Session};
use crate::{
    passage::{passkeys, wire::*},
    passage_http::{
        extract::{Body, PathApp},
        PassageError,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/apps/{app_id}/register/webauthn/start",
            post(start_registration),
        )
        .route(
            "/apps/{app_id}/register/webauthn/finish",
            post(finish_registration),
        )
        .route("/apps/{app_id}/login/webauthn/start", post(start_login))
        .route("/apps/{app_id}/login/webauthn/finish", post(finish_login))
}

/// Passage: POST /v1/apps/{app_id}/register/webauthn/start → `{handshake, user}`
async fn start_registration(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<RegisterPasskeyRequest>,
) -> Reply<HandshakeResponse> {
    let attachment = req.authenticator_attachment.as_deref();
    let (handshake, user) =
        passkeys::start_registration(&s.passage, &app, &req.identifier, attachment).await?;
    let user = Some((&user).into());
    Ok(Json(HandshakeResponse { handshake, user }))
}

/// Passage: POST /v1/apps/{app_id}/register/webauthn/finish → 201 AuthResponse
async fn finish_registration(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<FinishCeremonyRequest>,
) -> Result<(StatusCode, NoStore<Json<AuthResponse>>), PassageError> {
    let FinishCeremonyRequest {
        handshake_id,
        handshake_response,
        user_id,
    } = req;
    let auth_result = passkeys::finish_registration(
        &s.passage,
        &app,
        &handshake_id,
        handshake_response,
        &user_id,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        NoStore(Json(AuthResponse { auth_result })),
    ))
}

/// Passage: POST /v1/apps/{app_id}/login/webauthn/start → `{handshake, user}` (`user` when
/// an identifier was given)
async fn start_login(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<PasskeyLoginRequest>,
) -> Reply<HandshakeResponse> {
    let (handshake, user) = passkeys::start_login(&s.passage, &app, &req.identifier).await?;
    let user = user.as_ref().map(Into::into);
    Ok(Json(HandshakeResponse { handshake, user }))
}

/// Passage: POST /v1/apps/{app_id}/login/webauthn/finish → 200 AuthResponse
async fn finish_login(
    State(s): State<AppState>,
    PathApp(app): PathApp,
    Body(req): Body<FinishCeremonyRequest>,
) -> Session {
    let FinishCeremonyRequest {
        handshake_id,
        handshake_response,
        user_id,
    } = req;
    session(
        passkeys::finish_login(
            &s.passage,
            &app,
            &handshake_id,
            handshake_response,
            &user_id,
        )
        .await?,
    )
}
