//! tyntec 2FA applications: per-account OTP settings and message templates.

use super::rows::row_type;
use std::collections::BTreeMap;

use super::{flag, Statement, Store, Unit};
use crate::error::{Error, Resource};

/// Settings of a 2FA application, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplicationSettings {
    pub name: String,
    pub pin_length: i64,
    pub alphanumeric: bool,
    pub attempts: i64,
    pub expire_seconds: i64,
    pub sender: String,
    pub caller: Option<String>,
    /// Language (`en`, `en-voice`) → template text with `{{OTP}}` / `{{SEC}}`.
    pub templates: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ApplicationRow {
    pub id: String,
    pub account_id: String,
    pub is_default: bool,
    pub settings: ApplicationSettings,
    pub created_at: i64,
    pub updated_at: i64,
}

row_type! {
    struct RawApplication {
        id: String,
        account_id: String,
        name: String,
        is_default: i64,
        pin_length: i64,
        alphanumeric: i64,
        attempts: i64,
        expire_seconds: i64,
        sender: String,
        caller: Option<String>,
        templates: String,
        created_at: i64,
        updated_at: i64,
    }
}

impl TryFrom<RawApplication> for ApplicationRow {
    type Error = Error;
    fn try_from(r: RawApplication) -> Result<Self, Error> {
        let templates = serde_json::from_str(&r.templates)
            .map_err(|e| Error::Internal(anyhow::anyhow!("templates of {}: {e}", r.id)))?;
        Ok(ApplicationRow {
            id: r.id,
            account_id: r.account_id,
            is_default: r.is_default != 0,
            settings: ApplicationSettings {
                name: r.name,
                pin_length: r.pin_length,
                alphanumeric: r.alphanumeric != 0,
                attempts: r.attempts,
                expire_seconds: r.expire_seconds,
                sender: r.sender,
                caller: r.caller,
                templates,
            },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Reads and writes of one change before it gives up on a busy application.
const MODIFY_TRIES: usize = 20;

const COLUMNS: &str = "id, account_id, name, is_default, pin_length, alphanumeric, attempts, \
                       expire_seconds, sender, caller, templates, created_at, updated_at";

/// Binds the settings' columns in their order: name, pin_length, alphanumeric, attempts,
/// expire_seconds, sender, caller, templates.
fn with_settings(statement: Statement, s: &ApplicationSettings) -> Result<Statement, Error> {
    let templates = serde_json::to_string(&s.templates).map_err(|e| Error::Internal(e.into()))?;
    Ok(statement
        .text(s.name.clone())
        .int(s.pin_length)
        .int(flag(s.alphanumeric))
        .int(s.attempts)
        .int(s.expire_seconds)
        .text(s.sender.clone())
        .text(s.caller.clone())
        .text(templates))
}

impl Store {
    pub fn insert_application(app: &ApplicationRow) -> Result<Statement, Error> {
        let insert = Statement::new(
            "insert into tfa_applications (id, name, pin_length, alphanumeric, attempts,
               expire_seconds, sender, caller, templates, account_id, is_default, created_at,
               updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        );
        Ok(with_settings(insert.text(app.id.clone()), &app.settings)?
            .text(app.account_id.clone())
            .int(flag(app.is_default))
            .int(app.created_at)
            .int(app.updated_at))
    }

    /// One application of an account; `id` may be `default`.
    pub async fn get_application(
        &self,
        account_id: &str,
        id: &str,
    ) -> Result<ApplicationRow, Error> {
        let sql = format!(
            "select {COLUMNS} from tfa_applications
              where account_id = $1 and (id = $2 or ($2 = 'default' and is_default = 1))"
        );
        let raw: RawApplication = Statement::new(sql)
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(Error::NotFound(Resource::Application))?;
        raw.try_into()
    }

    pub async fn list_applications(&self, account_id: &str) -> Result<Vec<ApplicationRow>, Error> {
        let sql = format!(
            "select {COLUMNS} from tfa_applications where account_id = $1
              order by is_default desc, created_at, id"
        );
        let rows: Vec<RawApplication> = Statement::new(sql)
            .bind(account_id)
            .fetch_all(&self.read)
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Changes an application's settings: `change` runs on the stored row, which is written
    /// back only if nobody changed it meanwhile (else `change` runs again on the new row), so
    /// concurrent edits of one application, e.g. two template additions, both land.
    pub async fn modify_application(
        &self,
        account_id: &str,
        id: &str,
        now: i64,
        change: impl Fn(&mut ApplicationRow) -> Result<(), Error>,
    ) -> Result<ApplicationRow, Error> {
        for _ in 0..MODIFY_TRIES {
            let before = self.get_application(account_id, id).await?;
            let mut app = before.clone();
            change(&mut app)?;
            app.updated_at = now.max(before.updated_at + 1);
            let write = Self::replace_application(&before, &app)?;
            if self.commit(Unit::chain(write, Vec::new())).await? {
                return Ok(app);
            }
        }
        Err(Error::Conflict(
            "the application keeps changing; try again".into(),
        ))
    }

    /// Writes `after` over `before`, only if the row still holds `before`: every change moves
    /// `updated_at` forward, so an unchanged `updated_at` means an unchanged row.
    fn replace_application(
        before: &ApplicationRow,
        after: &ApplicationRow,
    ) -> Result<Statement, Error> {
        let update = Statement::new(
            "update tfa_applications set name = $2, pin_length = $3, alphanumeric = $4,
               attempts = $5, expire_seconds = $6, sender = $7, caller = $8, templates = $9,
               updated_at = $10
             where id = $1 and updated_at = $11",
        );
        Ok(
            with_settings(update.text(after.id.clone()), &after.settings)?
                .int(after.updated_at)
                .int(before.updated_at),
        )
    }

    /// Deletes a non-default application; `NotFound` otherwise.
    pub async fn delete_application(&self, account_id: &str, id: &str) -> Result<(), Error> {
        let done = Statement::new(
            "delete from tfa_applications where account_id = $1 and id = $2 and is_default = 0",
        )
        .bind(account_id)
        .bind(id)
        .execute(&self.write)
        .await?;
        if done == 0 {
            return Err(Error::NotFound(Resource::Application));
        }
        Ok(())
    }
}
