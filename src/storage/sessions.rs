//! Passage one-time passcodes and refresh tokens. Use and rotation are single conditional
//! statements, so concurrent activations and refreshes settle in the database.

use super::{
    rate_limits::{failures_column, WithFailures},
    rows::{row_type, Column, ColumnError, FromRow, Key, Row},
    Filtered, Statement, Store,
};
use crate::{
    domain::{Channel, UserStatus},
    error::Error,
};

row_type! {
    #[derive(Clone)]
    pub struct PasscodeRow {
        pub id: String,
        pub app_id: String,
        pub user_id: String,
        /// Where the code was sent: the identifier it proves.
        pub channel: Channel,
        pub code_hash: Vec<u8>,
        pub attempts: i64,
        pub max_attempts: i64,
        pub expires_at: i64,
        pub used_at: Option<i64>,
        pub created_at: i64,
    }
}

row_type! {
    #[derive(Clone)]
    pub struct RefreshTokenRow {
        pub id: String,
        pub app_id: String,
        pub user_id: String,
        pub family_id: String,
        pub created_at: i64,
        pub expires_at: i64,
        pub rotated_at: Option<i64>,
        pub successor_sealed: Option<Vec<u8>>,
        pub revoked_at: Option<i64>,
    }
}

/// A stored row with its user's status, read together for a login or a refresh.
#[derive(Clone)]
pub struct WithUserStatus<T> {
    pub row: T,
    pub user_status: UserStatus,
}

impl<T: FromRow> FromRow for WithUserStatus<T> {
    fn from_row(row: &dyn Row) -> Result<Self, ColumnError> {
        Ok(WithUserStatus {
            row: T::from_row(row)?,
            user_status: Column::read(row, Key::Name("user_status"))?,
        })
    }
}

