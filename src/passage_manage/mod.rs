//! Passage Manage API v1 under `/v1/apps/{app_id}`, authenticated by the app's API key
//! (`Authorization: Bearer`): the app and its users. Each handler extracts, calls one service
//! of the Passage core and answers what it returns.

mod extract;

use axum::{
    extract::State,
    http::StatusCode,
    routing::{delete, get, patch, post, put},
    Json, Router,
};
use serde::Deserialize;

use self::extract::{AppKey, MaybeAppKey};
use crate::{
    domain::UserStatus,
    error::Error,
    passage::{
        app_keys,
        apps::{self, AppChanges},
        devices::{self, Revoker},
        magic_links, sessions,
        social::{self, connections::ConnectionSettings},
        users,
        wire::*,
        App, Passage,
    },
    passage_http::{
        extract::{Body, Path, PathApp, Query},
        PassageError,
    },
    state::AppState,
    storage::User,
};

type Reply<T> = Result<Json<T>, PassageError>;
type UserReply = Reply<UserResponse<ManagedUser>>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/apps/{app_id}", patch(update_app))
        .route("/apps/{app_id}/magic-links", post(create_magic_link))
        .route("/apps/{app_id}/api-keys", get(list_keys).post(create_key))
        .route(
            "/apps/{app_id}/social-connections/{connection_type}",
            put(set_social_connection).delete(delete_social_connection),
        )
        .route("/apps/{app_id}/api-keys/{key_id}", delete(revoke_key))
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

/// `{app_id}/users/{user_id}` paths.
#[derive(Debug, Deserialize)]
struct UserPath {
    user_id: String,
}

async fn user_reply(p: &Passage, app: &App, user: &User) -> UserReply {
    let user = devices::managed(p, app, user).await?;
    Ok(Json(UserResponse { user }))
}

/// Manage: PATCH /v1/apps/{app_id} — the App object's fields, flat; answers the updated app.
async fn update_app(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Body(changes): Body<AppChanges>,
) -> Reply<AppResponse> {
    let app = apps::update(&s.passage, &app.id, changes).await?;
    let app = apps::describe(&s.passage, &app).await?;
    Ok(Json(AppResponse { app }))
}

/// `POST api-keys`: the new key's name.
#[derive(Debug, Deserialize)]
struct NewKeyRequest {
    name: String,
}

/// Keyhaven: POST /v1/apps/{app_id}/api-keys → 201 `{api_key, secret}`; the secret is shown
/// only here.
async fn create_key(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Body(req): Body<NewKeyRequest>,
) -> Result<(StatusCode, Json<NewApiKeyResponse>), PassageError> {
    let (api_key, secret) = app_keys::create(&s.passage, &app, &req.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKeyResponse { api_key, secret }),
    ))
}

/// Keyhaven: GET /v1/apps/{app_id}/api-keys → `{api_keys}`, revoked ones included.
async fn list_keys(State(s): State<AppState>, AppKey(app): AppKey) -> Reply<ApiKeysResponse> {
    let api_keys = app_keys::list(&s.passage, &app).await?;
    Ok(Json(ApiKeysResponse { api_keys }))
}

#[derive(Debug, Deserialize)]
struct KeyPath {
    key_id: String,
}

/// Keyhaven: DELETE /v1/apps/{app_id}/api-keys/{key_id} — revokes the key at once.
async fn revoke_key(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<KeyPath>,
) -> Result<StatusCode, PassageError> {
    app_keys::revoke(&s.passage, &app, &p.key_id).await?;
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct ConnectionPath {
    connection_type: String,
}

/// Keyhaven: PUT /v1/apps/{app_id}/social-connections/{type} → 201 when new, else 200. The
/// answer is the App object's `social_connections` (never a secret).
async fn set_social_connection(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<ConnectionPath>,
    Body(settings): Body<ConnectionSettings>,
) -> Result<(StatusCode, Json<SocialConnectionsResponse>), PassageError> {
    let created =
        social::connections::set(&s.passage, &app.id, &p.connection_type, settings).await?;
    let social_connections = social::connections::describe(&s.passage, &app).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(SocialConnectionsResponse { social_connections }),
    ))
}

/// Keyhaven: DELETE /v1/apps/{app_id}/social-connections/{type} → 204
async fn delete_social_connection(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<ConnectionPath>,
) -> Result<StatusCode, PassageError> {
    social::connections::remove(&s.passage, &app.id, &p.connection_type).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Manage: POST /v1/apps/{app_id}/magic-links → 201 `{magic_link}` with its secret and URL.
async fn create_magic_link(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Body(req): Body<MagicLinkRequest>,
) -> Result<(StatusCode, Json<MagicLinkResponse<EmbeddableLinkObject>>), PassageError> {
    let link = magic_links::create_embeddable(&s.passage, &app, req.try_into()?).await?;
    let magic_link = link.into();
    Ok((StatusCode::CREATED, Json(MagicLinkResponse { magic_link })))
}

/// The answer of a route the Auth and Manage APIs share: the Manage shape with the app key,
/// the Auth shape without.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Shared<M, A> {
    Manage(M),
    Auth(A),
}

/// A user in the shape of the API that asked: the Manage API's or the Auth API's.
type EitherUser = Shared<ManagedUser, UserObject>;

