//! The request throttle of the Passage surfaces for callers without an app key: per app and
//! client address (end users' browsers, and anyone guessing). Requests with the app key are
//! throttled per key by the Manage API's extractor.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    cors::app_id,
    error::PassageError,
    extract::{bearer, looks_like_jwt},
};
use crate::state::AppState;

pub async fn per_client(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(app_id) = app_id(req.uri().path()) else {
        return next.run(req).await;
    };
    // An end user's token is a JWT; anything else is an app key for the Manage API.
    let app_key = bearer(req.headers()).is_some_and(|c| !looks_like_jwt(c));
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let (false, Some(ip)) = (app_key, client) {
        if let Err(e) = s.limits.request(&format!("passage:{app_id}:{ip}")).await {
            return PassageError::from(e).into_response();
        }
    }
    next.run(req).await
}
