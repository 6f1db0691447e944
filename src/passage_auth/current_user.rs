//! The signed-in user (`Authorization: Bearer <auth_token>`): profile, metadata, and changes
//! of email or phone, which take effect when a magic link sent to the new one is used.

use axum::{
    extract::State,
    routing::{get, patch},
    Json, Router,
};

use super::{extract::CurrentUser, Reply};
use crate::{
    domain::{Email, PhoneNumber},
    error::Error,
    passage::{devices, magic_links, users, wire::*, Identifier},
    passage_http::extract::Body,
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
}

/// Passage: GET /v1/apps/{app_id}/currentuser
async fn profile(current: CurrentUser) -> Reply<UserResponse<ManagedUser>> {
    Ok(Json(UserResponse {
        user: (&current.user).into(),
    }))
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
    Ok(Json(UserResponse {
        user: (&user).into(),
    }))
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
async fn devices(current: CurrentUser) -> Reply<DevicesResponse> {
    let devices = devices::of(&current.user);
    Ok(Json(DevicesResponse { devices }))
}
