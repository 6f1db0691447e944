//! The Passage error shape `{"code": "...", "error": "..."}`, mapped once from the domain
//! error: the code follows from the error (a missing user is `user_not_found`).

use std::any::Any;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::json;

use crate::error::{Error, Resource};

/// Any failure on the Passage surfaces.
#[derive(Debug)]
pub struct PassageError(pub Error);

impl<E: Into<Error>> From<E> for PassageError {
    fn from(e: E) -> Self {
        PassageError(e.into())
    }
}

/// Status, Passage code (from the contract's code lists) and message for a domain error.
pub fn classify(e: &Error) -> (StatusCode, &'static str, String) {
    let message = e.to_string();
    let (status, code) = match e {
        Error::InvalidInput { .. } => (StatusCode::BAD_REQUEST, "invalid_request"),
        Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request"),
        Error::RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "invalid_request"),
        Error::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request"),
        // The contract lists no 409: a taken identifier is a bad request.
        Error::Conflict(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        Error::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "invalid_request"),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "invalid_access_token"),
        Error::WrongCode | Error::Expired | Error::Gone => {
            let message = "the code or link is invalid or expired".to_string();
            return (StatusCode::UNAUTHORIZED, "invalid_access_token", message);
        }
        Error::TooManyAttempts => (StatusCode::UNAUTHORIZED, "exceeded_attempts"),
        Error::MagicLinkRefused(_) => (StatusCode::UNAUTHORIZED, "invalid_magic_link"),
        Error::PasskeyRefused { discoverable, .. } => (
            StatusCode::UNAUTHORIZED,
            if *discoverable {
                "discoverable_login_failed"
            } else {
                "webauthn_login_failed"
            },
        ),
        Error::NotFound(resource) => (StatusCode::NOT_FOUND, not_found_code(*resource)),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, "operation_not_allowed"),
        Error::Inactive => (StatusCode::FORBIDDEN, "user_not_active"),
        Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Error::Internal(_) => {
            let message = "internal error".to_string();
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                message,
            );
        }
    };
    (status, code, message)
}

fn not_found_code(resource: Resource) -> &'static str {
    match resource {
        Resource::App => "app_not_found",
        Resource::User => "user_not_found",
        Resource::MagicLink => "magic_link_not_found",
        // The contract's 404 codes name no device: a user's device is found through the
        // user, and the message says which was missing.
        Resource::Device => "user_not_found",
        Resource::ApiKey => "api_key_not_found",
        Resource::SocialConnection => "social_connection_not_found",
        // No Passage route looks up a tyntec resource: of these only `Route` is reached.
        Resource::Route
        | Resource::Account
        | Resource::Application
        | Resource::Template
        | Resource::Otp => "route_not_found",
    }
}

impl IntoResponse for PassageError {
    fn into_response(self) -> Response {
        let (status, code, message) = classify(&self.0);
        let response = (status, Json(json!({"code": code, "error": message}))).into_response();
        crate::http::finish_error(response, &self.0)
    }
}

/// A panic in a Passage handler becomes a Passage-shaped 500, never a dropped connection.
pub fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    PassageError(Error::Internal(anyhow::anyhow!("handler panicked"))).into_response()
}

/// A path under `/v1` that no Passage route serves. An unknown route is not an unknown app.
pub async fn unknown_route() -> PassageError {
    PassageError(Error::NotFound(Resource::Route))
}

pub async fn wrong_method() -> PassageError {
    PassageError(Error::MethodNotAllowed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every error, as the Passage surfaces answer it: status, code from the contract's lists
    /// (the resource decides a 404's), the Passage shape, and `Retry-After` on a 429.
    #[tokio::test]
    async fn every_error_has_its_answer() {
        let expected = [
            (400, "invalid_request"),
            (401, "invalid_access_token"),
            (404, "route_not_found"),
            (404, "route_not_found"),
            (404, "api_key_not_found"),
            (404, "route_not_found"),
            (404, "route_not_found"),
            (404, "route_not_found"),
            (404, "app_not_found"),
            (404, "user_not_found"),
            (404, "magic_link_not_found"),
            (404, "user_not_found"),
            (404, "social_connection_not_found"),
            (400, "invalid_request"),
            (401, "invalid_access_token"),
            (401, "exceeded_attempts"),
            (401, "invalid_access_token"),
            (401, "invalid_access_token"),
            (429, "rate_limited"),
            (413, "invalid_request"),
            (408, "invalid_request"),
            (415, "invalid_request"),
            (405, "invalid_request"),
            (403, "operation_not_allowed"),
            (403, "user_not_active"),
            (401, "invalid_magic_link"),
            (401, "webauthn_login_failed"),
            (500, "internal_server_error"),
        ];
        let errors = crate::error::every_error();
        assert_eq!(errors.len(), expected.len());
        for (e, (status, code)) in errors.into_iter().zip(expected) {
            let what = e.to_string();
            let limited = matches!(e, Error::RateLimited { .. });
            let response = PassageError(e).into_response();
            assert_eq!(response.status().as_u16(), status, "{what}");
            let retry_after = response
                .headers()
                .get(axum::http::header::RETRY_AFTER)
                .cloned();
            assert_eq!(retry_after.is_some(), limited, "{what}");
            if limited {
                assert_eq!(retry_after.unwrap(), "2");
            }
            let body = axum::body::to_bytes(response.into_body(), 4096)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["code", "error"], "{what}");
            assert_eq!(body["code"], code, "{what}");
            assert!(!body.to_string().contains("password"), "{body}");
        }
    }

    /// A handler's panic answers a Passage-shaped 500 (the router's panic layer calls this).
    #[tokio::test]
    async fn panics_answer_in_passage_shape() {
        let response = panic_response(Box::new("boom"));
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal_server_error");
        assert_eq!(body["error"], "internal error");
    }
}
