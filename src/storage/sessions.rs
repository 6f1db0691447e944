//! Passage one-time passcodes and refresh tokens. Use and rotation are single conditional
//! statements, so concurrent activations and refreshes settle in the database.

use super::{Statement, Store};
use crate::error::Error;

#[derive(Clone, sqlx::FromRow)]
pub struct PasscodeRow {
    pub id: String,
    pub app_id: String,
    pub user_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub code_hash: Vec<u8>,
    pub attempts: i64,
    pub max_attempts: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Clone, sqlx::FromRow)]
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

const TOKEN_COLUMNS: &str = "id, app_id, user_id, family_id, created_at, expires_at, \
    rotated_at, successor_sealed, revoked_at";

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
        .text(p.channel.clone())
    }

    pub async fn get_passcode(&self, app_id: &str, id: &str) -> Result<PasscodeRow, Error> {
        sqlx::query_as(
            "select id, app_id, user_id, channel, code_hash, attempts, max_attempts, expires_at,
                    used_at, created_at
               from passcodes where app_id = $1 and id = $2",
        )
        .bind(app_id)
        .bind(id)
        .fetch_optional(&self.read)
        .await?
        .ok_or(Error::NotFound)
    }

    /// Counts an attempt on an unused, unexpired passcode with attempts left, and uses it up
    /// when `correct`. Returns the attempts counted so far, or `None` when the passcode was no
    /// longer usable (used by a concurrent activation, expired, or out of attempts).
    pub async fn attempt_passcode(
        &self,
        id: &str,
        correct: bool,
        now: i64,
    ) -> Result<Option<i64>, Error> {
        let row: Option<(i64,)> = sqlx::query_as(
            "update passcodes set attempts = attempts + 1,
               used_at = case when $2 = 1 then $3 else null end
              where id = $1 and used_at is null and expires_at > $3 and attempts < max_attempts
             returning attempts",
        )
        .bind(id)
        .bind(super::flag(correct))
        .bind(now)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.map(|(n,)| n))
    }

    pub fn insert_refresh_token(t: &RefreshTokenRow, token_hash: &[u8]) -> Statement {
        Statement::new(
            "insert into refresh_tokens (id, app_id, user_id, family_id, token_hash, created_at,
               expires_at) values ($1, $2, $3, $4, $5, $6, $7)",
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
    ) -> Result<Option<RefreshTokenRow>, Error> {
        let sql = format!(
            "select {TOKEN_COLUMNS} from refresh_tokens where app_id = $1 and token_hash = $2"
        );
        Ok(sqlx::query_as(&sql)
            .bind(app_id)
            .bind(token_hash)
            .fetch_optional(&self.write)
            .await?)
    }

    /// Marks a token rotated, keeping its sealed successor; false when another request
    /// rotated (or revoked) it first.
    pub async fn rotate_refresh_token(
        &self,
        id: &str,
        successor_sealed: &[u8],
        now: i64,
    ) -> Result<bool, Error> {
        let done = sqlx::query(
            "update refresh_tokens set rotated_at = $2, successor_sealed = $3
              where id = $1 and rotated_at is null and revoked_at is null",
        )
        .bind(id)
        .bind(now)
        .bind(successor_sealed)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_refresh_token(&self, id: &str) -> Result<(), Error> {
        sqlx::query("delete from refresh_tokens where id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Revokes every token of a family (reuse of a rotated token, or logout).
    pub async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<(), Error> {
        sqlx::query(
            "update refresh_tokens set revoked_at = $2 where family_id = $1 and revoked_at is null",
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
        sqlx::query(
            "update refresh_tokens set revoked_at = $3
              where app_id = $1 and user_id = $2 and revoked_at is null",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a login: count, time, and the identifier that proved itself verified.
    pub async fn record_login(
        &self,
        app_id: &str,
        user_id: &str,
        verified_email: bool,
        verified_phone: bool,
        now: i64,
    ) -> Result<(), Error> {
        sqlx::query(
            "update users set login_count = login_count + 1, last_login_at = $3, updated_at = $3,
               email_verified = case when $4 = 1 then 1 else email_verified end,
               phone_verified = case when $5 = 1 then 1 else phone_verified end,
               status = case when status = 'pending' then 'active' else status end
             where app_id = $1 and id = $2",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(now)
        .bind(super::flag(verified_email))
        .bind(super::flag(verified_phone))
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
