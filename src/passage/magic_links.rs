//! Magic links: a single-use link to the app's own page carrying a secret token, which the
//! page hands to `magic-link/activate`. Opening the link fetches nothing from Keyhaven, so
//! mail scanners that follow links cannot use it up; only the explicit activation does.

use super::{
    sessions::{self, AuthResult},
    users::{self, identifier_taken, Entry, Identifier},
    App, Passage,
};
use crate::{
    crypto,
    domain::{now_ms, Email, LinkKind, LocalPath, PhoneNumber, TOKEN_PARAM},
    error::Error,
    storage::{MagicLinkRow, Store, Unit, User},
};

/// Where a link opens and where its session returns, as the caller asks (the app's login and
/// redirect URLs otherwise).
#[derive(Debug, Default, Clone)]
pub struct LinkTarget {
    /// Path on the app's origin the link opens.
    pub magic_link_path: Option<String>,
    /// Where the session's `redirect_url` points.
    pub redirect_url: Option<String>,
    pub language: Option<String>,
}

/// A link to make.
struct NewLink<'a> {
    user: &'a User,
    kind: LinkKind,
    to: Identifier,
    target: &'a LinkTarget,
    ttl_seconds: i64,
    /// Deliver it by email or SMS; otherwise only returned (embeddable links).
    send: bool,
}

/// A link made: its row (with the id the asking device polls), its secret token and the URL.
pub struct IssuedLink {
    pub row: MagicLinkRow,
    pub token: String,
    pub url: String,
    pub ttl_minutes: i64,
}

/// `login/magic-link` and `register/magic-link`: sends a link to the identifier of an
/// existing, active user, or of a new one. Returns the link's id, which the asking device
/// polls.
pub async fn start(
    p: &Passage,
    app: &App,
    identifier: &str,
    entry: Entry,
    target: &LinkTarget,
) -> Result<String, Error> {
    let (user, to) = users::entrant(p, app, identifier, entry).await?;
    let new = NewLink {
        user: &user,
        kind: LinkKind::Login,
        to,
        target,
        ttl_seconds: app.settings.magic_link_ttl,
        send: true,
    };
    Ok(issue(p, app, new).await?.row.id)
}

/// `PATCH currentuser/email` and `currentuser/phone`: sends a link to the new identifier; the
/// user's email or phone changes when it is used. Refused while another user holds it (checked
/// again, atomically, when the link is stored and when it is used).
pub async fn change_identifier(
    p: &Passage,
    app: &App,
    user: &User,
    to: Identifier,
    target: &LinkTarget,
) -> Result<String, Error> {
    let kind = match to {
        Identifier::Email(_) => LinkKind::UpdateEmail,
        Identifier::Phone(_) => LinkKind::UpdatePhone,
    };
    let new = NewLink {
        user,
        kind,
        to,
        target,
        ttl_seconds: app.settings.magic_link_ttl,
        send: true,
    };
    Ok(issue(p, app, new).await?.row.id)
}

/// Whom an embeddable link is for: a user by id, or by email or phone (created when new).
#[derive(Debug)]
pub enum LinkUser {
    Id(String),
    Email(String),
    Phone(String),
}

/// The Manage API's embeddable magic link.
#[derive(Debug)]
pub struct EmbeddableLink {
    pub user: LinkUser,
    /// Sent to (and proving) the user's email (`Some(true)`) or phone (`Some(false)`); by
    /// default the identifier given, else the email, else the phone.
    pub by_email: Option<bool>,
    pub kind: LinkKind,
    pub send: bool,
    pub ttl_minutes: Option<i64>,
    pub target: LinkTarget,
}

/// Longest lifetime of an embeddable link, in minutes (a week).
const MAX_TTL_MINUTES: i64 = 7 * 24 * 60;

/// `POST magic-links` (Manage): a link returned with its secret and URL, sent only when asked.
pub async fn create_embeddable(
    p: &Passage,
    app: &App,
    req: EmbeddableLink,
) -> Result<IssuedLink, Error> {
    let ttl_minutes = req
        .ttl_minutes
        .unwrap_or((app.settings.magic_link_ttl + 59) / 60);
    if !(1..=MAX_TTL_MINUTES).contains(&ttl_minutes) {
        return Err(Error::invalid(
            "ttl",
            format!("expected 1 to {MAX_TTL_MINUTES} minutes"),
        ));
    }
    let user = link_user(p, app, &req.user).await?;
    let by_email = req.by_email.unwrap_or(match &req.user {
        LinkUser::Email(_) => true,
        LinkUser::Phone(_) => false,
        LinkUser::Id(_) => user.email.is_some(),
    });
    let to = recipient(&user, by_email)?;
    let new = NewLink {
        user: &user,
        kind: req.kind,
        to,
        target: &req.target,
        ttl_seconds: ttl_minutes * 60,
        send: req.send,
    };
    issue(p, app, new).await
}

/// The user named by id, or found (else created) by email or phone.
async fn link_user(p: &Passage, app: &App, user: &LinkUser) -> Result<User, Error> {
    let (fields, identifier) = match user {
        LinkUser::Id(id) => return users::get(p, app, id).await,
        LinkUser::Email(e) => {
            let email = Email::parse(e)?;
            let fields = users::UserFields {
                email: Some(email.as_str().to_string()),
                ..Default::default()
            };
            (fields, Identifier::Email(email))
        }
        LinkUser::Phone(ph) => {
            let phone = PhoneNumber::parse(ph, None)?;
            let fields = users::UserFields {
                phone: Some(phone.as_str().to_string()),
                ..Default::default()
            };
            (fields, Identifier::Phone(phone))
        }
    };
    match users::find(p, app, &identifier).await? {
        Some(user) => Ok(user),
        None => users::create(p, app, fields).await,
    }
}

