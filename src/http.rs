//! HTTP plumbing every surface shares: extractors whose rejections answer in the surface's own
//! error shape (never axum's plain-text bodies), and what every error answer carries besides
//! its body.

use axum::{
    http::{header, HeaderValue},
    response::Response,
};

use crate::error::Error;

/// `response` for `error`, with `Retry-After` (whole seconds, at least 1) when it is a rate
/// limit; internal errors are logged here, in the request's span, and never shown.
pub fn finish_error(mut response: Response, error: &Error) -> Response {
    match error {
        Error::Internal(e) => tracing::error!(error = ?e, "internal error"),
        Error::RateLimited { retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        _ => {}
    }
    response
}

/// What a body that could not be read answers: 413 when too large, 400 otherwise.
pub fn body_rejection(e: axum::extract::rejection::BytesRejection) -> Error {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::invalid("body", e.body_text())
    }
}

/// Defines `$name<T>`, axum's `$name` extractor for a surface whose error type is `$error`
/// (which must convert from [`crate::error::Error`]): malformed input answers in that
/// surface's shape, as an invalid `$field`.
macro_rules! rejecting_extractor {
    ($name:ident, $field:literal, $error:ty) => {
        /// Malformed input answers in this surface's error shape.
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T, S> axum::extract::FromRequestParts<S> for $name<T>
        where
            T: serde::de::DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = $error;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                s: &S,
            ) -> Result<Self, Self::Rejection> {
                axum::extract::$name::<T>::from_request_parts(parts, s)
                    .await
                    .map(|axum::extract::$name(v)| $name(v))
                    .map_err(|e| crate::error::Error::invalid($field, e.body_text()).into())
            }
        }
    };
}

pub(crate) use rejecting_extractor;
