//! The domain error shared by every surface; each surface maps it once to its contract's shape.

use std::time::Duration;

/// What went wrong, in domain terms. Handlers never build HTTP responses from anything else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A wrong one-time code while attempts remain.
    #[error("wrong code")]
    WrongCode,
    /// The failing check that used up the last attempt.
    #[error("too many attempts")]
    TooManyAttempts,
    /// The code expired before this check.
    #[error("expired")]
    Expired,
    /// The resource reached a final state earlier (verified, locked, expired, deleted).
    #[error("gone")]
    Gone,
    #[error("rate limited")]
    RateLimited { retry_after: Duration },
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The user exists but is deactivated.
    #[error("this user is deactivated")]
    Inactive,
    /// A credential (link, token) that is not usable now, with the reason.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict("already exists".into())
            }
            _ => Error::Internal(e.into()),
        }
    }
}
