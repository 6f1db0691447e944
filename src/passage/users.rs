//! Users and their identifiers: sign-up and administration, look-ups, and the list the Manage
//! API pages through.

use serde_json::{Map, Value};

use super::{
    metadata::{metadata, MetadataWriter},
    App, Passage,
};
use crate::{
    crypto,
    delivery::{Channel, Envelope, Outgoing},
    domain::{now_ms, Email, PhoneNumber, UserStatus},
    error::{Error, Resource},
    storage::{User, UserFilter},
};

/// An identifier is an email (it has an `@`) or a phone number; the app says which it takes.
pub enum Identifier {
    Email(Email),
    Phone(PhoneNumber),
}

impl Identifier {
    /// An email or a phone number, normalised, whatever the app takes.
    pub fn detect(input: &str) -> Result<Identifier, Error> {
        Ok(if input.contains('@') {
            Identifier::Email(Email::parse(input)?)
        } else {
            Identifier::Phone(PhoneNumber::parse(input, None)?)
        })
    }

    /// An identifier of a kind the app takes.
    pub fn parse(app: &App, input: &str) -> Result<Identifier, Error> {
        let allowed = app.settings.allowed_identifier.as_str();
        let id = Identifier::detect(input)?;
        let ok = match id {
            Identifier::Email(_) => matches!(allowed, "email" | "both"),
            Identifier::Phone(_) => matches!(allowed, "phone" | "both"),
        };
        if !ok {
            return Err(Error::invalid(
                "identifier",
                format!("this app takes {allowed}"),
            ));
        }
        Ok(id)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Identifier::Email(e) => e.as_str(),
            Identifier::Phone(p) => p.as_str(),
        }
    }

    /// The channel that reaches this identifier.
    pub fn channel(&self) -> Channel {
        match self {
            Identifier::Email(_) => Channel::Email,
            Identifier::Phone(_) => Channel::Sms,
        }
    }

    /// Whether a message may go to this identifier now: the country policy for numbers, and
    /// the sending limits.
    pub async fn may_receive(&self, p: &Passage, app: &App) -> Result<(), Error> {
        self.reachable(p)?;
        let phone = matches!(self, Identifier::Phone(_));
        p.limits.sending(&app.id, self.as_str(), phone).await
    }

    /// The country policy: SMS and calls reach only the countries it allows.
    fn reachable(&self, p: &Passage) -> Result<(), Error> {
        match self {
            Identifier::Phone(number) => p.limits.country(number.region()),
            Identifier::Email(_) => Ok(()),
        }
    }

    /// A message to this identifier. The subject is used by email only.
    pub fn message(&self, subject: String, text: String, language: &str) -> Outgoing<'_> {
        let channel = self.channel();
        Outgoing {
            otp_id: None,
            channel,
            fallback: None,
            recipient: self.as_str(),
            envelope: Envelope {
                text,
                fallback_text: None,
                sender: None,
                caller: None,
                language: Some(language.to_string()),
                subject: (channel == Channel::Email).then_some(subject),
            },
        }
    }
}

/// A user's identifiers and metadata as given to create or change them; `None` leaves a field
/// as it is, an empty string removes an identifier.
#[derive(Debug, Default)]
pub struct UserFields {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub user_metadata: Option<Value>,
}

/// The user `id` of `app`.
pub async fn get(p: &Passage, app: &App, id: &str) -> Result<User, Error> {
    p.store.get_user(&app.id, id).await
}

/// The user holding `identifier`, if any.
pub async fn find(p: &Passage, app: &App, identifier: &Identifier) -> Result<Option<User>, Error> {
    p.store.find_user(&app.id, identifier.as_str()).await
}

/// The Auth API's identifier check: the user holding `identifier` (of a kind the app takes).
pub async fn look_up(p: &Passage, app: &App, identifier: &str) -> Result<Option<User>, Error> {
    find(p, app, &Identifier::parse(app, identifier)?).await
}

/// How a login flow meets its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// An existing user logs in.
    Login,
    /// A new user signs up (as the app allows) and logs in.
    Register,
}

/// The user a passcode or magic-link flow is for, and the identifier that reaches them.
pub async fn entrant(
    p: &Passage,
    app: &App,
    identifier: &str,
    entry: Entry,
) -> Result<(User, Identifier), Error> {
    let to = Identifier::parse(app, identifier)?;
    // Nobody signs up with a number no code can reach.
    to.reachable(p)?;
    let user = match entry {
        Entry::Login => find_active(p, app, &to).await?,
        Entry::Register => sign_up(p, app, &to, None).await?,
    };
    Ok((user, to))
}

