//! The Manage API's credential: the app API key (`Authorization: Bearer`).

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    error::Error,
    passage::App,
    passage_http::{
        extract::{bearer, looks_like_jwt},
        throttle::VerifiedAppKey,
        PassageError,
    },
    state::AppState,
};

/// The app whose API key the request carries; the key must belong to the app in the path.
/// Another app's key, no key, or no such app: never data.
#[derive(Debug, Clone)]
pub struct AppKey(pub Arc<App>);

impl FromRequestParts<AppState> for AppKey {
    type Rejection = PassageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        app_key(parts, s)
            .await?
            .ok_or_else(|| Error::Unauthenticated.into())
    }
}

/// The app key when the request carries one, for routes the Auth and Manage contracts share:
/// with the key the Manage operation answers, without it the Auth one. A Bearer credential
/// that is neither this app's key nor an end user's token (a JWT) is refused, so a wrong key
/// never reaches the public operation.
#[derive(Debug, Clone)]
pub struct MaybeAppKey(pub Option<AppKey>);

impl FromRequestParts<AppState> for MaybeAppKey {
    type Rejection = PassageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let key = app_key(parts, s).await?;
        match bearer(&parts.headers) {
            Some(c) if key.is_none() && !looks_like_jwt(c) => Err(Error::Unauthenticated.into()),
            _ => Ok(MaybeAppKey(key)),
        }
    }
}

/// The app key the per-client throttle verified before routing (it also spent the client's
/// budget when the key was wrong); the key's own budget is spent here.
async fn app_key(parts: &mut Parts, s: &AppState) -> Result<Option<AppKey>, Error> {
    let Some(VerifiedAppKey(app)) = parts.extensions.get::<VerifiedAppKey>().cloned() else {
        return Ok(None);
    };
    // The key is the app's in the path: the throttle looked it up by that path.
    s.limits.request(&format!("app:{}", app.id)).await?;
    Ok(Some(AppKey(app)))
}
