//! Logins: passcodes, magic links (and embeddable ones), sessions and identifier changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    domain::{iso_ms, LinkKind},
    error::Error,
    passage::{
        magic_links::{EmbeddableLink, IssuedLink, LinkTarget, LinkUser},
        sessions::AuthResult,
    },
};

/// `{"otp_id": ...}`.
#[derive(Debug, Serialize)]
pub struct OtpResponse {
    pub otp_id: String,
}

/// `login/otp`, `register/otp` and the magic-link twins: whom to reach.
#[derive(Debug, Deserialize)]
pub struct IdentifierRequest {
    pub identifier: String,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub magic_link_path: Option<String>,
}

impl IdentifierRequest {
    pub fn target(&self) -> LinkTarget {
        LinkTarget {
            magic_link_path: self.magic_link_path.clone(),
            redirect_url: None,
            language: self.language.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ActivateOtpRequest {
    pub otp: String,
    pub otp_id: String,
}

#[derive(Debug, Deserialize)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
pub struct RevokeQuery {
    pub refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ActivateMagicLinkRequest {
    pub magic_link: String,
}

#[derive(Debug, Deserialize)]
pub struct MagicLinkStatusRequest {
    pub id: String,
}

/// `PATCH currentuser/email` and `currentuser/phone`.
#[derive(Debug, Deserialize)]
pub struct ChangeIdentifierRequest {
    pub new_email: Option<String>,
    pub new_phone: Option<String>,
    pub language: Option<String>,
    pub magic_link_path: Option<String>,
    pub redirect_url: Option<String>,
}

impl ChangeIdentifierRequest {
    pub fn target(&self) -> LinkTarget {
        LinkTarget {
            magic_link_path: self.magic_link_path.clone(),
            redirect_url: self.redirect_url.clone(),
            language: self.language.clone(),
        }
    }
}

/// `{"magic_link": ...}`.
#[derive(Debug, Serialize)]
pub struct MagicLinkResponse<L> {
    pub magic_link: L,
}

/// A magic link the asking device polls by id.
#[derive(Debug, Serialize)]
pub struct MagicLinkId {
    pub id: String,
}

/// `{"auth_result": ...}`.
#[derive(Debug, Serialize)]
pub struct AuthResponse {
    pub auth_result: AuthResult,
}

/// The Manage API's create-magic-link body. The contract types `send` and `ttl` as strings;
/// clients send booleans and numbers too.
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

impl TryFrom<MagicLinkRequest> for EmbeddableLink {
    type Error = Error;

    fn try_from(r: MagicLinkRequest) -> Result<EmbeddableLink, Error> {
        let send = match &r.send {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::String(v) if matches!(v.as_str(), "true" | "false" | "") => v == "true",
            _ => return Err(Error::invalid("send", "expected true or false")),
        };
        let ttl_minutes = match &r.ttl {
            Value::Null => None,
            Value::String(v) if v.is_empty() => None,
            Value::Number(n) => Some(n.as_i64().unwrap_or(0)),
            Value::String(v) => Some(v.trim().parse().unwrap_or(0)),
            _ => Some(0),
        };
        let kind = match r.kind.as_str() {
            "" | "login" => LinkKind::Login,
            "verify_identifier" => LinkKind::VerifyIdentifier,
            _ => {
                return Err(Error::invalid(
                    "type",
                    "expected login or verify_identifier",
                ))
            }
        };
        let by_email = match r.channel.as_str() {
            "email" => Some(true),
            "phone" => Some(false),
            "" if !r.email.is_empty() => Some(true),
            "" if !r.phone.is_empty() => Some(false),
            "" => None,
            _ => return Err(Error::invalid("channel", "expected email or phone")),
        };
        let user = if !r.user_id.is_empty() {
            LinkUser::Id(r.user_id)
        } else if !r.email.is_empty() {
            LinkUser::Email(r.email)
        } else if !r.phone.is_empty() {
            LinkUser::Phone(r.phone)
        } else {
            return Err(Error::invalid(
                "user_id",
                "a user_id, email or phone is required",
            ));
        };
        Ok(EmbeddableLink {
            user,
            by_email,
            kind,
            send,
            ttl_minutes,
            target: LinkTarget {
                magic_link_path: r.magic_link_path,
                redirect_url: r.redirect_url,
                language: r.language,
            },
        })
    }
}

/// The Manage API's embeddable magic link, with its secret and URL.
#[derive(Debug, Serialize)]
pub struct EmbeddableLinkObject {
    id: String,
    app_id: String,
    user_id: String,
    identifier: String,
    #[serde(rename = "type")]
    kind: &'static str,
    secret: String,
    url: String,
    redirect_url: String,
    /// Minutes.
    ttl: i64,
    activated: bool,
    expires_at: String,
}

impl From<IssuedLink> for EmbeddableLinkObject {
    fn from(link: IssuedLink) -> EmbeddableLinkObject {
        let row = link.row;
        EmbeddableLinkObject {
            id: row.id,
            app_id: row.app_id,
            user_id: row.user_id,
            identifier: row.identifier,
            kind: row.kind.as_str(),
            secret: link.token,
            url: link.url,
            redirect_url: row.redirect_url,
            ttl: link.ttl_minutes,
            activated: false,
            expires_at: iso_ms(row.expires_at),
        }
    }
}
