//! The Auth API's credential: an end user's auth token (`Authorization: Bearer`).

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    error::Error,
    passage::{sessions, users, App},
    passage_http::{
        extract::{bearer, PathApp},
        PassageError,
    },
    state::AppState,
    storage::User,
};

/// The signed-in user of the app in the path. A deactivated user is refused.
#[derive(Debug)]
pub struct CurrentUser {
    pub app: Arc<App>,
    pub user: User,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = PassageError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let PathApp(app) = PathApp::from_request_parts(parts, s).await?;
        let token = bearer(&parts.headers).ok_or(Error::Unauthenticated)?;
        let user = sessions::current_user(&s.passage, &app, token).await?;
        users::ensure_active(&user)?;
        Ok(CurrentUser { app, user })
    }
}