impl Store {
    pub fn insert_passcode(p: &PasscodeRow) -> Statement {
        Statement::new(
            "insert into passcodes (id, app_id, user_id, channel, code_hash, attempts,
               max_attempts, expires_at, created_at) values ($1, $2, $3, $8, $4, 0, $5, $6, $7)",
        )
        .text(p.id.clone())
        .text(p.app_id.clone())
        .text(p.user_id.clone())
        .blob(p.code_hash.clone())
        .int(p.max_attempts)
        .int(p.expires_at)
        .int(p.created_at)
        .text(p.channel.as_str().to_string())
    }

    /// A passcode about to be checked, with its user's status and failures in the window
    /// starting at `window_start`.
    pub async fn passcode_for_check(
        &self,
        app_id: &str,
        id: &str,
        window_start: i64,
    ) -> Result<Option<WithFailures<WithUserStatus<PasscodeRow>>>, Error> {
        let failures = failures_column("p.app_id", "p.user_id", "$3");
        let sql = format!(
            "select p.id, p.app_id, p.user_id, p.channel, p.code_hash, p.attempts, p.max_attempts,
                    p.expires_at, p.used_at, p.created_at, u.status as user_status, {failures}
               from passcodes p join users u on u.id = p.user_id
              where p.app_id = $1 and p.id = $2"
        );
        Statement::new(sql)
            .bind(app_id)
            .bind(id)
            .bind(window_start)
            .fetch_optional(&self.read)
            .await
    }

    /// Counts a wrong code on an unused, unexpired passcode with attempts left. Returns the
    /// attempts counted so far, or `None` when the passcode was no longer usable (used by a
    /// concurrent activation, expired, or out of attempts).
    pub async fn count_wrong_passcode(&self, id: &str, now: i64) -> Result<Option<i64>, Error> {
        let row: Option<(i64,)> = Statement::new(
            "update passcodes set attempts = attempts + 1
              where id = $1 and used_at is null and expires_at > $2 and attempts < max_attempts
             returning attempts",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.map(|(n,)| n))
    }

    /// Uses up an unused, unexpired passcode with attempts left: the guard of a login's
    /// [`Unit::chain`].
    pub fn use_passcode(id: &str, now: i64) -> Statement {
        Statement::new(
            "update passcodes set attempts = attempts + 1, used_at = $2
              where id = $1 and used_at is null and expires_at > $2 and attempts < max_attempts",
        )
        .text(id.to_string())
        .int(now)
    }

    /// Stores a refresh token (by digest).
    pub fn insert_refresh_token(t: &RefreshTokenRow, token_hash: &[u8]) -> Filtered {
        Statement::filtered(
            "insert into refresh_tokens (id, app_id, user_id, family_id, token_hash, created_at,
               expires_at) select $1, $2, $3, $4, $5, $6, $7",
            "true",
        )
        .text(t.id.clone())
        .text(t.app_id.clone())
        .text(t.user_id.clone())
        .text(t.family_id.clone())
        .blob(token_hash.to_vec())
        .int(t.created_at)
        .int(t.expires_at)
    }

    pub async fn refresh_token_by_hash(
        &self,
        app_id: &str,
        token_hash: &[u8],
    ) -> Result<Option<WithUserStatus<RefreshTokenRow>>, Error> {
        Statement::new(
            "select t.id, t.app_id, t.user_id, t.family_id, t.created_at, t.expires_at,
                    t.rotated_at, t.successor_sealed, t.revoked_at, u.status as user_status
               from refresh_tokens t join users u on u.id = t.user_id
              where t.app_id = $1 and t.token_hash = $2",
        )
        .bind(app_id)
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await
    }

    /// Marks a token rotated, keeping its sealed successor: the guard of a rotation's
    /// [`Unit::chain`]; it does not apply when another request rotated (or revoked)
    /// the token first.
    pub fn rotate_refresh_token(id: &str, successor_sealed: &[u8], now: i64) -> Statement {
        Statement::new(
            "update refresh_tokens set rotated_at = $2, successor_sealed = $3
              where id = $1 and rotated_at is null and revoked_at is null",
        )
        .text(id.to_string())
        .int(now)
        .blob(successor_sealed.to_vec())
    }

    /// Forgets the sealed successors of tokens rotated before `rotated_before` (when their
    /// grace window ended): a database backup then holds no live token, only digests.
    pub async fn forget_successors(&self, rotated_before: i64) -> Result<u64, Error> {
        let done = Statement::new(
            "update refresh_tokens set successor_sealed = null
              where successor_sealed is not null and rotated_at < $1",
        )
        .bind(rotated_before)
        .execute(&self.write)
        .await?;
        Ok(done)
    }

    /// Revokes every token of a family (reuse of a rotated token, or logout).
    pub async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<(), Error> {
        Statement::new(
            "update refresh_tokens set revoked_at = $2, successor_sealed = null
              where family_id = $1 and revoked_at is null",
        )
        .bind(family_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Revokes all of a user's refresh tokens.
    pub async fn revoke_user_refresh_tokens(
        &self,
        app_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), Error> {
        Statement::new(
            "update refresh_tokens set revoked_at = $3, successor_sealed = null
              where app_id = $1 and user_id = $2 and revoked_at is null",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a login: count, time, and the identifier it proved, if any: `proof` `email` or
    /// `sms` becomes verified (a passkey proves none), and when `new_identifier` is given it becomes the user's email or
    /// phone (a change confirmed by link). A pending user becomes active.
    pub fn record_login(
        app_id: &str,
        user_id: &str,
        proof: Option<Channel>,
        new_identifier: Option<&str>,
        now: i64,
    ) -> Filtered {
        Statement::filtered(
            "update users set login_count = login_count + 1, last_login_at = $3, updated_at = $3,
               email = case when $4 = 'email' and $5 <> '' then $5 else email end,
               phone = case when $4 = 'sms' and $5 <> '' then $5 else phone end,
               email_verified = case when $4 = 'email' then 1 else email_verified end,
               phone_verified = case when $4 = 'sms' then 1 else phone_verified end,
               status = case when status = 'pending' then 'active' else status end",
            "app_id = $1 and id = $2",
        )
        .text(app_id.to_string())
        .text(user_id.to_string())
        .int(now)
        .text(proof.map_or("", Channel::as_str).to_string())
        .text(new_identifier.unwrap_or_default().to_string())
    }
}
