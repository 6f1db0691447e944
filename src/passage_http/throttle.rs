//! The request throttle of the Passage surfaces for callers without a valid app key: per app
//! and client address (end users' browsers, and anyone guessing, whatever credential they
//! send). Requests with the app key are throttled per key by the Manage API's extractor.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    cors::app_id,
    error::PassageError,
    extract::{bearer, looks_like_jwt},
};
use crate::{
    client_address::ClientAddress,
    passage::{apps, App},
    state::AppState,
};

pub async fn per_client(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(app_id) = app_id(req.uri().path()).map(str::to_string) else {
        return next.run(req).await;
    };
    // A Bearer credential that is not an end user's token (a JWT) must be the app's key to
    // escape the client's budget: the key's own budget applies then (in `AppKey`).
    let key = bearer(req.headers()).filter(|c| !looks_like_jwt(c));
    if let Some(key) = key {
        if let Ok(Some(app)) = apps::by_key(&s.passage, &app_id, key).await {
            req.extensions_mut().insert(VerifiedAppKey(app));
            return next.run(req).await;
        }
    }
    if let Some(client) = req.extensions().get::<ClientAddress>() {
        let bucket = format!("passage:{app_id}:{}", client.bucket());
        if let Err(e) = s.limits.request(&bucket).await {
            return PassageError::from(e).into_response();
        }
    }
    next.run(req).await
}

/// The app whose API key the request carries, checked before routing.
#[derive(Debug, Clone)]
pub struct VerifiedAppKey(pub Arc<App>);
