//! Embeddable magic links: made by the app's backend for a user (created when the email or
//! phone is new), returned with their secret and URL, and sent only when asked.

use serde::Deserialize;
use serde_json::{json, Value};

use super::users::{self, UserRequest};
use crate::{
    app::AppState,
    domain::{iso_ms, Email, PhoneNumber},
    error::Error,
    passage_auth::{
        apps::App,
        magic_link::{self, Kind, NewLink},
        users::Identifier,
    },
    storage::UserRow,
};

/// The contract types `send` and `ttl` as strings; clients send booleans and numbers too.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MagicLinkRequest {
    user_id: String,
    email: String,
    phone: String,
    /// `email` or `phone`: where it is sent and what it proves.
    channel: String,
    send: Value,
    /// Minutes.
    ttl: Value,
    /// `login` (default) or `verify_identifier`.
    #[serde(rename = "type")]
    kind: String,
    magic_link_path: Option<String>,
    redirect_url: Option<String>,
    language: Option<String>,
}

/// Longest lifetime of an embeddable link, in minutes (a week).
const MAX_TTL_MINUTES: i64 = 7 * 24 * 60;

pub async fn create(s: &AppState, app: &App, req: MagicLinkRequest) -> Result<Value, Error> {
    let send = match &req.send {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(v) if matches!(v.as_str(), "true" | "false" | "") => v == "true",
        _ => return Err(Error::invalid("send", "expected true or false")),
    };
    let ttl_minutes = match &req.ttl {
        Value::Null => (app.settings.magic_link_ttl + 59) / 60,
        Value::String(v) if v.is_empty() => (app.settings.magic_link_ttl + 59) / 60,
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(v) => v.trim().parse().unwrap_or(0),
        _ => 0,
    };
    if !(1..=MAX_TTL_MINUTES).contains(&ttl_minutes) {
        return Err(Error::invalid(
            "ttl",
            format!("expected 1 to {MAX_TTL_MINUTES} minutes"),
        ));
    }
    let kind = match req.kind.as_str() {
        "" | "login" => Kind::Login,
        "verify_identifier" => Kind::VerifyIdentifier,
        _ => {
            return Err(Error::invalid(
                "type",
                "expected login or verify_identifier",
            ))
        }
    };
    let user = user_for(s, app, &req).await?;
    let to = recipient(&req, &user)?;
    let link = magic_link::issue(
        s,
        app,
        NewLink {
            user: &user,
            kind,
            to,
            path: req.magic_link_path.as_deref(),
            redirect_url: req.redirect_url.as_deref(),
            ttl_seconds: ttl_minutes * 60,
            send,
            language: req.language.as_deref(),
        },
    )
    .await?;
    let row = &link.row;
    Ok(json!({
        "id": row.id,
        "app_id": row.app_id,
        "user_id": row.user_id,
        "identifier": row.identifier,
        "type": if kind == Kind::Login { "login" } else { "verify_identifier" },
        "secret": link.token,
        "url": link.url,
        "redirect_url": row.redirect_url,
        "ttl": ttl_minutes,
        "activated": false,
        "expires_at": iso_ms(row.expires_at),
    }))
}

/// The user named by id, or found (else created) by email or phone.
async fn user_for(s: &AppState, app: &App, req: &MagicLinkRequest) -> Result<UserRow, Error> {
    if !req.user_id.is_empty() {
        return s.store.get_user(&app.id, &req.user_id).await;
    }
    let identifier = if !req.email.is_empty() {
        Email::parse(&req.email)?.as_str().to_string()
    } else if !req.phone.is_empty() {
        PhoneNumber::parse(&req.phone, None)?.as_str().to_string()
    } else {
        return Err(Error::invalid(
            "user_id",
            "a user_id, email or phone is required",
        ));
    };
    match s.store.find_user(&app.id, &identifier).await? {
        Some(user) => Ok(user),
        None => {
            let request = UserRequest {
                email: (!req.email.is_empty()).then(|| identifier.clone()),
                phone: req.email.is_empty().then(|| identifier.clone()),
                user_metadata: None,
            };
            users::create(s, app, request).await
        }
    }
}

/// The identifier the link goes to (and proves): the channel's, else the one given, else
/// the user's email, else their phone.
fn recipient(req: &MagicLinkRequest, user: &UserRow) -> Result<Identifier, Error> {
    let email = || user.email.as_deref().map(Email::parse).transpose();
    let phone = || {
        user.phone
            .as_deref()
            .map(|p| PhoneNumber::parse(p, None))
            .transpose()
    };
    let use_email = match req.channel.as_str() {
        "email" => true,
        "phone" => false,
        "" => !req.email.is_empty() || (req.phone.is_empty() && user.email.is_some()),
        _ => return Err(Error::invalid("channel", "expected email or phone")),
    };
    let to = if use_email {
        email()?.map(Identifier::Email)
    } else {
        phone()?.map(Identifier::Phone)
    };
    to.ok_or_else(|| Error::invalid("channel", "the user has no identifier on this channel"))
}
