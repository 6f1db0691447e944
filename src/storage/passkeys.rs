//! Passkeys (WebAuthn credentials).

use super::rows::row_type;
use super::{flag, placeholders, Filtered, Statement, Store, WithUserStatus};
use crate::{
    domain::UserStatus,
    error::{Error, Resource},
};

/// A registered passkey.
#[derive(Debug, Clone)]
pub struct PasskeyRow {
    pub id: String,
    pub app_id: String,
    pub user_id: String,
    pub cred_id: String,
    pub user_handle: String,
    /// The verified credential as JSON.
    pub credential: String,
    pub friendly_name: String,
    pub transports: Vec<String>,
    pub aaguid: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: i64,
    pub risk_signals: Vec<String>,
    pub usage_count: i64,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

row_type! {
    pub(super) struct RawPasskey {
        id: String,
        app_id: String,
        user_id: String,
        cred_id: String,
        user_handle: String,
        credential: String,
        friendly_name: String,
        transports: String,
        aaguid: String,
        backup_eligible: i64,
        backup_state: i64,
        sign_count: i64,
        risk_signals: String,
        usage_count: i64,
        last_login_at: Option<i64>,
        created_at: i64,
        updated_at: i64,
    }
}

impl From<RawPasskey> for PasskeyRow {
    fn from(r: RawPasskey) -> PasskeyRow {
        let list = |json: &str| serde_json::from_str(json).unwrap_or_default();
        PasskeyRow {
            transports: list(&r.transports),
            risk_signals: list(&r.risk_signals),
            id: r.id,
            app_id: r.app_id,
            user_id: r.user_id,
            cred_id: r.cred_id,
            user_handle: r.user_handle,
            credential: r.credential,
            friendly_name: r.friendly_name,
            aaguid: r.aaguid,
            backup_eligible: r.backup_eligible != 0,
            backup_state: r.backup_state != 0,
            sign_count: r.sign_count,
            usage_count: r.usage_count,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What one login changes on the passkey it used.
#[derive(Debug, Clone)]
pub struct PasskeyUse {
    pub credential: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: i64,
    pub risk_signals: Vec<String>,
    pub now: i64,
}

pub(super) const COLUMNS: &str =
    "id, app_id, user_id, cred_id, user_handle, credential, friendly_name, \
    transports, aaguid, backup_eligible, backup_state, sign_count, risk_signals, usage_count, \
    last_login_at, created_at, updated_at";

pub(super) fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

impl Store {
    /// Stores a new passkey; `Conflict` when the app has this credential already.
    pub fn insert_passkey(k: &PasskeyRow) -> Filtered {
        Statement::filtered(
            "insert into passkeys (id, app_id, user_id, cred_id, user_handle, credential,
               friendly_name, transports, aaguid, backup_eligible, backup_state, sign_count,
               risk_signals, usage_count, last_login_at, created_at, updated_at)
             select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17",
            "true",
        )
        .text(k.id.clone())
        .text(k.app_id.clone())
        .text(k.user_id.clone())
        .text(k.cred_id.clone())
        .text(k.user_handle.clone())
        .text(k.credential.clone())
        .text(k.friendly_name.clone())
        .text(json_list(&k.transports))
        .text(k.aaguid.clone())
        .int(flag(k.backup_eligible))
        .int(flag(k.backup_state))
        .int(k.sign_count)
        .text(json_list(&k.risk_signals))
        .int(k.usage_count)
        .int(k.last_login_at)
        .int(k.created_at)
        .int(k.updated_at)
    }

    /// The passkeys of a user, oldest first.
    pub async fn passkeys_of(&self, app_id: &str, user_id: &str) -> Result<Vec<PasskeyRow>, Error> {
        let sql = format!(
            "select {COLUMNS} from passkeys where app_id = $1 and user_id = $2
              order by created_at, id"
        );
        let rows: Vec<RawPasskey> = Statement::new(sql)
            .bind(app_id)
            .bind(user_id)
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(PasskeyRow::from).collect())
    }

    /// The passkeys of several users of one app (a page of the user list).
    pub async fn passkeys_of_users(
        &self,
        app_id: &str,
        user_ids: &[String],
    ) -> Result<Vec<PasskeyRow>, Error> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {COLUMNS} from passkeys where app_id = $1 and user_id in ({})
              order by created_at, id",
            placeholders(2, user_ids.len())
        );
        let query = Statement::new(sql).bind(app_id).bind_each(user_ids);
        let rows: Vec<RawPasskey> = query.fetch_all(&self.read).await?;
        Ok(rows.into_iter().map(PasskeyRow::from).collect())
    }

