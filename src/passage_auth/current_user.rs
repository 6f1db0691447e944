//! The signed-in user (`Authorization: Bearer <auth_token>`): profile, metadata, and changes
//! of email or phone, which take effect when a magic link sent to the new one is used.

use axum::{
    extract::State,
    routing::{get, patch},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{
    error::PassageError,
    extract::{Body, CurrentUser},
    magic_link::{self, Kind, NewLink},
    users::Identifier,
};
use crate::{
    app::AppState,
    domain::{now_ms, Email, PhoneNumber},
    error::Error,
    passage_manage::{
        users::{identifier_taken, metadata},
        wire,
    },
    storage::UserRow,
};

type Reply = Result<Json<Value>, PassageError>;

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
async fn profile(current: CurrentUser) -> Reply {
    Ok(Json(json!({"user": wire::user(&current.user)})))
}

fn metadata_of(user: &UserRow) -> Map<String, Value> {
    user.user_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default()
}

/// Passage: GET /v1/apps/{app_id}/currentuser/user-metadata
async fn get_metadata(current: CurrentUser) -> Reply {
    Ok(Json(
        json!({"user_metadata": Value::Object(metadata_of(&current.user))}),
    ))
}

#[derive(Debug, Deserialize)]
struct MetadataRequest {
    user_metadata: Value,
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/user-metadata — checked against the app's
/// schema (unknown fields and wrong types are refused) and merged over what is stored.
async fn update_metadata(
    State(s): State<AppState>,
    current: CurrentUser,
    Body(req): Body<MetadataRequest>,
) -> Reply {
    let CurrentUser { app, mut user } = current;
    let merged = metadata(
        &app.settings.user_metadata_schema,
        req.user_metadata,
        Some(metadata_of(&user)),
    )?;
    user.user_metadata = Some(Value::Object(merged).to_string());
    user.updated_at = now_ms();
    s.store.update_user(&user).await?;
    Ok(Json(json!({"user": wire::user(&user)})))
}

#[derive(Debug, Deserialize)]
struct ChangeRequest {
    new_email: Option<String>,
    new_phone: Option<String>,
    language: Option<String>,
    magic_link_path: Option<String>,
    redirect_url: Option<String>,
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/email → 200 `{magic_link: {id}}`
async fn change_email(
    State(s): State<AppState>,
    current: CurrentUser,
    Body(req): Body<ChangeRequest>,
) -> Reply {
    let email = req
        .new_email
        .as_deref()
        .ok_or_else(|| Error::invalid("new_email", "is required"))?;
    let to = Identifier::Email(Email::parse(email)?);
    change_identifier(&s, current, to, &req).await
}

/// Passage: PATCH /v1/apps/{app_id}/currentuser/phone → 200 `{magic_link: {id}}`
async fn change_phone(
    State(s): State<AppState>,
    current: CurrentUser,
    Body(req): Body<ChangeRequest>,
) -> Reply {
    let phone = req
        .new_phone
        .as_deref()
        .ok_or_else(|| Error::invalid("new_phone", "is required"))?;
    let to = Identifier::Phone(PhoneNumber::parse(phone, None)?);
    change_identifier(&s, current, to, &req).await
}

/// Sends a link to the new identifier; the user's email or phone changes when it is used.
async fn change_identifier(
    s: &AppState,
    current: CurrentUser,
    to: Identifier,
    req: &ChangeRequest,
) -> Reply {
    let CurrentUser { app, user } = current;
    let taken = s
        .store
        .find_user(&app.id, to.as_str())
        .await?
        .is_some_and(|other| other.id != user.id);
    if taken {
        return Err(identifier_taken().into());
    }
    let link = magic_link::issue(
        s,
        &app,
        NewLink {
            user: &user,
            kind: Kind::ChangeIdentifier,
            to,
            path: req.magic_link_path.as_deref(),
            redirect_url: req.redirect_url.as_deref(),
            ttl_seconds: app.settings.magic_link_ttl,
            send: true,
            language: req.language.as_deref(),
        },
    )
    .await?;
    Ok(Json(json!({"magic_link": {"id": link.row.id}})))
}

/// Passage: GET /v1/apps/{app_id}/currentuser/devices — the user's passkeys.
async fn devices(_current: CurrentUser) -> Reply {
    // Passkeys are registered by the WebAuthn ceremonies, which come with their own issue.
    Ok(Json(json!({"devices": []})))
}