/// The user holding `identifier`, who must be allowed to log in.
pub async fn find_active(p: &Passage, app: &App, identifier: &Identifier) -> Result<User, Error> {
    let user = find(p, app, identifier)
        .await?
        .ok_or(Error::NotFound(Resource::User))?;
    ensure_active(&user)?;
    Ok(user)
}

/// A deactivated user is refused everywhere.
pub fn ensure_active(user: &User) -> Result<(), Error> {
    match user.status {
        UserStatus::Inactive => Err(Error::Inactive),
        UserStatus::Active | UserStatus::Pending => Ok(()),
    }
}

/// The Manage API's create-user (`email` and/or `phone`).
pub async fn create(p: &Passage, app: &App, fields: UserFields) -> Result<User, Error> {
    let email = fields
        .email
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(Email::parse)
        .transpose()?;
    let phone = fields
        .phone
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| PhoneNumber::parse(p, None))
        .transpose()?;
    if email.is_none() && phone.is_none() {
        return Err(Error::invalid(
            "identifier",
            "an email or a phone number is required",
        ));
    }
    let metadata = match fields.user_metadata {
        Some(m) => metadata(
            &app.settings.user_metadata_schema,
            MetadataWriter::Admin,
            m,
            Map::new(),
        )?,
        None => Map::new(),
    };
    insert(
        p,
        app,
        email.map(|e| e.as_str().to_string()),
        phone.map(|p| p.as_str().to_string()),
        metadata,
        UserStatus::Active,
    )
    .await
}

/// The Auth API's create-user: public sign-up with an identifier of a kind the app takes.
pub async fn register(
    p: &Passage,
    app: &App,
    identifier: &str,
    user_metadata: Option<Value>,
) -> Result<User, Error> {
    let identifier = Identifier::parse(app, identifier)?;
    sign_up(p, app, &identifier, user_metadata).await
}

/// Public sign-up, when the app allows it. Users whose identifier must be verified first
/// start as pending.
pub async fn sign_up(
    p: &Passage,
    app: &App,
    identifier: &Identifier,
    user_metadata: Option<Value>,
) -> Result<User, Error> {
    if !app.settings.public_signup {
        return Err(Error::Forbidden(
            "this app does not allow public sign-up".into(),
        ));
    }
    let metadata = match user_metadata {
        Some(m) => metadata(
            &app.settings.user_metadata_schema,
            MetadataWriter::Registration,
            m,
            Map::new(),
        )?,
        None => Map::new(),
    };
    let (email, phone) = match identifier {
        Identifier::Email(e) => (Some(e.as_str().to_string()), None),
        Identifier::Phone(p) => (None, Some(p.as_str().to_string())),
    };
    let status = if app.settings.require_identifier_verification {
        UserStatus::Pending
    } else {
        UserStatus::Active
    };
    insert(p, app, email, phone, metadata, status).await
}

/// A user who signs up through a social login: with the provider's email when it gives one
/// (verified when the provider vouches for it), active at once.
pub fn social_user(app: &App, email: Option<String>, email_verified: bool, now: i64) -> User {
    let verified = email_verified && email.is_some();
    let mut user = new_user(app, email, None, Map::new(), UserStatus::Active, now);
    user.email_verified = verified;
    user
}

/// A user who has not logged in yet, with unverified identifiers.
fn new_user(
    app: &App,
    email: Option<String>,
    phone: Option<String>,
    user_metadata: Map<String, Value>,
    status: UserStatus,
    now: i64,
) -> User {
    User {
        id: crypto::random_id(),
        app_id: app.id.clone(),
        email,
        phone,
        email_verified: false,
        phone_verified: false,
        status,
        user_metadata,
        external_id: String::new(),
        login_count: 0,
        last_login_at: None,
        created_at: now,
        updated_at: now,
        passkeys: 0,
    }
}

async fn insert(
    p: &Passage,
    app: &App,
    email: Option<String>,
    phone: Option<String>,
    user_metadata: Map<String, Value>,
    status: UserStatus,
) -> Result<User, Error> {
    let user = new_user(app, email, phone, user_metadata, status, now_ms());
    p.store
        .insert_user(&user)
        .await
        .map_err(or_identifier_taken)?;
    Ok(user)
}

