//! The tyntec error shape `{"status", "message", "code", "timestamp"}`, mapped once from the
//! domain error.

use std::any::Any;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::{domain, error::Error};

/// Any failure on the tyntec surface.
#[derive(Debug)]
pub struct TyntecError(pub Error);

impl<E: Into<Error>> From<E> for TyntecError {
    fn from(e: E) -> Self {
        TyntecError(e.into())
    }
}

/// Status, machine code and message for a domain error.
pub fn classify(e: &Error) -> (StatusCode, &'static str, String) {
    match e {
        Error::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "invalid_parameter", e.to_string()),
        Error::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid API key".into(),
        ),
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", e.to_string()),
        // tyntec answers 1017 when an application name is taken (e.g. `default`).
        Error::Conflict(m) => (StatusCode::BAD_REQUEST, "1017", m.clone()),
        Error::WrongCode => (
            StatusCode::UNAUTHORIZED,
            "wrong_code",
            "the code is incorrect".into(),
        ),
        Error::TooManyAttempts => (
            StatusCode::FORBIDDEN,
            "too_many_attempts",
            "the code is incorrect and no attempts are left".into(),
        ),
        Error::Expired => (
            StatusCode::FORBIDDEN,
            "expired",
            "the OTP has expired".into(),
        ),
        Error::Gone => (
            StatusCode::GONE,
            "gone",
            "the OTP is verified, expired, locked or deleted".into(),
        ),
        Error::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests".into(),
        ),
        Error::PayloadTooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        Error::RequestTimeout => (
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            e.to_string(),
        ),
        Error::UnsupportedMediaType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            e.to_string(),
        ),
        Error::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            e.to_string(),
        ),
        Error::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
        Error::Inactive => (StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        Error::MagicLinkRefused(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m.to_string()),
        Error::PasskeyRefused { reason, .. } => {
            (StatusCode::UNAUTHORIZED, "unauthorized", reason.to_string())
        }
        Error::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error".into(),
        ),
    }
}

/// The JSON body every tyntec error carries.
pub fn body(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "status": status.as_u16(),
        "message": message,
        "code": code,
        "timestamp": domain::iso_ms(domain::now_ms()),
    });
    (status, Json(body)).into_response()
}

impl IntoResponse for TyntecError {
    fn into_response(self) -> Response {
        let (status, code, message) = classify(&self.0);
        crate::http::finish_error(body(status, code, &message), &self.0)
    }
}

/// A panic in a handler becomes a JSON 500, never a dropped connection.
pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Every error, as the tyntec surface answers it: status, code, and a body in the tyntec
    /// shape that never shows an internal detail.
    #[tokio::test]
    async fn every_error_has_its_answer() {
        let expected = [
            (400, "invalid_parameter"),
            (401, "unauthorized"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (404, "not_found"),
            (400, "1017"),
            (401, "wrong_code"),
            (403, "too_many_attempts"),
            (403, "expired"),
            (410, "gone"),
            (429, "rate_limited"),
            (413, "payload_too_large"),
            (408, "request_timeout"),
            (415, "unsupported_media_type"),
            (405, "method_not_allowed"),
            (403, "forbidden"),
            (403, "forbidden"),
            (401, "unauthorized"),
            (401, "unauthorized"),
            (500, "internal"),
        ];
        let errors = crate::error::every_error();
        assert_eq!(errors.len(), expected.len());
        for (e, (status, code)) in errors.into_iter().zip(expected) {
            let what = e.to_string();
            let response = TyntecError(e).into_response();
            assert_eq!(response.status().as_u16(), status, "{what}");
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["status"], status, "{what}");
            assert_eq!(body["code"], code, "{what}");
            assert!(body["timestamp"].is_string() && body["message"].is_string());
            assert!(!body.to_string().contains("password"), "{body}");
        }
    }

    #[test]
    fn rate_limited_sets_retry_after() {
        let r = TyntecError(Error::RateLimited {
            retry_after: Duration::from_millis(1500),
        })
        .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "2");
    }

    /// A handler's panic answers a tyntec-shaped 500 (the router's panic layer calls this).
    #[tokio::test]
    async fn panics_answer_in_tyntec_shape() {
        let response = panic_response(Box::new("boom"));
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (body["status"].as_u64(), body["code"].as_str()),
            (Some(500), Some("internal"))
        );
    }
}
