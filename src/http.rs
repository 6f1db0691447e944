//! HTTP plumbing every surface shares: extractors whose rejections answer in the surface's own
//! error shape (never axum's plain-text bodies), what every error answer carries besides its
//! body, and the deadline on request bodies.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes, HttpBody},
    extract::Request,
    http::{header, HeaderMap, HeaderValue},
    middleware::Next,
    response::Response,
};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

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

/// The credential of `Authorization: Bearer <credential>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    Some(credential.trim()).filter(|c| !c.is_empty())
}

/// Whether the request says its body is JSON: `application/json` or any `+json` type.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "application/json" || v.ends_with("+json")
        })
        .unwrap_or(false)
}

/// What a body that could not be read answers: 413 when too large, 408 when it did not
/// arrive in time, 400 otherwise.
pub fn body_rejection(e: axum::extract::rejection::BytesRejection) -> Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if c.is::<BodyTimedOut>() {
            return Error::RequestTimeout;
        }
        cause = c.source();
    }
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::invalid("body", e.body_text())
    }
}

/// Middleware: a request's body must have arrived `timeout` after its headers, however slowly
/// it trickles in; reading it later fails, and the surface answers 408.
pub async fn body_deadline(timeout: Duration, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let req = req.map(|body| {
        Body::new(DeadlineBody {
            body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        })
    });
    next.run(req).await
}

/// A body that fails once its deadline has passed.
struct DeadlineBody {
    body: Body,
    deadline: Pin<Box<Sleep>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
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
