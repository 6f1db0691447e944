//! CORS for the Passage surfaces: the app's `auth_origin` may call them from a browser. The
//! headers go on every answer (errors included), and preflights answer 204.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::state::AppState;

const ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE";
const ALLOW_HEADERS: &str = "Content-Type, Passage-Version, Authorization";

pub async fn cors(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(app_id) = app_id(req.uri().path()).map(str::to_string) else {
        return next.run(req).await;
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = match &origin {
        Some(origin) => allows(&s, &app_id, origin).await,
        None => false,
    };
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    response
}

/// `{app_id}` of `/v1/apps/{app_id}/...`.
pub fn app_id(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/apps/")?
        .split('/')
        .next()
        .filter(|id| !id.is_empty())
}

async fn allows(s: &AppState, app_id: &str, origin: &HeaderValue) -> bool {
    s.passage
        .app(app_id)
        .await
        .is_ok_and(|app| origin.as_bytes() == app.settings.auth_origin.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_from_paths() {
        assert_eq!(app_id("/v1/apps/abc/users"), Some("abc"));
        assert_eq!(app_id("/v1/apps/abc"), Some("abc"));
        assert_eq!(app_id("/v1/apps/"), None);
        assert_eq!(app_id("/2fa/v1/otp"), None);
    }
}
