//! What an import or export reads and writes a batch at a time: users and passkeys by the
//! ids, identifiers and credential ids of a batch, and the full update of an imported record.

use super::{
    flag, passkeys::RawPasskey, placeholders, users::RawUser, Filtered, PasskeyRow, Statement,
    Store, User,
};
use crate::error::Error;

impl Store {
    /// Brings PostgreSQL's statistics up to date after a bulk load: with the ones from before
    /// it, the planner scans the tables it thinks are small, and each batch takes longer
    /// than the one before. (SQLite plans by its indexes and needs nothing.)
    pub async fn refresh_statistics(&self) -> Result<(), Error> {
        if self.backend == super::Backend::Postgres {
            Statement::new("analyze users, passkeys")
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// The app's users among `ids`.
    pub async fn users_by_ids(&self, app_id: &str, ids: &[&str]) -> Result<Vec<User>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {} from users where app_id = $1 and id in ({})",
            super::users::COLUMNS,
            placeholders(2, ids.len())
        );
        let query = Statement::new(sql)
            .bind(app_id)
            .bind_each(ids.iter().copied());
        Ok(query
            .fetch_all::<RawUser>(&self.read)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }

    /// Who holds each of `identifiers` (emails or phone numbers): (identifier, user id).
    pub async fn identifier_owners(
        &self,
        app_id: &str,
        identifiers: &[&str],
    ) -> Result<Vec<(String, String)>, Error> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let list = placeholders(2, identifiers.len());
        let sql = format!(
            "select email, id from users where app_id = $1 and email in ({list})
             union all
             select phone, id from users where app_id = $1 and phone in ({list})"
        );
        let query = Statement::new(sql)
            .bind(app_id)
            .bind_each(identifiers.iter().copied());
        query.fetch_all(&self.read).await
    }

    /// The app's passkeys among `cred_ids`.
    pub async fn passkeys_by_cred_ids(
        &self,
        app_id: &str,
        cred_ids: &[&str],
    ) -> Result<Vec<PasskeyRow>, Error> {
        if cred_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {} from passkeys where app_id = $1 and cred_id in ({})",
            super::passkeys::COLUMNS,
            placeholders(2, cred_ids.len())
        );
        let query = Statement::new(sql)
            .bind(app_id)
            .bind_each(cred_ids.iter().copied());
        Ok(query
            .fetch_all::<RawPasskey>(&self.read)
            .await?
            .into_iter()
            .map(PasskeyRow::from)
            .collect())
    }

    /// A page of the app's users in id order, after `after_id`.
    pub async fn users_after(
        &self,
        app_id: &str,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<User>, Error> {
        let sql = format!(
            "select {} from users where app_id = $1 and id > $2 order by id limit $3",
            super::users::COLUMNS
        );
        let rows: Vec<RawUser> = Statement::new(sql)
            .bind(app_id)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Every field an import carries, over the existing user.
    pub fn update_imported_user(u: &User) -> Filtered {
        Statement::filtered(
            "update users set email = $3, phone = $4, email_verified = $5, phone_verified = $6,
               status = $7, user_metadata = $8, external_id = $9, login_count = $10,
               last_login_at = $11, created_at = $12, updated_at = $13",
            "app_id = $1 and id = $2",
        )
        .text(u.app_id.clone())
        .text(u.id.clone())
        .text(u.email.clone())
        .text(u.phone.clone())
        .int(flag(u.email_verified))
        .int(flag(u.phone_verified))
        .text(u.status.as_str().to_string())
        .text(super::users::metadata_text(u))
        .text(u.external_id.clone())
        .int(u.login_count)
        .int(u.last_login_at)
        .int(u.created_at)
        .int(u.updated_at)
    }

    /// Every field an import carries, over the existing passkey of the same credential id.
    pub fn update_imported_passkey(k: &PasskeyRow) -> Filtered {
        Statement::filtered(
            "update passkeys set user_handle = $3, credential = $4, friendly_name = $5,
               transports = $6, aaguid = $7, backup_eligible = $8, backup_state = $9,
               sign_count = $10, usage_count = $11, last_login_at = $12, updated_at = $13",
            "app_id = $1 and cred_id = $2",
        )
        .text(k.app_id.clone())
        .text(k.cred_id.clone())
        .text(k.user_handle.clone())
        .text(k.credential.clone())
        .text(k.friendly_name.clone())
        .text(super::passkeys::json_list(&k.transports))
        .text(k.aaguid.clone())
        .int(flag(k.backup_eligible))
        .int(flag(k.backup_state))
        .int(k.sign_count)
        .int(k.usage_count)
        .int(k.last_login_at)
        .int(k.updated_at)
    }
}
