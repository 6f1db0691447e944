//! The hosted login page, `/login/{app_id}`: a server-rendered page per app where a person
//! registers or logs in with a passkey (with autofill), or falls back to an email or SMS
//! code or a magic link, and lands on the app's redirect URL with a session. It calls the
//! public Auth API like any client; its script and styles are compiled into the binary, so
//! nothing is fetched from elsewhere and no build step exists.

use std::sync::LazyLock;

use axum::{
    extract::{Path, RawQuery, State},
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

use crate::{crypto, error::Error, passage::App, state::AppState};

const SCRIPT: &str = include_str!("login.js");
const STYLE: &str = include_str!("login.css");
const PAGE: &str = include_str!("login.html");

/// The page names its assets with `?v=` and a digest of their text, so a browser may keep
/// them for good: a new build names new ones, and an old script never meets a new page.
static SCRIPT_VERSION: LazyLock<String> = LazyLock::new(|| version(SCRIPT));
static STYLE_VERSION: LazyLock<String> = LazyLock::new(|| version(STYLE));

fn version(asset: &str) -> String {
    hex::encode(&crypto::sha256(asset)[..6])
}

/// Only this server's own script, styles and API; no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/assets/login.js", get(script))
        .route("/login/assets/login.css", get(style))
        .route("/login/{app_id}", get(page))
}

/// GET /login/{app_id}
async fn page(State(s): State<AppState>, Path(app_id): Path<String>) -> Response {
    match s.passage.app(&app_id).await {
        Ok(app) => with_headers(Html(render(&app)).into_response(), "no-store"),
        Err(Error::NotFound(_)) => {
            let body = Html(PAGE_NOT_FOUND).into_response();
            with_headers((StatusCode::NOT_FOUND, body).into_response(), "no-store")
        }
        Err(e) => {
            tracing::error!(%app_id, "login page: {e}");
            let body = Html(PAGE_UNAVAILABLE).into_response();
            with_headers(
                (StatusCode::SERVICE_UNAVAILABLE, body).into_response(),
                "no-store",
            )
        }
    }
}

const PAGE_NOT_FOUND: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
    <title>Not found</title><h1>No such app</h1><p>This login page does not exist.</p></html>";
const PAGE_UNAVAILABLE: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\">\
    <title>Unavailable</title><h1>Try again shortly</h1><p>The login page is unavailable.</p></html>";

/// GET /login/assets/login.js
async fn script(RawQuery(q): RawQuery) -> Response {
    let current = q.as_deref() == Some(&format!("v={}", *SCRIPT_VERSION));
    asset(SCRIPT, "text/javascript; charset=utf-8", current)
}

/// GET /login/assets/login.css
async fn style(RawQuery(q): RawQuery) -> Response {
    let current = q.as_deref() == Some(&format!("v={}", *STYLE_VERSION));
    asset(STYLE, "text/css; charset=utf-8", current)
}

/// An asset asked for by its current version is kept for a year; by any other name, briefly.
fn asset(body: &'static str, content_type: &'static str, current: bool) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    with_headers(response, cache)
}

fn with_headers(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The page of `app`: its name, language and settings in the markup, escaped.
fn render(app: &App) -> String {
    let s = &app.settings;
    let language = s.default_language.split(['-', '_']).next().unwrap_or("en");
    let identifier = match s.allowed_identifier.as_str() {
        "phone" => "phone",
        "both" => "both",
        _ => "email",
    };
    fill(PAGE, |key| match key {
        "script_version" => SCRIPT_VERSION.clone(),
        "style_version" => STYLE_VERSION.clone(),
        "lang" => escape(language),
        "app_name" => escape(&app.name),
        "app_id" => escape(&app.id),
        "auth_origin" => escape(&s.auth_origin),
        "redirect_url" => escape(&s.redirect_url),
        "identifier" => identifier.to_string(),
        "public_signup" => s.public_signup.to_string(),
        _ => String::new(),
    })
}

/// Replaces each `{{key}}` of `template` by `value(key)` in one pass, so that a value which
/// itself reads `{{...}}` (an app named so) stays as it is.
fn fill(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        out.push_str(&value(&rest[open + 2..open + close]));
        rest = &rest[open + close + 2..];
    }
    out.push_str(rest);
    out
}

/// Text safe in HTML content and in quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape, fill};

    #[test]
    fn values_are_not_templates() {
        let page = fill("<h1>{{name}}</h1><p>{{id}}</p>{{", |key| match key {
            "name" => "{{id}}".into(),
            _ => "x".into(),
        });
        assert_eq!(page, "<h1>{{id}}</h1><p>x</p>{{");
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape(r#"<b a="1">Tom & 'Jerry'</b>"#),
            "&lt;b a=&quot;1&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }
}
