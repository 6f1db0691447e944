//! Request extractors shared by the Passage routers: malformed input (body, path, query)
//! answers in the Passage shape, and the app of the path is loaded once.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, RawPathParams, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

pub use crate::http::bearer;

use super::error::PassageError;
use crate::{error::Error, passage::App, state::AppState};

/// A JSON body; an empty body reads as `{}`, and any other body must say it is JSON (415).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = PassageError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let has_json = crate::http::is_json(req.headers());
        let bytes = Bytes::from_request(req, s)
            .await
            .map_err(crate::http::body_rejection)?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else if !has_json {
            return Err(Error::UnsupportedMediaType.into());
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| Error::invalid("body", e.to_string()).into())
    }
}

crate::http::rejecting_extractor!(Path, "path", PassageError);
crate::http::rejecting_extractor!(Query, "query", PassageError);

/// The app named by the path's `{app_id}`, loaded (from the per-node cache).
#[derive(Debug, Clone)]
pub struct PathApp(pub Arc<App>);

impl FromRequestParts<AppState> for PathApp {
    type Rejection = PassageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let id = app_id_param(parts, s).await?;
        Ok(PathApp(s.passage.app(&id).await?))
    }
}

/// The path's `{app_id}`, as given.
async fn app_id_param(parts: &mut Parts, s: &AppState) -> Result<String, Error> {
    let params = RawPathParams::from_request_parts(parts, s)
        .await
        .map_err(|e| Error::invalid("path", e.body_text()))?;
    params
        .iter()
        .find_map(|(k, v)| (k == "app_id").then(|| v.to_string()))
        .ok_or_else(|| Error::invalid("path", "no app id"))
}

/// An end user's auth token is a JWT; any other Bearer credential is meant as an app key.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.split('.').count() == 3
}
