//! Magic links: a single-use link to the app's own page carrying a secret token, which the
//! page hands to `magic-link/activate`. Opening the link fetches nothing from Keyhaven, so
//! mail scanners that follow links cannot use it up; only the explicit activation does.

use super::{
    apps::App,
    session::{self, AuthResult},
    users::{self, Identifier},
};
use crate::{
    app::AppState,
    crypto,
    domain::now_ms,
    error::Error,
    passage_manage::users::or_identifier_taken,
    storage::{MagicLinkRow, Statement, Store, UserRow},
};

/// What a link does when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Logs in (and so proves the identifier it was sent to).
    Login,
    /// The Manage API's `verify_identifier`: proves the identifier, and logs in.
    VerifyIdentifier,
    /// Makes the identifier it was sent to the user's new email or phone, then logs in.
    ChangeIdentifier,
}

impl Kind {
    fn as_str(self, to: &Identifier) -> &'static str {
        match (self, to) {
            (Kind::Login, _) => "login",
            (Kind::VerifyIdentifier, _) => "verify_identifier",
            (Kind::ChangeIdentifier, Identifier::Email(_)) => "update_email",
            (Kind::ChangeIdentifier, Identifier::Phone(_)) => "update_phone",
        }
    }
}

/// A link to make.
pub struct NewLink<'a> {
    pub user: &'a UserRow,
    pub kind: Kind,
    pub to: Identifier,
    /// Path on the app's origin the link opens; the app's login URL when absent.
    pub path: Option<&'a str>,
    /// Where the session's `redirect_url` points; the app's redirect URL when absent.
    pub redirect_url: Option<&'a str>,
    pub ttl_seconds: i64,
    /// Deliver it by email or SMS; otherwise only returned (embeddable links).
    pub send: bool,
    pub language: Option<&'a str>,
}

/// A link made: its id (for polling), its secret token and the full URL.
pub struct IssuedLink {
    pub row: MagicLinkRow,
    pub token: String,
    pub url: String,
}

/// `login/magic-link`: a link for an existing, active user, sent by email or SMS. Returns the
/// link's id, which the asking device polls.
pub async fn login(
    s: &AppState,
    app: &App,
    identifier: &str,
    path: Option<&str>,
    language: Option<&str>,
) -> Result<String, Error> {
    let to = Identifier::parse(app, identifier)?;
    let user = s
        .store
        .find_user(&app.id, to.as_str())
        .await?
        .ok_or(Error::NotFound)?;
    if user.status == "inactive" {
        return Err(Error::Inactive);
    }
    send_login_link(s, app, &user, to, path, language).await
}

/// `register/magic-link`: signs the user up (as the app allows), then sends a link.
pub async fn register(
    s: &AppState,
    app: &App,
    identifier: &str,
    path: Option<&str>,
    language: Option<&str>,
) -> Result<String, Error> {
    let to = Identifier::parse(app, identifier)?;
    let user = users::sign_up(s, app, &to, None).await?;
    send_login_link(s, app, &user, to, path, language).await
}

async fn send_login_link(
    s: &AppState,
    app: &App,
    user: &UserRow,
    to: Identifier,
    path: Option<&str>,
    language: Option<&str>,
) -> Result<String, Error> {
    let new = NewLink {
        user,
        kind: Kind::Login,
        to,
        path,
        redirect_url: None,
        ttl_seconds: app.settings.magic_link_ttl,
        send: true,
        language,
    };
    Ok(issue(s, app, new).await?.row.id)
}

/// The query parameter the app's page reads the token from, as Passage's elements do.
const TOKEN_PARAM: &str = "psg_magic_link";

pub async fn issue(s: &AppState, app: &App, new: NewLink<'_>) -> Result<IssuedLink, Error> {
    let path = local_path("magic_link_path", new.path, &app.settings.login_url)?;
    let redirect_url = local_path("redirect_url", new.redirect_url, &app.settings.redirect_url)?;
    if new.send {
        s.throttle_recipient(new.to.as_str()).await?;
    }
    let now = now_ms();
    let token = crypto::random_token();
    let separator = if path.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{path}{separator}{TOKEN_PARAM}={token}",
        app.settings.auth_origin
    );
    let row = MagicLinkRow {
        id: crypto::random_id(),
        app_id: app.id.clone(),
        user_id: new.user.id.clone(),
        kind: new.kind.as_str(&new.to).to_string(),
        channel: new.to.channel().as_str().to_string(),
        identifier: new.to.as_str().to_string(),
        redirect_url,
        expires_at: now + new.ttl_seconds * 1000,
        activated_at: None,
        claimed_at: None,
        created_at: now,
    };
    let mut writes = vec![Store::insert_magic_link(&row, &crypto::sha256(&token))];
    let mut delivery = None;
    if new.send {
        let minutes = (new.ttl_seconds + 59) / 60;
        let (subject, action) = match new.kind {
            Kind::ChangeIdentifier => (
                format!("Confirm your new sign-in for {}", app.name),
                "confirm this address",
            ),
            _ => (format!("Sign in to {}", app.name), "sign in"),
        };
        let text = format!(
            "Open this link to {action}:\n{url}\n\nIt expires in {minutes} minutes and works once."
        );
        let language = new.language.unwrap_or(&app.settings.default_language);
        let (outbox, row) = new.to.message(s, subject, text, language, now)?;
        writes.push(outbox);
        delivery = Some(row);
    }
    s.store.write_all(writes).await?;
    if let Some(row) = delivery {
        s.handoff.push(row);
    }
    Ok(IssuedLink { row, token, url })
}