/// POST /v1/apps/{app_id}/users → 201. With the app key: Manage create-user (`email`,
/// `phone`); without: Auth create-user (`identifier`, public sign-up).
async fn post_users(
    State(s): State<AppState>,
    MaybeAppKey(key): MaybeAppKey,
    PathApp(app): PathApp,
    Body(body): Body<serde_json::Value>,
) -> Result<(StatusCode, Json<UserResponse<EitherUser>>), PassageError> {
    let user = match key {
        Some(_) => {
            let req: UserRequest = from_json(body)?;
            let user = users::create(&s.passage, &app, req.into()).await?;
            Shared::Manage(ManagedUser::new(&user, Vec::new()))
        }
        None => {
            let req: SignUpRequest = from_json(body)?;
            let metadata = req.user_metadata;
            let user = users::register(&s.passage, &app, &req.identifier, metadata).await?;
            Shared::Auth((&user).into())
        }
    };
    Ok((StatusCode::CREATED, Json(UserResponse { user })))
}

fn from_json<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::invalid("body", e.to_string()))
}

/// `GET users`: the Manage list's paging and filters, or the Auth API's `identifier`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListParams {
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

/// GET /v1/apps/{app_id}/users. With the app key: the Manage list (the hosted service's
/// paginated users); without: Auth's identifier check, `{"user": null}` when unknown.
async fn get_users(
    State(s): State<AppState>,
    MaybeAppKey(key): MaybeAppKey,
    PathApp(app): PathApp,
    Query(q): Query<ListParams>,
) -> Reply<Shared<UserList, MaybeUserResponse>> {
    Ok(Json(match key {
        Some(_) => {
            let page = users::list(&s.passage, &app, q.try_into()?).await?;
            let devices = devices::of_users(&s.passage, &app, &page.users).await?;
            let users: Vec<&User> = page.users.iter().collect();
            let social = social::of_users(&s.passage, &app, &users).await?;
            Shared::Manage(UserList::new(&app.id, page, &devices, &social))
        }
        None => {
            let identifier = q
                .identifier
                .ok_or_else(|| Error::invalid("identifier", "is required"))?;
            let user = users::look_up(&s.passage, &app, &identifier).await?;
            let user = user.as_ref().map(UserObject::from);
            Shared::Auth(MaybeUserResponse { user })
        }
    }))
}

impl TryFrom<ListParams> for users::ListQuery {
    type Error = Error;

    fn try_from(q: ListParams) -> Result<users::ListQuery, Error> {
        let int = |name, value: Option<String>| match value.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(name, "expected an integer")),
        };
        let newest_first = match q.order_by.to_ascii_lowercase().as_str() {
            "" | "created_at:desc" => true,
            "created_at:asc" => false,
            _ => {
                let reason = "expected created_at:ASC or created_at:DESC";
                return Err(Error::invalid("order_by", reason));
            }
        };
        let status =
            match q.status.as_str() {
                "" => None,
                s => Some(UserStatus::parse(s).ok_or_else(|| {
                    Error::invalid("status", "expected active, inactive or pending")
                })?),
            };
        Ok(users::ListQuery {
            page: int("page", q.page)?.unwrap_or(1),
            limit: int("limit", q.limit)?.unwrap_or(20),
            created_before: int("created_before", q.created_before)?,
            newest_first,
            identifier: q.identifier,
            id: q.id,
            status,
        })
    }
}

/// Manage: GET /v1/apps/{app_id}/users/{user_id}
async fn get_user(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> UserReply {
    let user = users::get(&s.passage, &app, &p.user_id).await?;
    user_reply(&s.passage, &app, &user).await
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}
async fn update_user(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
    Body(req): Body<UserRequest>,
) -> UserReply {
    let user = users::update(&s.passage, &app, &p.user_id, req.into()).await?;
    user_reply(&s.passage, &app, &user).await
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}
async fn delete_user(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> Result<StatusCode, PassageError> {
    users::delete(&s.passage, &app, &p.user_id).await?;
    Ok(StatusCode::OK)
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}/activate
async fn activate_user(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> UserReply {
    let active = UserStatus::Active;
    let user = users::set_status(&s.passage, &app, &p.user_id, active).await?;
    user_reply(&s.passage, &app, &user).await
}

/// Manage: PATCH /v1/apps/{app_id}/users/{user_id}/deactivate
async fn deactivate_user(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> UserReply {
    let inactive = UserStatus::Inactive;
    let user = users::set_status(&s.passage, &app, &p.user_id, inactive).await?;
    user_reply(&s.passage, &app, &user).await
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}/tokens — signs the user out everywhere.
async fn revoke_user_tokens(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> Result<StatusCode, PassageError> {
    sessions::revoke_all(&s.passage, &app, &p.user_id).await?;
    Ok(StatusCode::OK)
}

/// Manage: GET /v1/apps/{app_id}/users/{user_id}/devices — the user's passkeys.
async fn list_devices(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<UserPath>,
) -> Reply<DevicesResponse> {
    let devices = devices::list(&s.passage, &app, &p.user_id).await?;
    Ok(Json(DevicesResponse { devices }))
}

/// `{app_id}/users/{user_id}/devices/{device_id}` paths.
#[derive(Debug, Deserialize)]
struct DevicePath {
    user_id: String,
    device_id: String,
}

/// Manage: DELETE /v1/apps/{app_id}/users/{user_id}/devices/{device_id}
async fn delete_device(
    State(s): State<AppState>,
    AppKey(app): AppKey,
    Path(p): Path<DevicePath>,
) -> Result<StatusCode, PassageError> {
    devices::delete(&s.passage, &app, &p.user_id, &p.device_id, Revoker::Admin).await?;
    Ok(StatusCode::OK)
}
