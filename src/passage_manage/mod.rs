//! Passage Manage API v1 under `/v1/apps/{app_id}`, authenticated by the app's API key
//! (`Authorization: Bearer`): the app and its users.

mod extract;
mod magic_links;
pub mod users;
pub mod wire;

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{delete, get, patch, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use self::{
    extract::{AppKey, MaybeAppKey},
    users::UserRequest,
};
use crate::{
    app::AppState,
    domain::now_ms,
    error::Error,
    passage_auth::{self, error::PassageError, extract::Body, users::Identifier},
    storage::UserFilter,
};

type Reply = Result<Json<Value>, PassageError>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}", patch(update_app))
        .route("/apps/{app_id}/magic-links", post(create_magic_link))
        .route("/apps/{app_id}/users", get(get_users).post(post_users))
        .route(
            "/apps/{app_id}/users/{user_id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/activate",
            patch(activate_user),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/deactivate",
            patch(deactivate_user),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/tokens",
            delete(revoke_user_tokens),
        )
        .route("/apps/{app_id}/users/{user_id}/devices", get(list_devices))
        .route(
            "/apps/{app_id}/users/{user_id}/devices/{device_id}",
            delete(delete_device),
        )
}

fn user_error(e: Error) -> PassageError {
    PassageError::from(e).not_found_as("user_not_found")
}

/// Manage: PATCH /v1/apps/{app_id} — the App object's fields, flat; answers the updated app.
async fn update_app(State(s): State<AppState>, key: AppKey, Body(patch): Body<Value>) -> Reply {
    let app = passage_auth::apps::update(&s.store, &key.app_id, patch).await?;
    s.apps.remove(&key.app_id);
    passage_auth::app_response(&s, &app).await
}

/// Manage: POST /v1/apps/{app_id}/magic-links → 201 `{magic_link}` with its secret and URL.
async fn create_magic_link(
    State(s): State<AppState>,
    key: AppKey,
    Body(req): Body<magic_links::MagicLinkRequest>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = s.app(&key.app_id).await?;
    let link = magic_links::create(&s, &app, req)
        .await
        .map_err(user_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "magic_link": link }))))
}

/// POST /v1/apps/{app_id}/users → 201. With the app key: Manage create-user (`email`,
/// `phone`); without: Auth create-user (`identifier`, public sign-up).
async fn post_users(
    State(s): State<AppState>,
    MaybeAppKey(key): MaybeAppKey,
    Path(app_id): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), PassageError> {
    let app = s.app(&app_id).await?;
    let user = match key {
        Some(_) => {
            let req: UserRequest =
                serde_json::from_value(body).map_err(|e| Error::invalid("body", e.to_string()))?;
            wire::user(&users::create(&s, &app, req).await?)
        }
        None => {
            let identifier = body["identifier"]
                .as_str()
                .ok_or_else(|| Error::invalid("identifier", "is required"))?;
            let identifier = Identifier::parse(&app, identifier)?;
            let metadata = body.get("user_metadata").filter(|m| !m.is_null()).cloned();
            let user = passage_auth::users::sign_up(&s, &app, &identifier, metadata).await?;
            passage_auth::wire::user(&user)
        }
    };
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))))
}

