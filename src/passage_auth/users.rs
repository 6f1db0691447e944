//! Users as end users meet them: does an identifier exist, and public sign-up.

use serde_json::Value;

use super::apps::App;
use crate::{
    app::AppState,
    delivery::{Channel, Envelope, Outgoing},
    domain::{now_ms, Email, PhoneNumber},
    error::Error,
    passage_manage::users::{self as manage_users, UserRequest},
    storage::{DeliveryRow, Statement, UserRow},
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

    /// A message to this identifier: the outbox row to commit with what it carries, and the
    /// row to hand to the worker after the commit. The subject is used by email only.
    pub fn message(
        &self,
        s: &AppState,
        subject: String,
        text: String,
        language: &str,
        now: i64,
    ) -> Result<(Statement, DeliveryRow), Error> {
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
        .queue(&s.keys, now)
    }
}

/// Public sign-up, when the app allows it.
pub async fn sign_up(
    s: &AppState,
    app: &App,
    identifier: &Identifier,
    user_metadata: Option<Value>,
) -> Result<UserRow, Error> {
    if !app.settings.public_signup {
        return Err(Error::Forbidden(
            "this app does not allow public sign-up".into(),
        ));
    }
    let request = match identifier {
        Identifier::Email(e) => UserRequest {
            email: Some(e.as_str().to_string()),
            ..UserRequest::default()
        },
        Identifier::Phone(p) => UserRequest {
            phone: Some(p.as_str().to_string()),
            ..UserRequest::default()
        },
    };
    let mut user = manage_users::create(
        s,
        app,
        UserRequest {
            user_metadata,
            ..request
        },
    )
    .await?;
    // Self-registered users whose identifier must be verified first start as pending.
    if app.settings.require_identifier_verification {
        user = s
            .store
            .set_user_status(&app.id, &user.id, "pending", now_ms())
            .await?;
    }
    Ok(user)
}
