//! A user's devices (passkeys): listed, renamed and revoked. A user's last passkey is revoked
//! only while another way to log in remains (a verified email or phone), unless an
//! administrator revokes it.

use super::{users, wire::Device, wire::ManagedUser, App, Passage};
use crate::{domain::now_ms, error::Error, storage::User};

/// The devices of the user `user_id`.
pub async fn list(p: &Passage, app: &App, user_id: &str) -> Result<Vec<Device>, Error> {
    users::get(p, app, user_id).await?;
    of(p, app, user_id).await
}

async fn of(p: &Passage, app: &App, user_id: &str) -> Result<Vec<Device>, Error> {
    let rows = p.store.passkeys_of(&app.id, user_id).await?;
    Ok(rows.into_iter().map(Device::from).collect())
}

/// The user as the Manage API and the profile show them, with their passkeys.
pub async fn managed(p: &Passage, app: &App, user: &User) -> Result<ManagedUser, Error> {
    let devices = if user.passkeys > 0 {
        of(p, app, &user.id).await?
    } else {
        Vec::new()
    };
    let social = super::social::of_user(p, app, user).await?;
    Ok(ManagedUser::new(user, devices).with_social_connections(social))
}

/// The devices of several users (a page of the user list), with their owners.
pub async fn of_users(
    p: &Passage,
    app: &App,
    users: &[User],
) -> Result<Vec<(String, Device)>, Error> {
    let ids: Vec<String> = users
        .iter()
        .filter(|u| u.passkeys > 0)
        .map(|u| u.id.clone())
        .collect();
    let rows = p.store.passkeys_of_users(&app.id, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|k| (k.user_id.clone(), Device::from(k)))
        .collect())
}

/// Renames the device `device_id` of the user `user_id`.
pub async fn rename(
    p: &Passage,
    app: &App,
    user_id: &str,
    device_id: &str,
    friendly_name: &str,
) -> Result<Device, Error> {
    let name = friendly_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid(
            "friendly_name",
            "must be 1 to 100 characters",
        ));
    }
    let row = p
        .store
        .rename_passkey(&app.id, user_id, device_id, name, now_ms())
        .await?;
    Ok(row.into())
}

/// Who revokes a device: the user themselves keeps a way to log in; an administrator may
/// take the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoker {
    User,
    Admin,
}

/// Revokes the device `device_id` of the user `user_id`.
pub async fn delete(
    p: &Passage,
    app: &App,
    user_id: &str,
    device_id: &str,
    by: Revoker,
) -> Result<(), Error> {
    users::get(p, app, user_id).await?;
    let deleted = p
        .store
        .delete_passkey(&app.id, user_id, device_id, by == Revoker::Admin)
        .await?;
    if !deleted {
        return Err(Error::invalid(
            "device_id",
            "this is the user's last passkey and they have no verified email or phone to log in with",
        ));
    }
    Ok(())
}
