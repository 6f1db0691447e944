//! The domain error shared by every surface; each surface maps it once to its contract's shape.

use std::time::Duration;

/// What went wrong, in domain terms. Handlers never build HTTP responses from anything else.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    #[error("missing or invalid credentials")]
    Unauthenticated,
    /// The resource does not exist (or is not this caller's): each contract names it.
    #[error("{0} not found")]
    NotFound(Resource),
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
    /// The request's body did not arrive in time.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The user exists but is deactivated.
    #[error("this user is deactivated")]
    Inactive,
    /// A magic link that is not usable now (unknown, used, expired, not yet activated), with
    /// the reason.
    #[error("{0}")]
    MagicLinkRefused(&'static str),
    /// A passkey login that failed its checks; `discoverable` when it started without an
    /// identifier.
    #[error("{reason}")]
    PasskeyRefused {
        discoverable: bool,
        reason: &'static str,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// A route: no handler for the path.
    Route,
    /// A tyntec account.
    Account,
    ApiKey,
    /// A tyntec 2FA application.
    Application,
    /// A language template of a 2FA application.
    Template,
    /// A tyntec OTP.
    Otp,
    /// A Passage app.
    App,
    User,
    MagicLink,
    /// A user's passkey.
    Device,
    /// An app's social login provider, or a user's identity at one.
    SocialConnection,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Route => "route",
            Resource::Account => "account",
            Resource::ApiKey => "API key",
            Resource::Application => "application",
            Resource::Template => "template",
            Resource::Otp => "OTP",
            Resource::App => "app",
            Resource::User => "user",
            Resource::MagicLink => "magic link",
            Resource::Device => "device",
            Resource::SocialConnection => "social connection",
        })
    }
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
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::Conflict("already exists".into())
            }
            _ => Error::Internal(e.into()),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                Error::Conflict("already exists".into())
            }
            _ => Error::Internal(e.into()),
        }
    }
}

/// One error of every variant, and a `NotFound` of every resource, in a fixed order: each
/// surface's mapping is tested against this list.
#[cfg(test)]
pub(crate) fn every_error() -> Vec<Error> {
    let errors = vec![
        Error::invalid("field", "reason"),
        Error::Unauthenticated,
        Error::NotFound(Resource::Route),
        Error::NotFound(Resource::Account),
        Error::NotFound(Resource::ApiKey),
        Error::NotFound(Resource::Application),
        Error::NotFound(Resource::Template),
        Error::NotFound(Resource::Otp),
        Error::NotFound(Resource::App),
        Error::NotFound(Resource::User),
        Error::NotFound(Resource::MagicLink),
        Error::NotFound(Resource::Device),
        Error::NotFound(Resource::SocialConnection),
        Error::Conflict("taken".into()),
        Error::WrongCode,
        Error::TooManyAttempts,
        Error::Expired,
        Error::Gone,
        Error::RateLimited {
            retry_after: Duration::from_millis(1500),
        },
        Error::PayloadTooLarge,
        Error::RequestTimeout,
        Error::UnsupportedMediaType,
        Error::MethodNotAllowed,
        Error::Forbidden("no".into()),
        Error::Inactive,
        Error::MagicLinkRefused("used"),
        Error::PasskeyRefused {
            discoverable: false,
            reason: "wrong origin",
        },
        Error::Internal(anyhow::anyhow!("database password leaked")),
    ];
    // A new variant or resource does not compile here until it joins the list above.
    let ordinal = |e: &Error| match e {
        Error::InvalidInput { .. } => 0,
        Error::Unauthenticated => 1,
        Error::NotFound(r) => match r {
            Resource::Route => 2,
            Resource::Account => 3,
            Resource::ApiKey => 4,
            Resource::Application => 5,
            Resource::Template => 6,
            Resource::Otp => 7,
            Resource::App => 8,
            Resource::User => 9,
            Resource::MagicLink => 10,
            Resource::Device => 11,
            Resource::SocialConnection => 12,
        },
        Error::Conflict(_) => 13,
        Error::WrongCode => 14,
        Error::TooManyAttempts => 15,
        Error::Expired => 16,
        Error::Gone => 17,
        Error::RateLimited { .. } => 18,
        Error::PayloadTooLarge => 19,
        Error::RequestTimeout => 20,
        Error::UnsupportedMediaType => 21,
        Error::MethodNotAllowed => 22,
        Error::Forbidden(_) => 23,
        Error::Inactive => 24,
        Error::MagicLinkRefused(_) => 25,
        Error::PasskeyRefused { .. } => 26,
        Error::Internal(_) => 27,
    };
    let ordinals: Vec<usize> = errors.iter().map(ordinal).collect();
    assert_eq!(ordinals, (0..errors.len()).collect::<Vec<_>>());
    errors
}
