//! A user's devices (passkeys). The WebAuthn ceremonies that register them come with the
//! passkeys surface; until then a user has none, and the answers say so for real users only.

use super::{users, App, Passage};
use crate::{
    error::{Error, Resource},
    storage::User,
};

/// A registered passkey, as the device lists show it.
pub type Device = serde_json::Value;

/// The devices of the user `user_id`.
pub async fn list(p: &Passage, app: &App, user_id: &str) -> Result<Vec<Device>, Error> {
    users::get(p, app, user_id).await?;
    Ok(Vec::new())
}

/// The devices of the signed-in user.
pub fn of(_user: &User) -> Vec<Device> {
    Vec::new()
}

/// Revokes the device `device_id` of the user `user_id`.
pub async fn delete(p: &Passage, app: &App, user_id: &str, _device_id: &str) -> Result<(), Error> {
    users::get(p, app, user_id).await?;
    Err(Error::NotFound(Resource::Device))
}
