//! Ceremonies: the state a multi-step login keeps between its steps (a WebAuthn challenge, a
//! social login's state and PKCE verifier, the code handed back to the app), single use and
//! expiring. A ceremony ends by one conditional `delete`, the guard of the unit that stores
//! what it proved, so it finishes at most once, on any node.

use super::{Filtered, Statement, Store, Unit};
use crate::error::Error;

/// A ceremony between its start and its finish.
#[derive(Debug, Clone)]
pub struct CeremonyRow {
    pub id: String,
    pub app_id: String,
    /// Passkeys: `register`, `login` or `add_device`; social login: `social_flow` or
    /// `social_code`.
    pub kind: &'static str,
    /// Empty for a login without identifier and for social login.
    pub user_id: String,
    pub state: String,
    pub expires_at: i64,
}

impl Store {
    /// Stores a started ceremony.
    pub fn insert_ceremony(c: &CeremonyRow) -> Statement {
        Statement::new(
            "insert into ceremonies (id, app_id, kind, user_id, state, expires_at)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .text(c.id.clone())
        .text(c.app_id.clone())
        .text(c.kind.to_string())
        .text(c.user_id.clone())
        .text(c.state.clone())
        .int(c.expires_at)
    }

    /// The ceremony `id` of kind `kind` while it may still finish: the user it is for and its
    /// state; `None` when it is unknown, finished or expired.
    pub async fn ceremony(
        &self,
        app_id: &str,
        id: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<(String, String)>, Error> {
        Statement::new(
            "select user_id, state from ceremonies
              where id = $1 and app_id = $2 and kind = $3 and expires_at > $4",
        )
        .bind(id)
        .bind(app_id)
        .bind(kind)
        .bind(now)
        .fetch_optional(&self.read)
        .await
    }

    /// Ends the ceremony `id`, once: the guard of the unit that stores what it proved, so of
    /// concurrent finishes at most one applies.
    pub fn end_ceremony(app_id: &str, id: &str, kind: &str, now: i64) -> Filtered {
        Statement::filtered(
            "delete from ceremonies",
            "id = $1 and app_id = $2 and kind = $3 and expires_at > $4",
        )
        .text(id.to_string())
        .text(app_id.to_string())
        .text(kind.to_string())
        .int(now)
    }

    /// Ends the ceremony `id` with nothing stored (a failed check, a state the provider
    /// answered); false when it had ended already.
    pub async fn drop_ceremony(
        &self,
        app_id: &str,
        id: &str,
        kind: &str,
        now: i64,
    ) -> Result<bool, Error> {
        let end = Store::end_ceremony(app_id, id, kind, now);
        self.commit(Unit::all(vec![end.into()])).await
    }
}