/// GET /v1/apps/{app_id}/users. With the app key: the Manage list (beyond the contract);
/// without: Auth's identifier check, `{"user": null}` for an unknown identifier.
async fn get_users(
    State(s): State<AppState>,
    MaybeAppKey(key): MaybeAppKey,
    Path(app_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Reply {
    match key {
        Some(key) => list_users(&s, &key.app_id, q).await,
        None => {
            let identifier = q
                .identifier
                .as_deref()
                .ok_or_else(|| Error::invalid("identifier", "is required"))?;
            let app = s.app(&app_id).await?;
            let identifier = Identifier::parse(&app, identifier)?;
            let user = s.store.find_user(&app.id, identifier.as_str()).await?;
            Ok(Json(
                json!({"user": user.as_ref().map(passage_auth::wire::user)}),
            ))
        }
    }
}

/// Manage: GET /v1/apps/{app_id}/users/{user_id}
async fn get_user(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Reply {
    let user = s
        .store
        .get_user(&key.app_id, &user_id)
        .await
        .map_err(user_error)?;
    Ok(Json(json!({"user": wire::user(&user)})))
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}
async fn update_user(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
    Body(req): Body<UserRequest>,
) -> Reply {
    let user = users::update(&s, &key.app_id, &user_id, req)
        .await
        .map_err(user_error)?;
    Ok(Json(json!({"user": wire::user(&user)})))
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}
async fn delete_user(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode, PassageError> {
    s.store
        .delete_user(&key.app_id, &user_id)
        .await
        .map_err(user_error)?;
    Ok(StatusCode::OK)
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}/activate
async fn activate_user(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Reply {
    set_status(&s, &key.app_id, &user_id, "active").await
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}/deactivate
async fn deactivate_user(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Reply {
    set_status(&s, &key.app_id, &user_id, "inactive").await
}

async fn set_status(s: &AppState, app_id: &str, user_id: &str, status: &str) -> Reply {
    let user = s
        .store
        .set_user_status(app_id, user_id, status, now_ms())
        .await
        .map_err(user_error)?;
    Ok(Json(json!({"user": wire::user(&user)})))
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}/tokens — signs the user out everywhere.
async fn revoke_user_tokens(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode, PassageError> {
    s.store
        .get_user(&key.app_id, &user_id)
        .await
        .map_err(user_error)?;
    s.store
        .revoke_user_refresh_tokens(&key.app_id, &user_id, now_ms())
        .await?;
    Ok(StatusCode::OK)
}

/// Manage: GET /v1/apps/{app_id}/users/{user_id}/devices — the user's passkeys.
async fn list_devices(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id)): Path<(String, String)>,
) -> Reply {
    s.store
        .get_user(&key.app_id, &user_id)
        .await
        .map_err(user_error)?;
    // Passkeys are registered by the WebAuthn ceremonies, which come with their own issue.
    Ok(Json(json!({ "devices": [] })))
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}/devices/{device_id}
async fn delete_device(
    State(s): State<AppState>,
    key: AppKey,
    Path((_, user_id, _device_id)): Path<(String, String, String)>,
) -> Result<StatusCode, PassageError> {
    s.store
        .get_user(&key.app_id, &user_id)
        .await
        .map_err(user_error)?;
    Err(PassageError::from(Error::NotFound).not_found_as("device_not_found"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListQuery {
    identifier: Option<String>,
    id: String,
    status: String,
    page: Option<String>,
    limit: Option<String>,
    /// Epoch seconds; the first page's answer names it for the following pages.
    created_before: Option<String>,
    /// `created_at:ASC` or `created_at:DESC` (the default).
    order_by: String,
}

fn int_param(name: &'static str, value: Option<&str>, default: i64) -> Result<i64, Error> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::invalid(name, "expected an integer")),
    }
}

/// Manage (the hosted list-paginated-users): `?page=&limit=&created_before=&order_by=` with
/// filters `identifier`, `id`, `status`; answers `users`, `total_users` and `_links`.
async fn list_users(s: &AppState, app_id: &str, q: ListQuery) -> Reply {
    let identifier = match q.identifier.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => Identifier::detect(i)?.as_str().to_string(),
        _ => String::new(),
    };
    let page = int_param("page", q.page.as_deref(), 1)?.max(1);
    let limit = int_param("limit", q.limit.as_deref(), 20)?.clamp(1, 500);
    let created_before = int_param(
        "created_before",
        q.created_before.as_deref(),
        now_ms() / 1000 + 1,
    )?;
    let newest_first = match q.order_by.to_ascii_lowercase().as_str() {
        "" | "created_at:desc" => true,
        "created_at:asc" => false,
        _ => {
            return Err(
                Error::invalid("order_by", "expected created_at:ASC or created_at:DESC").into(),
            )
        }
    };
    let filter = UserFilter {
        created_before: created_before.saturating_mul(1000),
        identifier,
        id: q.id,
        status: q.status,
        newest_first,
    };
    let (rows, total) = s
        .store
        .page_users(app_id, &filter, limit, (page - 1).saturating_mul(limit))
        .await?;
    let last = ((total + limit - 1) / limit).max(1);
    let link = |n: i64| {
        let mut href = format!(
            "/v1/apps/{app_id}/users?page={n}&limit={limit}&created_before={created_before}"
        );
        for (name, value) in [
            ("identifier", &filter.identifier),
            ("id", &filter.id),
            ("status", &filter.status),
        ] {
            if !value.is_empty() {
                href.push_str(&format!("&{name}={}", urlencoding(value)));
            }
        }
        json!({ "href": href })
    };
    let users: Vec<Value> = rows.iter().map(wire::user).collect();
    Ok(Json(json!({
        "users": users,
        "total_users": total,
        "page": page,
        "limit": limit,
        "created_before": created_before,
        "_links": {
            "first": link(1),
            "last": link(last),
            "next": link((page + 1).min(last)),
            "previous": link((page - 1).max(1)),
            "self": link(page),
        },
    })))
}

fn urlencoding(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
