//! Sessions: an auth token and a rotating refresh token per login.

use serde::Serialize;

use super::{signing, App, Passage};
use crate::{
    crypto,
    domain::{now_ms, UserStatus},
    error::Error,
    storage::{Filtered, RefreshTokenRow, Store, Unit, User, WithUserStatus},
};

/// The user an auth token of `app` was issued to; `Unauthenticated` for any token that is not
/// a valid one of this app.
pub async fn current_user(p: &Passage, app: &App, token: &str) -> Result<User, Error> {
    let user_id = signing::verify(p, app, token).await?;
    p.store.get_user(&app.id, &user_id).await
}

/// `auth_result` of an AuthResponse.
#[derive(Debug, Serialize)]
pub struct AuthResult {
    pub auth_token: String,
    pub redirect_url: String,
    pub refresh_token: String,
    /// Epoch seconds; 0 when refresh tokens are off.
    pub refresh_token_expiration: i64,
}

/// A new session for the user: an auth token and, unless the app turned them off, a refresh
/// token of a new family, with the write that stores it (for the caller to commit together
/// with what the login changes).
pub async fn new_session(
    p: &Passage,
    app: &App,
    user_id: &str,
) -> Result<(AuthResult, Option<Filtered>), Error> {
    let mut result = AuthResult {
        auth_token: signing::auth_token(p, app, user_id).await?,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token: String::new(),
        refresh_token_expiration: 0,
    };
    let mut write = None;
    if app.settings.refresh_enabled {
        let now = now_ms();
        let expires_at = now + app.settings.refresh_absolute_lifetime * 1000;
        let family = uuid::Uuid::new_v4().to_string();
        let (row, token) = refresh_token_row(app, user_id, &family, expires_at, now);
        write = Some(Store::insert_refresh_token(&row, &crypto::sha256(&token)));
        result.refresh_token = token;
        result.refresh_token_expiration = expires_at / 1000;
    }
    Ok((result, write))
}

/// A new refresh token of `family_id` and its row.
fn refresh_token_row(
    app: &App,
    user_id: &str,
    family_id: &str,
    expires_at: i64,
    now: i64,
) -> (RefreshTokenRow, String) {
    let token = crypto::random_token();
    let row = RefreshTokenRow {
        id: crypto::row_uuid(),
        app_id: app.id.clone(),
        user_id: user_id.to_string(),
        family_id: family_id.to_string(),
        created_at: now,
        expires_at,
        rotated_at: None,
        successor_sealed: None,
        revoked_at: None,
    };
    (row, token)
}

/// A new session of `user_id`, and the writes that go with it: the login counted on the user
/// (a pending user becomes active) and the session's refresh token.
pub async fn with_login(
    p: &Passage,
    app: &App,
    user_id: &str,
    now: i64,
) -> Result<(AuthResult, Vec<Filtered>), Error> {
    let (result, session) = new_session(p, app, user_id).await?;
    let login = Store::record_login(&app.id, user_id, None, None, now);
    Ok((result, std::iter::once(login).chain(session).collect()))
}

/// `POST tokens`: a fresh auth token and the successor of `presented`. The first refresh
/// rotates; a repeat within the grace window (parallel tabs) gets the same successor; a repeat
/// after it is treated as theft and revokes the whole family.
pub async fn refresh(p: &Passage, app: &App, presented: &str) -> Result<AuthResult, Error> {
    let now = now_ms();
    let digest = crypto::sha256(presented.trim());
    let WithUserStatus {
        row: current,
        user_status,
    } = p
        .store
        .refresh_token_by_hash(&app.id, &digest)
        .await?
        .ok_or(Error::Unauthenticated)?;
    // A token unused for the inactivity lifetime ends the session (its successors are fresh).
    let idle = current.rotated_at.is_none()
        && now - current.created_at > app.settings.refresh_inactivity_lifetime * 1000;
    if current.revoked_at.is_some()
        || current.expires_at <= now
        || idle
        || user_status != UserStatus::Active
    {
        return Err(Error::Unauthenticated);
    }
    let won = match current.rotated_at {
        None => rotate(p, app, &current, now).await?,
        Some(_) => None,
    };
    let successor = match won {
        Some(token) => token,
        // Rotated by an earlier request, or by one racing with this one (read it again).
        None if current.rotated_at.is_some() => within_grace(p, &current, now).await?,
        None => {
            let rotated = p
                .store
                .refresh_token_by_hash(&app.id, &digest)
                .await?
                .ok_or(Error::Unauthenticated)?;
            within_grace(p, &rotated.row, now).await?
        }
    };
    Ok(AuthResult {
        auth_token: signing::auth_token(p, app, &current.user_id).await?,
        redirect_url: app.settings.redirect_url.clone(),
        refresh_token: successor,
        refresh_token_expiration: current.expires_at / 1000,
    })
}

/// Claims the rotation and stores the successor in one unit; `None` when another request
/// rotated the token first.
async fn rotate(
    p: &Passage,
    app: &App,
    current: &RefreshTokenRow,
    now: i64,
) -> Result<Option<String>, Error> {
    // The family keeps its absolute lifetime.
    let (row, token) = refresh_token_row(
        app,
        &current.user_id,
        &current.family_id,
        current.expires_at,
        now,
    );
    let sealed = p.keys.seal(&current.id, &token)?;
    let won = p
        .store
        .commit(Unit::chain(
            Store::rotate_refresh_token(&current.id, &sealed, now),
            vec![Store::insert_refresh_token(&row, &crypto::sha256(&token))],
        ))
        .await?;
    Ok(won.then_some(token))
}

/// The successor of a token rotated less than the grace window ago; a later reuse revokes
/// the family.
async fn within_grace(p: &Passage, rotated: &RefreshTokenRow, now: i64) -> Result<String, Error> {
    match (
        rotated.rotated_at,
        &rotated.successor_sealed,
        rotated.revoked_at,
    ) {
        (Some(at), Some(sealed), None) if now - at <= p.refresh_grace_ms => {
            p.keys.open(&rotated.id, sealed)
        }
        _ => {
            let family = &rotated.family_id;
            tracing::warn!(family = %family, "rotated refresh token reused: family revoked");
            p.store.revoke_refresh_family(family, now).await?;
            Err(Error::Unauthenticated)
        }
    }
}

/// `DELETE tokens`: ends the session the token belongs to. An unknown or ended token is
/// already signed out (as RFC 7009 answers a revocation of an invalid token).
pub async fn revoke(p: &Passage, app: &App, presented: &str) -> Result<(), Error> {
    let digest = crypto::sha256(presented.trim());
    match p.store.refresh_token_by_hash(&app.id, &digest).await? {
        Some(token) => {
            p.store
                .revoke_refresh_family(&token.row.family_id, now_ms())
                .await
        }
        None => Ok(()),
    }
}

/// Ends every session of the user (the Manage API's sign-out).
pub async fn revoke_all(p: &Passage, app: &App, user_id: &str) -> Result<(), Error> {
    p.store.get_user(&app.id, user_id).await?;
    p.store
        .revoke_user_refresh_tokens(&app.id, user_id, now_ms())
        .await
}
