//! tyntec OTPs and their event history. Every state change is one conditional statement, so
//! concurrent checks settle in the database. Reads by id name only the id and check the
//! account here: on a new PostgreSQL database, whose tables have no statistics yet, a cached
//! generic plan for `id = $1 and account_id = $2` can walk the account's index instead of the
//! primary key, reading every OTP of the account per lookup.

use super::rows::row_type;
use super::{
    rate_limits::{failures_column, WithFailures},
    Statement, Store, Unit,
};
use crate::domain::{OtpStatus, Via};
use crate::error::{Error, Resource};

row_type! {
    #[derive(Clone)]
    pub struct OtpRow {
        pub id: String,
        pub account_id: String,
        pub application_id: String,
        pub number: String,
        pub code_hash: Vec<u8>,
        pub code_sealed: Vec<u8>,
        pub code_length: i64,
        pub custom_text: Option<String>,
        pub language: Option<String>,
        pub sender: Option<String>,
        pub caller: Option<String>,
        pub reference_id: Option<String>,
        /// The channel asked for at creation.
        pub via: Via,
        pub status: OtpStatus,
        pub attempt_count: i64,
        pub max_attempts: i64,
        pub resend_count: i64,
        pub created_at: i64,
        pub expires_at: i64,
        pub updated_at: i64,
        pub deleted_at: Option<i64>,
    }
}

const COLUMNS: &str = "id, account_id, application_id, number, code_hash, code_sealed, \
    code_length, custom_text, language, sender, caller, reference_id, via, status, \
    attempt_count, max_attempts, resend_count, created_at, expires_at, updated_at, deleted_at";

/// A new OTP: the row as inserted.
pub type NewOtp = OtpRow;

row_type! {
    #[derive(Debug, Clone)]
    pub struct OtpEventRow {
        pub id: i64,
        pub otp_id: String,
        pub at: i64,
        pub kind: String,
        pub channel: Option<String>,
        pub provider: Option<String>,
        pub detail: Option<String>,
    }
}

/// Filters for listing OTPs.
#[derive(Debug, Default, Clone)]
pub struct OtpFilter {
    pub number: Option<String>,
    pub status: Option<String>,
    pub limit: i64,
}

