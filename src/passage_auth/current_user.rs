//! The signed-in user (`Authorization: Bearer <auth_token>`): profile, metadata, passkeys
//! (devices), and changes of email or phone, which take effect when a magic link sent to the
//! new one is used.

use axum::{
    extract::State,
    http::StatusCode,
    routing::{get, patch, post},
    Json, Router,
};
use serde::Deserialize;

use super::{created, extract::CurrentUser, Created, Reply};
use crate::{
    domain::{Email, PhoneNumber},
    error::Error,
    passage::{
        devices::{self, Revoker},
        magic_links, passkeys, users,
        wire::*,
        Identifier,
    },
    passage_http::{
        extract::{Body, Path},
        PassageError,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}/currentuser", get(profile))
        .route(
            "/apps/{app_id}/currentuser/user-metadata",
            get(get_metadata).patch(update_metadata),
        )
        .route("/apps/{app_id}/currentuser/email", patch(change_email))
        .route("/apps/{app_id}/currentuser/phone", patch(change_phone))
        .route("/apps/{app_id}/currentuser/devices", get(devices))
        .route(
            "/apps/{app_id}/currentuser/devices/start",
            post(start_adding_device),
        )
        .route(
            "/apps/{app_id}/currentuser/devices/finish",
            post(finish_adding_device),
        )
        .route(
            "/apps/{app_id}/currentuser/devices/{device_id}",
            patch(rename_device).delete(delete_device),
        )
}

/// Passage: GET /v1/apps/{app_id}/currentuser
async fn profile(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
) -> Reply<UserResponse<ManagedUser>> {
    let user = devices::managed(&s.passage, &app, &user).await?;
    Ok(Json(UserResponse { user }))
}

/// Passage: GET /v1/apps/{app_id}/currentuser/user-metadata
async fn get_metadata(current: CurrentUser) -> Reply<MetadataResponse> {
    Ok(Json(MetadataResponse {
        user_metadata: current.user.user_metadata,
    }))
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/user-metadata — checked against the app's
/// schema and merged over what is stored.
async fn update_metadata(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Body(req): Body<MetadataRequest>,
) -> Reply<UserResponse<ManagedUser>> {
    let user = users::update_metadata(&s.passage, &app, user, req.user_metadata).await?;
    let user = devices::managed(&s.passage, &app, &user).await?;
    Ok(Json(UserResponse { user }))
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/email → 200 `{magic_link: {id}}`
async fn change_email(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Body(req): Body<ChangeIdentifierRequest>,
) -> Reply<MagicLinkResponse<MagicLinkId>> {
    let email = req
        .new_email
        .as_deref()
        .ok_or_else(|| Error::invalid("new_email", "is required"))?;
    let to = Identifier::Email(Email::parse(email)?);
    let id = magic_links::change_identifier(&s.passage, &app, &user, to, &req.target()).await?;
    Ok(Json(MagicLinkResponse {
        magic_link: MagicLinkId { id },
    }))
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/phone → 200 `{magic_link: {id}}`
async fn change_phone(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Body(req): Body<ChangeIdentifierRequest>,
) -> Reply<MagicLinkResponse<MagicLinkId>> {
    let phone = req
        .new_phone
        .as_deref()
        .ok_or_else(|| Error::invalid("new_phone", "is required"))?;
    let to = Identifier::Phone(PhoneNumber::parse(phone, None)?);
    let id = magic_links::change_identifier(&s.passage, &app, &user, to, &req.target()).await?;
    Ok(Json(MagicLinkResponse {
        magic_link: MagicLinkId { id },
    }))
}

/// Passage: GET /v1/apps/{app_id}/currentuser/devices — the user's passkeys.
async fn devices(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
) -> Reply<DevicesResponse> {
    let devices = devices::list(&s.passage, &app, &user.id).await?;
    Ok(Json(DevicesResponse { devices }))
}

/// Passage: POST /v1/apps/{app_id}/currentuser/devices/start — a passkey for another device.
async fn start_adding_device(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Body(req): Body<AddDeviceRequest>,
) -> Reply<HandshakeResponse> {
    let attachment = req.authenticator_attachment.as_deref();
    let handshake = passkeys::start_adding(&s.passage, &app, &user, attachment).await?;
    let user = Some((&user).into());
    Ok(Json(HandshakeResponse { handshake, user }))
}

/// Passage: POST /v1/apps/{app_id}/currentuser/devices/finish → 201 `{device}`
async fn finish_adding_device(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Body(req): Body<FinishCeremonyRequest>,
) -> Created<DeviceResponse> {
    let FinishCeremonyRequest {
        handshake_id,
        handshake_response,
        user_id,
    } = req;
    let device = passkeys::finish_adding(
        &s.passage,
        &app,
        &user,
        &handshake_id,
        handshake_response,
        &user_id,
    )
    .await?;
    created(DeviceResponse { device })
}

/// `currentuser/devices/{device_id}` paths.
#[derive(Debug, Deserialize)]
struct DevicePath {
    device_id: String,
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/devices/{device_id} — renames a passkey.
async fn rename_device(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Path(p): Path<DevicePath>,
    Body(req): Body<RenameDeviceRequest>,
) -> Reply<DeviceResponse> {
    let name = &req.friendly_name;
    let device = devices::rename(&s.passage, &app, &user.id, &p.device_id, name).await?;
    Ok(Json(DeviceResponse { device }))
}

/// Passage: DELETE /v1/apps/{app_id}/currentuser/devices/{device_id} — revokes a passkey,
/// unless it is the user's last way to log in.
async fn delete_device(
    State(s): State<AppState>,
    CurrentUser { app, user }: CurrentUser,
    Path(p): Path<DevicePath>,
) -> Result<StatusCode, PassageError> {
    devices::delete(&s.passage, &app, &user.id, &p.device_id, Revoker::User).await?;
    Ok(StatusCode::OK)
}
