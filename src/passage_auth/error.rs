//! The Passage error shape `{"code": "...", "error": "..."}`, mapped once from the domain
//! error.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::error::Error;

/// Any failure on the Passage surfaces.
#[derive(Debug)]
pub struct PassageError {
    pub error: Error,
    /// The code a status answers with where the resource decides it (`user_not_found`,
    /// `invalid_magic_link`, ...).
    codes: Vec<(StatusCode, &'static str)>,
}

impl<E: Into<Error>> From<E> for PassageError {
    fn from(e: E) -> Self {
        PassageError {
            error: e.into(),
            codes: Vec::new(),
        }
    }
}

impl PassageError {
    /// Answers `status` with `code` instead of the generic one.
    pub fn code_as(mut self, status: StatusCode, code: &'static str) -> Self {
        self.codes.push((status, code));
        self
    }

    /// Names what was not found, as the SDKs expect (`user_not_found`).
    pub fn not_found_as(self, code: &'static str) -> Self {
        self.code_as(StatusCode::NOT_FOUND, code)
    }
}

/// Status, Passage code (from the contract's code lists) and message for a domain error.
pub fn classify(e: &Error) -> (StatusCode, &'static str, String) {
    let status_code = |status, code| (status, code, e.to_string());
    match e {
        Error::InvalidInput { .. } | Error::PayloadTooLarge | Error::UnsupportedMediaType => {
            let status = match e {
                Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            };
            status_code(status, "invalid_request")
        }
        // The contract lists no 409: a taken identifier is a bad request.
        Error::Conflict(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
        Error::MethodNotAllowed => status_code(StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        Error::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            "invalid_access_token",
            "missing or invalid credentials".into(),
        ),
        Error::WrongCode | Error::Expired | Error::Gone => (
            StatusCode::UNAUTHORIZED,
            "invalid_access_token",
            "the code or link is invalid or expired".into(),
        ),
        Error::TooManyAttempts => (
            StatusCode::UNAUTHORIZED,
            "exceeded_attempts",
            "too many attempts".into(),
        ),
        // Overridden per resource by `not_found_as`.
        Error::NotFound => (StatusCode::NOT_FOUND, "app_not_found", "not found".into()),
        Error::Forbidden(m) => (StatusCode::FORBIDDEN, "operation_not_allowed", m.clone()),
        Error::Inactive => status_code(StatusCode::FORBIDDEN, "user_not_active"),
        Error::Refused(m) => (StatusCode::UNAUTHORIZED, "invalid_access_token", m.clone()),
        Error::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests".into(),
        ),
        Error::Internal(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "internal error".into(),
        ),
    }
}

impl IntoResponse for PassageError {
    fn into_response(self) -> Response {
        if let Error::Internal(e) = &self.error {
            tracing::error!(error = ?e, "internal error");
        }
        let (status, mut code, message) = classify(&self.error);
        if let Some((_, c)) = self.codes.iter().find(|(s, _)| *s == status) {
            code = c;
        }
        let mut response = (status, Json(json!({"code": code, "error": message}))).into_response();
        if let Error::RateLimited { retry_after } = self.error {
            let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        assert_eq!(classify(&Error::invalid("x", "y")).1, "invalid_request");
        assert_eq!(classify(&Error::Unauthenticated).0, 401);
        assert_eq!(classify(&Error::NotFound).0, 404);
        assert_eq!(
            classify(&Error::Internal(anyhow::anyhow!("db"))).2,
            "internal error"
        );
    }
}
