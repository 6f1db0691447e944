//! Users of Passage apps. Every query is scoped by app.

use super::rows::row_type;
use serde_json::{Map, Value};

use super::{flag, Filtered, Statement, Store, Unit};
use crate::{
    domain::UserStatus,
    error::{Error, Resource},
};

/// A user of a Passage app.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub app_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub email_verified: bool,
    pub phone_verified: bool,
    pub status: UserStatus,
    pub user_metadata: Map<String, Value>,
    pub external_id: String,
    pub login_count: i64,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many passkeys the user has.
    pub passkeys: i64,
}

row_type! {
    pub(super) struct RawUser {
        id: String,
        app_id: String,
        email: Option<String>,
        phone: Option<String>,
        email_verified: i64,
        phone_verified: i64,
        status: UserStatus,
        user_metadata: Option<String>,
        external_id: String,
        login_count: i64,
        last_login_at: Option<i64>,
        created_at: i64,
        updated_at: i64,
        passkeys: i64,
    }
}

impl From<RawUser> for User {
    fn from(r: RawUser) -> User {
        // Metadata is written only after the schema check; an unreadable value reads as none.
        let user_metadata = r
            .user_metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok())
            .unwrap_or_default();
        User {
            id: r.id,
            app_id: r.app_id,
            email: r.email,
            phone: r.phone,
            email_verified: r.email_verified != 0,
            phone_verified: r.phone_verified != 0,
            status: r.status,
            user_metadata,
            external_id: r.external_id,
            login_count: r.login_count,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            passkeys: r.passkeys,
        }
    }
}

pub(super) fn metadata_text(u: &User) -> Option<String> {
    (!u.user_metadata.is_empty()).then(|| Value::Object(u.user_metadata.clone()).to_string())
}

/// Which users a list shows; empty strings match everything.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only users created before this (epoch ms): pages stay stable while users sign up.
    pub created_before: i64,
    pub identifier: String,
    pub id: String,
    pub status: Option<UserStatus>,
    pub newest_first: bool,
}

pub(super) const COLUMNS: &str =
    "id, app_id, email, phone, email_verified, phone_verified, status, \
    user_metadata, external_id, login_count, last_login_at, created_at, updated_at, \
    (select count(*) from passkeys where passkeys.user_id = users.id) as passkeys";

impl Store {
    /// A new user; `Conflict` when the email or phone is taken.
    pub async fn insert_user(&self, u: &User) -> Result<(), Error> {
        self.commit(Unit::all(vec![Store::new_user(u).into()]))
            .await
            .map(drop)
    }

    /// A new user as a step of a unit (`Conflict` when the email or phone is taken).
    pub fn new_user(u: &User) -> Filtered {
        Statement::filtered(
            "insert into users (id, app_id, email, phone, email_verified, phone_verified, status,
               user_metadata, external_id, login_count, last_login_at, created_at, updated_at)
             select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13",
            "true",
        )
        .text(u.id.clone())
        .text(u.app_id.clone())
        .text(u.email.clone())
        .text(u.phone.clone())
        .int(flag(u.email_verified))
        .int(flag(u.phone_verified))
        .text(u.status.as_str().to_string())
        .text(metadata_text(u))
        .text(u.external_id.clone())
        .int(u.login_count)
        .int(u.last_login_at)
        .int(u.created_at)
        .int(u.updated_at)
    }

    pub async fn get_user(&self, app_id: &str, id: &str) -> Result<User, Error> {
        let sql = format!("select {COLUMNS} from users where app_id = $1 and id = $2");
        let raw: Option<RawUser> = Statement::new(sql)
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        raw.map(User::from).ok_or(Error::NotFound(Resource::User))
    }

    /// The user whose email or phone is `identifier` (normalised), if any.
    pub async fn find_user(&self, app_id: &str, identifier: &str) -> Result<Option<User>, Error> {
        let sql = format!(
            "select {COLUMNS} from users where app_id = $1 and (email = $2 or phone = $2) limit 1"
        );
        let raw: Option<RawUser> = Statement::new(sql)
            .bind(app_id)
            .bind(identifier)
            .fetch_optional(&self.read)
            .await?;
        Ok(raw.map(User::from))
    }

    /// One page of an app's users matching `filter`, and how many match in all.
    pub async fn page_users(
        &self,
        app_id: &str,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<User>, i64), Error> {
        const WHERE: &str = "where app_id = $1 and created_at < $2
              and ($3 = '' or email = $3 or phone = $3) and ($4 = '' or id = $4)
              and ($5 = '' or status = $5)";
        let order = if filter.newest_first { "desc" } else { "asc" };
        let sql = format!(
            "select {COLUMNS} from users {WHERE}
              order by created_at {order}, id {order} limit $6 offset $7"
        );
        let status = filter.status.map_or("", UserStatus::as_str);
        let rows: Vec<RawUser> = Statement::new(sql)
            .bind(app_id)
            .bind(filter.created_before)
            .bind(&filter.identifier)
            .bind(&filter.id)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let (total,): (i64,) = Statement::new(format!("select count(*) from users {WHERE}"))
            .bind(app_id)
            .bind(filter.created_before)
            .bind(&filter.identifier)
            .bind(&filter.id)
            .bind(status)
            .fetch_one(&self.read)
            .await?;
        Ok((rows.into_iter().map(User::from).collect(), total))
    }

    /// Writes a user's editable fields; `NotFound` when it does not exist, `Conflict` when the
    /// new email or phone is taken.
    pub async fn update_user(&self, u: &User) -> Result<(), Error> {
        let done = Statement::new(
            "update users set email = $3, phone = $4, email_verified = $5, phone_verified = $6,
               status = $7, user_metadata = $8, updated_at = $9
             where app_id = $1 and id = $2",
        )
        .bind(&u.app_id)
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.phone)
        .bind(flag(u.email_verified))
        .bind(flag(u.phone_verified))
        .bind(u.status.as_str())
        .bind(metadata_text(u))
        .bind(u.updated_at)
        .execute(&self.write)
        .await?;
        if done == 0 {
            return Err(Error::NotFound(Resource::User));
        }
        Ok(())
    }

    pub async fn set_user_status(
        &self,
        app_id: &str,
        id: &str,
        status: UserStatus,
        now: i64,
    ) -> Result<User, Error> {
        let sql = format!(
            "update users set status = $3, updated_at = $4 where app_id = $1 and id = $2
             returning {COLUMNS}"
        );
        let raw: Option<RawUser> = Statement::new(sql)
            .bind(app_id)
            .bind(id)
            .bind(status.as_str())
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
        raw.map(User::from).ok_or(Error::NotFound(Resource::User))
    }

    pub async fn delete_user(&self, app_id: &str, id: &str) -> Result<(), Error> {
        let done = Statement::new("delete from users where app_id = $1 and id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&self.write)
            .await?;
        if done == 0 {
            return Err(Error::NotFound(Resource::User));
        }
        Ok(())
    }

    /// Deletes users still pending (their identifier never verified) created before
    /// `created_before`: abandoned sign-ups, which would otherwise hold their identifier.
    pub async fn prune_pending_users(&self, created_before: i64) -> Result<u64, Error> {
        let done = Statement::new("delete from users where status = 'pending' and created_at < $1")
            .bind(created_before)
            .execute(&self.write)
            .await?;
        Ok(done)
    }
}
