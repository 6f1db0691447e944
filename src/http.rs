//! HTTP plumbing every surface shares: path and query extractors whose rejections answer in
//! the surface's own error shape (never axum's plain-text bodies), and what every error answer
//! carries besides its body.

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

/// Defines `Path<T>` for a surface whose error type is `$error` (which must convert from
/// [`crate::error::Error`]).
macro_rules! path_extractor {
    ($error:ty) => {
        /// Path parameters; malformed ones answer in this surface's error shape.
        #[derive(Debug)]
        pub struct Path<T>(pub T);

        impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
        where
            T: serde::de::DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = $error;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                s: &S,
            ) -> Result<Self, Self::Rejection> {
                axum::extract::Path::<T>::from_request_parts(parts, s)
                    .await
                    .map(|axum::extract::Path(v)| Path(v))
                    .map_err(|e| crate::error::Error::invalid("path", e.body_text()).into())
            }
        }
    };
}

/// Defines `Query<T>` for a surface whose error type is `$error`.
macro_rules! query_extractor {
    ($error:ty) => {
        /// Query parameters; malformed ones answer in this surface's error shape.
        #[derive(Debug)]
        pub struct Query<T>(pub T);

        impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
        where
            T: serde::de::DeserializeOwned + Send,
            S: Send + Sync,
        {
            type Rejection = $error;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                s: &S,
            ) -> Result<Self, Self::Rejection> {
                axum::extract::Query::<T>::from_request_parts(parts, s)
                    .await
                    .map(|axum::extract::Query(v)| Query(v))
                    .map_err(|e| crate::error::Error::invalid("query", e.body_text()).into())
            }
        }
    };
}

pub(crate) use {path_extractor, query_extractor};