impl Store {
    pub fn insert_otp(otp: &NewOtp) -> Statement {
        Statement::new(
            "insert into otps (id, account_id, application_id, number, code_hash, code_sealed,
               code_length, custom_text, language, sender, caller, reference_id, via, status,
               attempt_count, max_attempts, resend_count, created_at, expires_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
               $17, $18, $19, $20)",
        )
        .text(otp.id.clone())
        .text(otp.account_id.clone())
        .text(otp.application_id.clone())
        .text(otp.number.clone())
        .blob(otp.code_hash.clone())
        .blob(otp.code_sealed.clone())
        .int(otp.code_length)
        .text(otp.custom_text.clone())
        .text(otp.language.clone())
        .text(otp.sender.clone())
        .text(otp.caller.clone())
        .text(otp.reference_id.clone())
        .text(otp.via.as_str().to_string())
        .text(otp.status.as_str().to_string())
        .int(otp.attempt_count)
        .int(otp.max_attempts)
        .int(otp.resend_count)
        .int(otp.created_at)
        .int(otp.expires_at)
        .int(otp.updated_at)
    }

    /// An OTP of this account, deleted ones included (a check on them answers 410).
    pub async fn get_otp(&self, account_id: &str, id: &str) -> Result<OtpRow, Error> {
        let sql = format!("select {COLUMNS} from otps where id = $1");
        let otp: Option<OtpRow> = Statement::new(sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        otp.filter(|o| o.account_id == account_id)
            .ok_or(Error::NotFound(Resource::Otp))
    }

    /// An OTP about to be checked, with its recipient's failures in the window starting at
    /// `window_start`.
    pub async fn otp_for_check(
        &self,
        account_id: &str,
        id: &str,
        window_start: i64,
    ) -> Result<WithFailures<OtpRow>, Error> {
        let failures = failures_column("account_id", "number", "$2");
        let sql = format!("select {COLUMNS}, {failures} from otps where id = $1");
        let found: Option<WithFailures<OtpRow>> = Statement::new(sql)
            .bind(id)
            .bind(window_start)
            .fetch_optional(&self.read)
            .await?;
        found
            .filter(|f| f.row.account_id == account_id)
            .ok_or(Error::NotFound(Resource::Otp))
    }

    pub async fn list_otps(
        &self,
        account_id: &str,
        filter: &OtpFilter,
        now: i64,
    ) -> Result<Vec<OtpRow>, Error> {
        // A lapsed ACTIVE row is EXPIRED to the client even before a check marks it so.
        let sql = format!(
            "select {COLUMNS} from otps
              where account_id = $1 and deleted_at is null
                and ($2 = '' or number = $2)
                and ($3 = ''
                     or ($3 = 'ACTIVE' and status = 'ACTIVE' and expires_at > $4)
                     or ($3 = 'EXPIRED' and (status = 'EXPIRED'
                                             or (status = 'ACTIVE' and expires_at <= $4)))
                     or ($3 not in ('ACTIVE', 'EXPIRED') and status = $3))
              order by created_at desc, id limit $5"
        );
        Statement::new(sql)
            .bind(account_id)
            .bind(filter.number.as_deref().unwrap_or(""))
            .bind(filter.status.as_deref().unwrap_or(""))
            .bind(now)
            .bind(filter.limit)
            .fetch_all(&self.read)
            .await
    }

    /// Counts one check against an ACTIVE, unexpired OTP with attempts left and settles its
    /// status, in one statement (which records the check event: see the migrations).
    /// `None` when the OTP was not checkable (any more): the caller finds out why.
    pub async fn record_check(
        &self,
        id: &str,
        verified: bool,
        now: i64,
    ) -> Result<Option<OtpRow>, Error> {
        let sql = format!(
            "update otps set attempt_count = attempt_count + 1, updated_at = $3,
               status = case when $2 = 1 then 'VERIFIED'
                             when attempt_count + 1 >= max_attempts then 'TOO_MANY_ATTEMPTS'
                             else 'ACTIVE' end
              where id = $1 and status = 'ACTIVE' and deleted_at is null and expires_at > $3
                and attempt_count < max_attempts
             returning {COLUMNS}"
        );
        Statement::new(sql)
            .bind(id)
            .bind(super::flag(verified))
            .bind(now)
            .fetch_optional(&self.write)
            .await
    }

    /// Moves a lapsed ACTIVE OTP to EXPIRED (which records the event); true if this call
    /// made the change.
    pub async fn mark_expired(&self, id: &str, now: i64) -> Result<bool, Error> {
        let done = Statement::new(
            "update otps set status = 'EXPIRED', updated_at = $2
              where id = $1 and status = 'ACTIVE' and deleted_at is null and expires_at <= $2",
        )
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done == 1)
    }

    /// Soft-deletes an OTP (which records the event) and forgets its sealed code. The row
    /// stays so that later checks answer 410 rather than 404.
    pub async fn delete_otp(&self, account_id: &str, id: &str, now: i64) -> Result<OtpRow, Error> {
        let sql = format!(
            "update otps set deleted_at = $3, updated_at = $3, code_sealed = $4
              where id = $1 and account_id = $2 and deleted_at is null
             returning {COLUMNS}"
        );
        Statement::new(sql)
            .bind(id)
            .bind(account_id)
            .bind(now)
            .bind(Vec::<u8>::new())
            .fetch_optional(&self.write)
            .await?
            .ok_or(Error::NotFound(Resource::Otp))
    }

    /// Counts a resend `via` a channel choice of an ACTIVE, unexpired OTP under `limit`:
    /// the guard of a resend's unit, which does not apply when the OTP cannot be resent.
    pub fn count_resend(account_id: &str, id: &str, via: Via, limit: i64, now: i64) -> Statement {
        Statement::new(
            "update otps set resend_count = resend_count + 1, updated_at = $3, resent_via = $5
              where id = $1 and account_id = $2 and status = 'ACTIVE' and deleted_at is null
                and expires_at > $3 and resend_count < $4",
        )
        .text(id.to_string())
        .text(account_id.to_string())
        .int(now)
        .int(limit)
        .text(via.as_str().to_string())
    }

    pub async fn list_otp_events(&self, otp_id: &str) -> Result<Vec<OtpEventRow>, Error> {
        Statement::new(
            "select id, otp_id, at, kind, channel, provider, detail from otp_events
              where otp_id = $1 order by id",
        )
        .bind(otp_id)
        .fetch_all(&self.read)
        .await
    }

    /// Forgets OTPs (and their events) that expired before `before`.
    pub async fn prune_otps(&self, before: i64) -> Result<(), Error> {
        let events = Statement::new(
            "delete from otp_events where otp_id in (select id from otps where expires_at < $1)",
        )
        .int(before);
        let otps = Statement::new("delete from otps where expires_at < $1").int(before);
        self.commit(Unit::all(vec![events, otps])).await.map(|_| ())
    }
}
