//! Users as the Auth and Manage APIs show them, the bodies that create and change them, and
//! the Manage API's paginated list.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    domain::{iso_ms, UserStatus},
    passage::users::{UserFields, UserPage},
    storage::User,
};

use super::Device;

/// The Auth API's User (`GET users?identifier=`, `POST users`, the current user's parts).
#[derive(Debug, Serialize)]
pub struct UserObject {
    id: String,
    email: String,
    email_verified: bool,
    phone: String,
    phone_verified: bool,
    status: &'static str,
    user_metadata: Map<String, Value>,
    webauthn: bool,
    webauthn_types: Vec<String>,
}

impl From<&User> for UserObject {
    fn from(u: &User) -> UserObject {
        UserObject {
            id: u.id.clone(),
            email: u.email.clone().unwrap_or_default(),
            email_verified: u.email_verified,
            phone: u.phone.clone().unwrap_or_default(),
            phone_verified: u.phone_verified,
            status: u.status.as_str(),
            user_metadata: u.user_metadata.clone(),
            webauthn: u.passkeys > 0,
            webauthn_types: if u.passkeys > 0 {
                vec!["passkey".to_string()]
            } else {
                Vec::new()
            },
        }
    }
}

/// The hosted service's "never" for `last_login_at`.
pub(super) const NEVER: &str = "0001-01-01T00:00:00Z";

/// A time as the wire writes it, "never" as the hosted service wrote it.
pub fn iso_or_never(epoch_ms: Option<i64>) -> String {
    epoch_ms.map_or_else(|| NEVER.to_string(), iso_ms)
}

/// The Manage API's user (also the current user's profile): the Auth API's user and what
/// administrators see besides.
#[derive(Debug, Serialize)]
pub struct ManagedUser {
    #[serde(flatten)]
    user: UserObject,
    external_id: String,
    created_at: String,
    updated_at: String,
    last_login_at: String,
    login_count: i64,
    recent_events: Vec<Value>,
    social_connections: Map<String, Value>,
    webauthn_devices: Vec<Device>,
}

impl ManagedUser {
    /// The user with their passkeys.
    pub fn new(u: &User, devices: Vec<Device>) -> ManagedUser {
        ManagedUser {
            user: u.into(),
            external_id: u.external_id.clone(),
            created_at: iso_ms(u.created_at),
            updated_at: iso_ms(u.updated_at),
            last_login_at: iso_or_never(u.last_login_at),
            login_count: u.login_count,
            recent_events: Vec::new(),
            social_connections: Map::new(),
            webauthn_devices: devices,
        }
    }

    /// The user's identities at social login providers, by connection type.
    pub fn with_social_connections(mut self, connections: Map<String, Value>) -> ManagedUser {
        self.social_connections = connections;
        self
    }
}

/// `{"user": ...}`.
#[derive(Debug, Serialize)]
pub struct UserResponse<U> {
    pub user: U,
}

/// `{"user": ...}` of the Auth API's identifier check: `null` for an unknown identifier.
#[derive(Debug, Serialize)]
pub struct MaybeUserResponse {
    pub user: Option<UserObject>,
}

/// `PATCH currentuser/user-metadata`.
#[derive(Debug, Deserialize)]
pub struct MetadataRequest {
    pub user_metadata: Value,
}

/// `{"user_metadata": ...}`.
#[derive(Debug, Serialize)]
pub struct MetadataResponse {
    pub user_metadata: Map<String, Value>,
}

/// `{"devices": [...]}`: the user's passkeys.
#[derive(Debug, Default, Serialize)]
pub struct DevicesResponse {
    pub devices: Vec<Device>,
}

/// The Manage API's create- and update-user body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRequest {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub user_metadata: Option<Value>,
}

impl From<UserRequest> for UserFields {
    fn from(r: UserRequest) -> UserFields {
        UserFields {
            email: r.email,
            phone: r.phone,
            user_metadata: r.user_metadata,
        }
    }
}

/// The Auth API's create-user body (public sign-up).
#[derive(Debug, Deserialize)]
pub struct SignUpRequest {
    pub identifier: String,
    pub user_metadata: Option<Value>,
}

/// The paginated user list of the Manage API.
#[derive(Debug, Serialize)]
pub struct UserList {
    users: Vec<ManagedUser>,
    total_users: i64,
    page: i64,
    limit: i64,
    created_before: i64,
    #[serde(rename = "_links")]
    links: PageLinks,
}

#[derive(Debug, Serialize)]
struct PageLinks {
    first: Link,
    last: Link,
    next: Link,
    previous: Link,
    #[serde(rename = "self")]
    this: Link,
}

#[derive(Debug, Serialize)]
struct Link {
    href: String,
}

impl UserList {
    /// A page of users; `devices` holds the passkeys of the page's users.
    pub fn new(
        app_id: &str,
        page: UserPage,
        devices: &[(String, Device)],
        social: &[(String, Map<String, Value>)],
    ) -> UserList {
        let last = page.last_page();
        let status = page.status.map_or("", UserStatus::as_str);
        let link = |n: i64| {
            let mut href = format!(
                "/v1/apps/{app_id}/users?page={n}&limit={}&created_before={}",
                page.limit, page.created_before
            );
            for (name, value) in [
                ("identifier", page.identifier.as_str()),
                ("id", page.id.as_str()),
                ("status", status),
            ] {
                if !value.is_empty() {
                    let value: String =
                        url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
                    href.push_str(&format!("&{name}={value}"));
                }
            }
            Link { href }
        };
        let links = PageLinks {
            first: link(1),
            last: link(last),
            next: link((page.page + 1).min(last)),
            previous: link((page.page - 1).max(1)),
            this: link(page.page),
        };
        UserList {
            users: page
                .users
                .iter()
                .map(|u| {
                    let own = devices.iter().filter(|(owner, _)| *owner == u.id);
                    let connections = social
                        .iter()
                        .find(|(owner, _)| *owner == u.id)
                        .map(|(_, c)| c.clone())
                        .unwrap_or_default();
                    ManagedUser::new(u, own.map(|(_, d)| d.clone()).collect())
                        .with_social_connections(connections)
                })
                .collect(),
            total_users: page.total,
            page: page.page,
            limit: page.limit,
            created_before: page.created_before,
            links,
        }
    }
}

/// `{"social_connections": {type: ...}}`: a user's identities, or an app's providers.
#[derive(Debug, Serialize)]
pub struct SocialConnectionsResponse {
    pub social_connections: Map<String, Value>,
}
