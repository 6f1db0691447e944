//! Users of Passage apps. Every query is scoped by app.

use super::Store;
use crate::error::Error;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub app_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub email_verified: i64,
    pub phone_verified: i64,
    /// `active`, `inactive` or `pending`.
    pub status: String,
    /// JSON object, when any.
    pub user_metadata: Option<String>,
    pub external_id: String,
    pub login_count: i64,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which users a list shows; empty strings match everything.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Only users created before this (epoch ms): pages stay stable while users sign up.
    pub created_before: i64,
    pub identifier: String,
    pub id: String,
    pub status: String,
    pub newest_first: bool,
}

const COLUMNS: &str = "id, app_id, email, phone, email_verified, phone_verified, status, \
    user_metadata, external_id, login_count, last_login_at, created_at, updated_at";

impl Store {
    pub async fn insert_user(&self, u: &UserRow) -> Result<(), Error> {
        sqlx::query(
            "insert into users (id, app_id, email, phone, email_verified, phone_verified, status,
               user_metadata, external_id, login_count, last_login_at, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&u.id)
        .bind(&u.app_id)
        .bind(&u.email)
        .bind(&u.phone)
        .bind(u.email_verified)
        .bind(u.phone_verified)
        .bind(&u.status)
        .bind(&u.user_metadata)
        .bind(&u.external_id)
        .bind(u.login_count)
        .bind(u.last_login_at)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn get_user(&self, app_id: &str, id: &str) -> Result<UserRow, Error> {
        let sql = format!("select {COLUMNS} from users where app_id = $1 and id = $2");
        sqlx::query_as(&sql)
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The user whose email or phone is `identifier` (normalised), if any.
    pub async fn find_user(
        &self,
        app_id: &str,
        identifier: &str,
    ) -> Result<Option<UserRow>, Error> {
        let sql = format!(
            "select {COLUMNS} from users where app_id = $1 and (email = $2 or phone = $2) limit 1"
        );
        Ok(sqlx::query_as(&sql)
            .bind(app_id)
            .bind(identifier)
            .fetch_optional(&self.read)
            .await?)
    }

    /// One page of an app's users matching `filter`, and how many match in all.
    pub async fn page_users(
        &self,
        app_id: &str,
        filter: &UserFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<UserRow>, i64), Error> {
        const WHERE: &str = "where app_id = $1 and created_at < $2
              and ($3 = '' or email = $3 or phone = $3) and ($4 = '' or id = $4)
              and ($5 = '' or status = $5)";
        let order = if filter.newest_first { "desc" } else { "asc" };
        let sql = format!(
            "select {COLUMNS} from users {WHERE}
              order by created_at {order}, id {order} limit $6 offset $7"
        );
        let rows = sqlx::query_as(&sql)
            .bind(app_id)
            .bind(filter.created_before)
            .bind(&filter.identifier)
            .bind(&filter.id)
            .bind(&filter.status)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.read)
            .await?;
        let (total,): (i64,) = sqlx::query_as(&format!("select count(*) from users {WHERE}"))
            .bind(app_id)
            .bind(filter.created_before)
            .bind(&filter.identifier)
            .bind(&filter.id)
            .bind(&filter.status)
            .fetch_one(&self.read)
            .await?;
        Ok((rows, total))
    }

    /// Writes a user's editable fields; `NotFound` when it does not exist.
    pub async fn update_user(&self, u: &UserRow) -> Result<(), Error> {
        let done = sqlx::query(
            "update users set email = $3, phone = $4, email_verified = $5, phone_verified = $6,
               status = $7, user_metadata = $8, updated_at = $9
             where app_id = $1 and id = $2",
        )
        .bind(&u.app_id)
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.phone)
        .bind(u.email_verified)
        .bind(u.phone_verified)
        .bind(&u.status)
        .bind(&u.user_metadata)
        .bind(u.updated_at)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    pub async fn set_user_status(
        &self,
        app_id: &str,
        id: &str,
        status: &str,
        now: i64,
    ) -> Result<UserRow, Error> {
        let sql = format!(
            "update users set status = $3, updated_at = $4 where app_id = $1 and id = $2
             returning {COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(app_id)
            .bind(id)
            .bind(status)
            .bind(now)
            .fetch_optional(&self.write)
            .await?
            .ok_or(Error::NotFound)
    }

    pub async fn delete_user(&self, app_id: &str, id: &str) -> Result<(), Error> {
        let done = sqlx::query("delete from users where app_id = $1 and id = $2")
            .bind(app_id)
            .bind(id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// The SHA-256 of an app's API key, for comparison in constant time.
    pub async fn app_key_hash(&self, app_id: &str) -> Result<Option<Vec<u8>>, Error> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("select api_key_hash from passage_apps where id = $1")
                .bind(app_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(h,)| h))
    }
}
