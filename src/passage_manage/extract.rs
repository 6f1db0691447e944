//! The Manage API's credential: the app API key (`Authorization: Bearer`).

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

use crate::{
    error::Error,
    passage::{apps, App},
    passage_http::{
        extract::{app_id_param, bearer, looks_like_jwt},
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

async fn app_key(parts: &mut Parts, s: &AppState) -> Result<Option<AppKey>, Error> {
    let app_id = app_id_param(parts, s).await?;
    let Some(presented) = bearer(&parts.headers) else {
        return Ok(None);
    };
    match apps::by_key(&s.passage, &app_id, presented).await? {
        Some(app) => {
            s.limits.request(&format!("app:{app_id}")).await?;
            Ok(Some(AppKey(app)))
        }
        None => {
            // Wrong keys count against the client's address: guessing is throttled.
            if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
                let bucket = format!("passage:{app_id}:{}", addr.ip());
                s.limits.request(&bucket).await?;
            }
            Ok(None)
        }
    }
}