/// The user's email or phone, which the link goes to (and proves).
fn recipient(user: &User, by_email: bool) -> Result<Identifier, Error> {
    let to = if by_email {
        user.email
            .as_deref()
            .map(Email::parse)
            .transpose()?
            .map(Identifier::Email)
    } else {
        let phone = user.phone.as_deref().map(|p| PhoneNumber::parse(p, None));
        phone.transpose()?.map(Identifier::Phone)
    };
    to.ok_or_else(|| Error::invalid("channel", "the user has no identifier on this channel"))
}

async fn issue(p: &Passage, app: &App, new: NewLink<'_>) -> Result<IssuedLink, Error> {
    let target = new.target;
    let path = match target
        .magic_link_path
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        Some(p) => LocalPath::for_link("magic_link_path", p)?,
        None => LocalPath::for_link("login_url", &app.settings.login_url)?,
    };
    let redirect_url = match target
        .redirect_url
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        Some(p) => LocalPath::parse("redirect_url", p)?.as_str().to_string(),
        None => app.settings.redirect_url.clone(),
    };
    if new.send {
        new.to.may_receive(p, app).await?;
    }
    let now = now_ms();
    let token = crypto::random_token();
    let url = format!(
        "{}{}?{TOKEN_PARAM}={token}",
        app.settings.auth_origin,
        path.as_str()
    );
    let row = MagicLinkRow {
        id: crypto::random_id(),
        app_id: app.id.clone(),
        user_id: new.user.id.clone(),
        kind: new.kind,
        channel: new.to.channel(),
        identifier: new.to.as_str().to_string(),
        redirect_url,
        expires_at: now + new.ttl_seconds * 1000,
        activated_at: None,
        claimed_at: None,
        created_at: now,
    };
    let minutes = (new.ttl_seconds + 59) / 60;
    let message = new.send.then(|| {
        let (subject, action) = if new.kind.changes_identifier() {
            (
                format!("Confirm your new sign-in for {}", app.name),
                "confirm this address",
            )
        } else {
            (format!("Sign in to {}", app.name), "sign in")
        };
        let text = format!(
            "Open this link to {action}:\n{url}\n\nIt expires in {minutes} minutes and works once."
        );
        let language = new.target.language.as_deref();
        new.to.message(
            subject,
            text,
            language.unwrap_or(&app.settings.default_language),
        )
    });
    // The link is stored only while its new identifier is free (see `insert_magic_link`).
    let insert = Store::insert_magic_link(&row, &crypto::sha256(&token));
    let unit = Unit::chain(insert.into(), Vec::new());
    if !p.outbox.commit(unit, message).await? {
        return Err(identifier_taken());
    }
    Ok(IssuedLink {
        row,
        token,
        url,
        ttl_minutes: minutes,
    })
}

/// `PATCH magic-link/activate`: uses the link once, applies what it carries, and starts a
/// session that returns to the link's redirect URL.
pub async fn activate(p: &Passage, app: &App, token: &str) -> Result<AuthResult, Error> {
    let now = now_ms();
    let link = p
        .store
        .activate_magic_link(&app.id, &crypto::sha256(token.trim()), now)
        .await?
        .ok_or(Error::MagicLinkRefused(
            "the magic link is invalid, used or expired",
        ))?;
    let user = users::get(p, app, &link.user_id).await?;
    users::ensure_active(&user)?;
    let new_identifier = link
        .kind
        .changes_identifier()
        .then_some(link.identifier.as_str());
    let login = Store::record_login(&app.id, &user.id, Some(link.channel), new_identifier, now);
    session_for(p, app, &user, &link, Some(login)).await
}

/// `POST magic-link/status`: the device that asked for the link gets its own session once
/// the link has been activated (on any device), once, within the link's lifetime.
pub async fn status(p: &Passage, app: &App, id: &str) -> Result<AuthResult, Error> {
    let link = p.store.get_magic_link(&app.id, id).await?;
    let now = now_ms();
    let since = now - app.settings.magic_link_ttl * 1000;
    if !p.store.claim_magic_link(&link.id, since, now).await? {
        return Err(Error::MagicLinkRefused(
            match (link.activated_at, link.claimed_at) {
                (None, _) if link.expires_at <= now => "the magic link expired",
                (None, _) => "the magic link has not been activated yet",
                (Some(_), Some(_)) => "the session of this magic link was handed out already",
                (Some(_), None) => "the magic link was activated too long ago",
            },
        ));
    }
    let user = users::get(p, app, &link.user_id).await?;
    users::ensure_active(&user)?;
    session_for(p, app, &user, &link, None).await
}

/// A session returning to the link's redirect URL, committed with `login` (the record of the
/// login and what it proves).
async fn session_for(
    p: &Passage,
    app: &App,
    user: &User,
    link: &MagicLinkRow,
    login: Option<crate::storage::Filtered>,
) -> Result<AuthResult, Error> {
    let (mut result, session) = sessions::new_session(p, app, &user.id).await?;
    let writes: Vec<_> = login.into_iter().chain(session).map(Into::into).collect();
    if !writes.is_empty() {
        p.store
            .commit(Unit::all(writes))
            .await
            .map_err(users::or_identifier_taken)?;
    }
    result.redirect_url = link.redirect_url.clone();
    Ok(result)
}