/// A path on the app's origin (`/login`, `/welcome?x=1`), or `default`. Anything that could
/// lead elsewhere (another host, a scheme, `//`) is refused.
fn local_path(field: &'static str, input: Option<&str>, default: &str) -> Result<String, Error> {
    let path = match input.map(str::trim) {
        Some(p) if !p.is_empty() => p,
        _ => return Ok(default.to_string()),
    };
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        && path.len() <= 2048;
    if !ok {
        return Err(Error::invalid(
            field,
            "must be a path on the app's origin, starting with `/`",
        ));
    }
    Ok(path.to_string())
}

/// `PATCH magic-link/activate`: uses the link once, applies what it carries, and starts a
/// session that returns to the link's redirect URL.
pub async fn activate(s: &AppState, app: &App, token: &str) -> Result<AuthResult, Error> {
    let now = now_ms();
    let link = s
        .store
        .activate_magic_link(&app.id, &crypto::sha256(token.trim()), now)
        .await?
        .ok_or_else(|| Error::Refused("the magic link is invalid, used or expired".into()))?;
    let user = s.store.get_user(&app.id, &link.user_id).await?;
    if user.status == "inactive" {
        return Err(Error::Inactive);
    }
    let new_identifier = link
        .kind
        .starts_with("update_")
        .then_some(link.identifier.as_str());
    let writes = vec![Store::record_login(
        &app.id,
        &user.id,
        &link.channel,
        new_identifier,
        now,
    )];
    session_for(s, app, &user, &link, writes)
        .await
        .map_err(or_identifier_taken)
}

/// `POST magic-link/status`: the device that asked for the link gets its own session once
/// the link has been activated (on any device), once, within the link's lifetime.
pub async fn status(s: &AppState, app: &App, id: &str) -> Result<AuthResult, Error> {
    let link = s.store.get_magic_link(&app.id, id).await?;
    let now = now_ms();
    let since = now - app.settings.magic_link_ttl * 1000;
    if !s.store.claim_magic_link(&link.id, since, now).await? {
        let reason = match (link.activated_at, link.claimed_at) {
            (None, _) if link.expires_at <= now => "the magic link expired",
            (None, _) => "the magic link has not been activated yet",
            (Some(_), Some(_)) => "the session of this magic link was handed out already",
            (Some(_), None) => "the magic link was activated too long ago",
        };
        return Err(Error::Refused(reason.into()));
    }
    let user = s.store.get_user(&app.id, &link.user_id).await?;
    if user.status == "inactive" {
        return Err(Error::Inactive);
    }
    session_for(s, app, &user, &link, Vec::new()).await
}

async fn session_for(
    s: &AppState,
    app: &App,
    user: &UserRow,
    link: &MagicLinkRow,
    mut writes: Vec<Statement>,
) -> Result<AuthResult, Error> {
    let (mut result, session) = session::new_session(s, app, &user.id).await?;
    writes.extend(session);
    if !writes.is_empty() {
        s.store.write_all(writes).await?;
    }
    result.redirect_url = link.redirect_url.clone();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_paths_stay_on_the_app_origin() {
        assert_eq!(local_path("p", None, "/login").unwrap(), "/login");
        assert_eq!(local_path("p", Some(" "), "/login").unwrap(), "/login");
        assert_eq!(
            local_path("p", Some("/welcome?x=1"), "/").unwrap(),
            "/welcome?x=1"
        );
        for bad in [
            "https://evil.test/",
            "//evil.test/x",
            "/\\evil.test",
            "evil",
            "/a b",
            "/a\r\nb",
        ] {
            assert!(local_path("p", Some(bad), "/").is_err(), "{bad}");
        }
    }
}