/// The Manage API's update-user: an administrator's change of email or phone takes effect at
/// once, unverified.
pub async fn update(p: &Passage, app: &App, id: &str, fields: UserFields) -> Result<User, Error> {
    let mut user = p.store.get_user(&app.id, id).await?;
    if let Some(email) = fields.email {
        let email = (!email.is_empty())
            .then(|| Email::parse(&email))
            .transpose()?
            .map(|e| e.as_str().to_string());
        if email != user.email {
            user.email = email;
            user.email_verified = false;
        }
    }
    if let Some(phone) = fields.phone {
        let phone = (!phone.is_empty())
            .then(|| PhoneNumber::parse(&phone, None))
            .transpose()?
            .map(|p| p.as_str().to_string());
        if phone != user.phone {
            user.phone = phone;
            user.phone_verified = false;
        }
    }
    if user.email.is_none() && user.phone.is_none() {
        return Err(Error::invalid(
            "identifier",
            "a user keeps an email or a phone number",
        ));
    }
    if let Some(m) = fields.user_metadata {
        user.user_metadata = metadata(
            &app.settings.user_metadata_schema,
            MetadataWriter::Admin,
            m,
            user.user_metadata,
        )?;
    }
    save(p, user).await
}

/// The signed-in user's change of their own metadata.
pub async fn update_metadata(
    p: &Passage,
    app: &App,
    mut user: User,
    input: Value,
) -> Result<User, Error> {
    user.user_metadata = metadata(
        &app.settings.user_metadata_schema,
        MetadataWriter::Profile,
        input,
        user.user_metadata,
    )?;
    save(p, user).await
}

async fn save(p: &Passage, mut user: User) -> Result<User, Error> {
    user.updated_at = now_ms();
    p.store
        .update_user(&user)
        .await
        .map_err(or_identifier_taken)?;
    Ok(user)
}

/// Activates or deactivates a user.
pub async fn set_status(
    p: &Passage,
    app: &App,
    id: &str,
    status: UserStatus,
) -> Result<User, Error> {
    p.store.set_user_status(&app.id, id, status, now_ms()).await
}

pub async fn delete(p: &Passage, app: &App, id: &str) -> Result<(), Error> {
    p.store.delete_user(&app.id, id).await
}

/// The answer when another user holds the email or phone.
pub fn identifier_taken() -> Error {
    Error::Conflict("a user with this identifier exists".into())
}

/// A unique-constraint conflict on a user, told as [`identifier_taken`]; other errors pass.
pub fn or_identifier_taken(e: Error) -> Error {
    match e {
        Error::Conflict(_) => identifier_taken(),
        e => e,
    }
}

/// A page of the Manage API's user list.
pub struct ListQuery {
    pub page: i64,
    pub limit: i64,
    /// Epoch seconds; pages stay stable while users sign up.
    pub created_before: Option<i64>,
    pub newest_first: bool,
    pub identifier: Option<String>,
    pub id: String,
    pub status: Option<UserStatus>,
}

/// One page of users and where the pages are.
pub struct UserPage {
    pub users: Vec<User>,
    pub total: i64,
    pub page: i64,
    pub limit: i64,
    pub created_before: i64,
    /// The filters as given, for the links to other pages.
    pub identifier: String,
    pub id: String,
    pub status: Option<UserStatus>,
}

impl UserPage {
    pub fn last_page(&self) -> i64 {
        ((self.total + self.limit - 1) / self.limit).max(1)
    }
}

/// Most users on one page.
const MAX_PAGE: i64 = 500;

pub async fn list(p: &Passage, app: &App, q: ListQuery) -> Result<UserPage, Error> {
    let identifier = match q.identifier.as_deref().map(str::trim) {
        Some(i) if !i.is_empty() => Identifier::detect(i)?.as_str().to_string(),
        _ => String::new(),
    };
    let page = q.page.max(1);
    let limit = q.limit.clamp(1, MAX_PAGE);
    let created_before = q.created_before.unwrap_or(now_ms() / 1000 + 1);
    let filter = UserFilter {
        created_before: created_before.saturating_mul(1000),
        identifier,
        id: q.id,
        status: q.status,
        newest_first: q.newest_first,
    };
    let offset = (page - 1).saturating_mul(limit);
    let (users, total) = p.store.page_users(&app.id, &filter, limit, offset).await?;
    Ok(UserPage {
        users,
        total,
        page,
        limit,
        created_before,
        identifier: filter.identifier,
        id: filter.id,
        status: filter.status,
    })
}