    /// The app's passkey with this credential id, and its user's status.
    pub async fn passkey_by_cred_id(
        &self,
        app_id: &str,
        cred_id: &str,
    ) -> Result<Option<(PasskeyRow, UserStatus)>, Error> {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("k.{c}")).collect();
        let sql = format!(
            "select {}, u.status as user_status
               from passkeys k join users u on u.id = k.user_id
              where k.app_id = $1 and k.cred_id = $2",
            columns.join(", ")
        );
        let row: Option<WithUserStatus<RawPasskey>> = Statement::new(sql)
            .bind(app_id)
            .bind(cred_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.row.into(), r.user_status)))
    }

    /// Records a login with the passkey `id`: its new counter and flags, and the risk signals
    /// seen so far.
    pub fn record_passkey_use(app_id: &str, id: &str, u: &PasskeyUse) -> Filtered {
        Statement::filtered(
            "update passkeys set credential = $3, backup_eligible = $4, backup_state = $5,
               sign_count = $6, risk_signals = $7, usage_count = usage_count + 1,
               last_login_at = $8, updated_at = $8",
            "app_id = $1 and id = $2",
        )
        .text(app_id.to_string())
        .text(id.to_string())
        .text(u.credential.clone())
        .int(flag(u.backup_eligible))
        .int(flag(u.backup_state))
        .int(u.sign_count)
        .text(json_list(&u.risk_signals))
        .int(u.now)
    }

    /// Records risk signals on the passkey `id` without a login (a login they refused).
    pub async fn set_passkey_risk_signals(
        &self,
        app_id: &str,
        id: &str,
        signals: &[String],
    ) -> Result<(), Error> {
        Statement::new("update passkeys set risk_signals = $3 where app_id = $1 and id = $2")
            .bind(app_id)
            .bind(id)
            .bind(json_list(signals))
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Renames the passkey `id` of `user_id`.
    pub async fn rename_passkey(
        &self,
        app_id: &str,
        user_id: &str,
        id: &str,
        name: &str,
        now: i64,
    ) -> Result<PasskeyRow, Error> {
        let sql = format!(
            "update passkeys set friendly_name = $4, updated_at = $5
              where app_id = $1 and user_id = $2 and id = $3
             returning {COLUMNS}"
        );
        let row: Option<RawPasskey> = Statement::new(sql)
            .bind(app_id)
            .bind(user_id)
            .bind(id)
            .bind(name)
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
        row.map(PasskeyRow::from)
            .ok_or(Error::NotFound(Resource::Device))
    }

    /// Deletes the passkey `id` of `user_id`. Unless `may_be_last`, only while the user keeps
    /// another passkey or a verified email or phone: false when that refused the deletion.
    pub async fn delete_passkey(
        &self,
        app_id: &str,
        user_id: &str,
        id: &str,
        may_be_last: bool,
    ) -> Result<bool, Error> {
        let done = Statement::new(
            "delete from passkeys where app_id = $1 and user_id = $2 and id = $3
               and ($4 = 1
                    or exists (select 1 from passkeys o
                                where o.user_id = $2 and o.app_id = $1 and o.id <> $3)
                    or exists (select 1 from users u
                                where u.id = $2 and u.app_id = $1
                                  and ((u.email is not null and u.email_verified = 1)
                                    or (u.phone is not null and u.phone_verified = 1))))",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(id)
        .bind(flag(may_be_last))
        .execute(&self.write)
        .await?;
        if done == 1 {
            return Ok(true);
        }
        // Refused, or not there at all.
        let exists =
            Statement::new("select 1 from passkeys where app_id = $1 and user_id = $2 and id = $3")
                .bind(app_id)
                .bind(user_id)
                .bind(id)
                .fetch_optional::<(i64,)>(&self.read)
                .await?
                .is_some();
        if exists {
            Ok(false)
        } else {
            Err(Error::NotFound(Resource::Device))
        }
    }
}
