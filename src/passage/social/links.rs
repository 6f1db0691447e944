//! A user's identities at social login providers: linking one to the signed-in user, the
//! `social_connections` of user objects, and unlinking (never the user's last way in).

use serde_json::{json, Map, Value};

use super::{redeem, Passage, CODE};
use crate::{
    domain::{iso_ms, now_ms},
    error::{Error, Resource},
    passage::App,
    storage::{Store, Unit, User},
};

/// `currentuser/social/link_account`: links the identity behind the code to the signed-in
/// user.
pub async fn link(
    p: &Passage,
    app: &App,
    user: &User,
    code: &str,
    verifier: &str,
) -> Result<(), Error> {
    let (id, grant) = redeem(p, app, code, verifier).await?;
    let identity = &grant.identity;
    if let Some((existing, _)) = p
        .store
        .social_link(&app.id, &grant.connection_type, &identity.provider_id)
        .await?
    {
        let whose = if existing.user_id == user.id {
            "this user already"
        } else {
            "another user"
        };
        return Err(Error::Forbidden(format!(
            "this {} identity is linked to {whose}",
            grant.connection_type
        )));
    }
    let now = now_ms();
    let row = grant.link_to(app, &user.id, now);
    let end = Store::end_ceremony(&app.id, &id, CODE, now).into();
    match p
        .store
        .commit(Unit::chain(end, vec![Store::insert_social_link(&row)]))
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::invalid("code", "is unknown, used or expired")),
        Err(Error::Conflict(_)) => Err(Error::Forbidden(format!(
            "this user has a {} identity already; remove it first",
            grant.connection_type
        ))),
        Err(e) => Err(e),
    }
}

/// The user objects' `social_connections` of several users: `{type: {provider_id,
/// provider_identifier, created_at, last_login_at}}` by user id.
pub async fn of_users(
    p: &Passage,
    app: &App,
    users: &[&User],
) -> Result<Vec<(String, Map<String, Value>)>, Error> {
    let mut by_user: Vec<(String, Map<String, Value>)> = Vec::new();
    for link in p.store.social_links_of(&app.id, users).await? {
        let entry = json!({
            "provider_id": link.provider_id,
            "provider_identifier": link.provider_identifier,
            "created_at": iso_ms(link.created_at),
            "last_login_at": iso_ms(link.last_login_at),
        });
        match by_user.iter_mut().find(|(id, _)| *id == link.user_id) {
            Some((_, map)) => {
                map.insert(link.connection_type, entry);
            }
            None => {
                let map = Map::from_iter([(link.connection_type, entry)]);
                by_user.push((link.user_id, map));
            }
        }
    }
    Ok(by_user)
}

/// The signed-in user's `social_connections`.
pub async fn of_user(p: &Passage, app: &App, user: &User) -> Result<Map<String, Value>, Error> {
    Ok(of_users(p, app, &[user])
        .await?
        .pop()
        .map(|(_, map)| map)
        .unwrap_or_default())
}

/// `DELETE currentuser/social-connections/{type}`: never the user's last way to log in.
pub async fn unlink(
    p: &Passage,
    app: &App,
    user: &User,
    connection_type: &str,
) -> Result<(), Error> {
    let links = of_user(p, app, user).await?;
    if !links.contains_key(connection_type) {
        return Err(Error::NotFound(Resource::SocialConnection));
    }
    let other_way = user.passkeys > 0
        || (user.email.is_some() && user.email_verified)
        || (user.phone.is_some() && user.phone_verified)
        || links.len() > 1;
    if !other_way {
        return Err(Error::Forbidden(
            "this is the user's last way to log in; add a passkey or verify an email first".into(),
        ));
    }
    if p.store
        .delete_social_link(&app.id, &user.id, connection_type)
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound(Resource::SocialConnection))
    }
}
