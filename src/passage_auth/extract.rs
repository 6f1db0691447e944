//! Request extractors shared by the Passage surfaces.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Request},
    http::{header, request::Parts, HeaderMap},
};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{apps::App, error::PassageError, session};
use crate::{app::AppState, error::Error, storage::UserRow};

/// A JSON body; malformed input answers `{"code": "invalid_request", ...}`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = PassageError;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, s).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::invalid("body", e.body_text())
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| Error::invalid("body", e.to_string()).into())
    }
}

/// The credential of `Authorization: Bearer <credential>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(credential.trim()).filter(|c| !c.is_empty())
}

/// The signed-in user of an Auth API request: `Authorization: Bearer <auth_token>` of the app
/// in the path. A deactivated user is refused.
#[derive(Debug)]
pub struct CurrentUser {
    pub app: Arc<App>,
    pub user: UserRow,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = PassageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, s)
            .await
            .map_err(|_| Error::NotFound)?;
        let app_id = params
            .into_iter()
            .find_map(|(k, v)| (k == "app_id").then_some(v))
            .ok_or(Error::NotFound)?;
        let app = s.app(&app_id).await?;
        let token = bearer(&parts.headers).ok_or(Error::Unauthenticated)?;
        let user_id = session::verify(s, &app, token).await?;
        let user = s
            .store
            .get_user(&app.id, &user_id)
            .await
            .map_err(|e| PassageError::from(e).not_found_as("user_not_found"))?;
        if user.status == "inactive" {
            return Err(Error::Inactive.into());
        }
        Ok(CurrentUser { app, user })
    }
}
