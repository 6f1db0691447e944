//! Request extractors shared by the Passage surfaces.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
};
use serde::de::DeserializeOwned;

use super::error::PassageError;
use crate::{app::AppState, error::Error};

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
