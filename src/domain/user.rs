//! Values of Passage users and their credentials, and the channels that reach people.

use std::fmt;

/// How a message reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Sms,
    Voice,
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Voice => "voice",
            Channel::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sms" => Some(Channel::Sms),
            "voice" => Some(Channel::Voice),
            "email" => Some(Channel::Email),
            _ => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    /// Deactivated by an administrator: refused everywhere.
    Inactive,
    /// Signed up, waiting for the first verified login.
    Pending,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
            UserStatus::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "inactive" => Some(UserStatus::Inactive),
            "pending" => Some(UserStatus::Pending),
            _ => None,
        }
    }
}

/// What a magic link does when it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Logs in (and so proves the identifier it was sent to).
    Login,
    /// The Manage API's `verify_identifier`: proves the identifier, and logs in.
    VerifyIdentifier,
    /// Makes the email it was sent to the user's new email, then logs in.
    UpdateEmail,
    /// Makes the phone it was sent to the user's new phone, then logs in.
    UpdatePhone,
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Login => "login",
            LinkKind::VerifyIdentifier => "verify_identifier",
            LinkKind::UpdateEmail => "update_email",
            LinkKind::UpdatePhone => "update_phone",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "login" => Some(LinkKind::Login),
            "verify_identifier" => Some(LinkKind::VerifyIdentifier),
            "update_email" => Some(LinkKind::UpdateEmail),
            "update_phone" => Some(LinkKind::UpdatePhone),
            _ => None,
        }
    }

    /// Whether using the link changes the user's identifier.
    pub fn changes_identifier(self) -> bool {
        matches!(self, LinkKind::UpdateEmail | LinkKind::UpdatePhone)
    }
}
