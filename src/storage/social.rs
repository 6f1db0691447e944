//! Social login: an app's providers (connections) and its users' identities at them (links).

use super::rows::row_type;
use super::{placeholders, Filtered, Statement, Store, User, WithUserStatus};
use crate::{domain::UserStatus, error::Error};

row_type! {
    /// A provider an app logs in with.
    #[derive(Debug, Clone)]
    pub struct SocialConnectionRow {
        pub app_id: String,
        pub connection_type: String,
        /// JSON settings (client id, issuer or endpoints).
        pub settings: String,
        pub secret_sealed: Vec<u8>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

row_type! {
    /// A user's identity at a provider.
    #[derive(Debug, Clone)]
    pub struct SocialLinkRow {
        pub app_id: String,
        pub user_id: String,
        pub connection_type: String,
        pub provider_id: String,
        pub provider_identifier: String,
        pub created_at: i64,
        pub last_login_at: i64,
    }
}

const LINK_COLUMNS: &str =
    "app_id, user_id, connection_type, provider_id, provider_identifier, created_at, last_login_at";

impl Store {
    /// Creates or replaces the connection; true when it is new.
    pub async fn put_social_connection(&self, c: &SocialConnectionRow) -> Result<bool, Error> {
        let replaced = Statement::new(
            "update social_connections set settings = $3, secret_sealed = $4, updated_at = $5
              where app_id = $1 and connection_type = $2",
        )
        .bind(&c.app_id)
        .bind(&c.connection_type)
        .bind(&c.settings)
        .bind(&c.secret_sealed)
        .bind(c.updated_at)
        .execute(&self.write)
        .await?;
        if replaced > 0 {
            return Ok(false);
        }
        Statement::new(
            "insert into social_connections
               (app_id, connection_type, settings, secret_sealed, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.app_id)
        .bind(&c.connection_type)
        .bind(&c.settings)
        .bind(&c.secret_sealed)
        .bind(c.created_at)
        .bind(c.updated_at)
        .execute(&self.write)
        .await?;
        Ok(true)
    }

    /// Removes the connection; false when there was none. Users keep their links, which
    /// work again if the connection comes back.
    pub async fn delete_social_connection(
        &self,
        app_id: &str,
        connection_type: &str,
    ) -> Result<bool, Error> {
        let done = Statement::new(
            "delete from social_connections where app_id = $1 and connection_type = $2",
        )
        .bind(app_id)
        .bind(connection_type)
        .execute(&self.write)
        .await?;
        Ok(done > 0)
    }

    /// The app's connections, by type.
    pub async fn social_connections(
        &self,
        app_id: &str,
    ) -> Result<Vec<SocialConnectionRow>, Error> {
        Statement::new(
            "select app_id, connection_type, settings, secret_sealed, created_at, updated_at
               from social_connections where app_id = $1 order by connection_type",
        )
        .bind(app_id)
        .fetch_all(&self.read)
        .await
    }

    /// Links a provider identity to a user; with a guard before it, only when that applied.
    pub fn insert_social_link(l: &SocialLinkRow) -> Filtered {
        Statement::filtered(
            "insert into social_links (app_id, user_id, connection_type, provider_id,
               provider_identifier, created_at, last_login_at)
             select $1, $2, $3, $4, $5, $6, $7",
            "true",
        )
        .text(l.app_id.clone())
        .text(l.user_id.clone())
        .text(l.connection_type.clone())
        .text(l.provider_id.clone())
        .text(l.provider_identifier.clone())
        .int(l.created_at)
        .int(l.last_login_at)
    }

    /// Records a login through a linked identity.
    pub fn touch_social_link(
        app_id: &str,
        connection_type: &str,
        provider_id: &str,
        provider_identifier: &str,
        now: i64,
    ) -> Filtered {
        Statement::filtered(
            "update social_links set last_login_at = $5, provider_identifier = $4",
            "app_id = $1 and connection_type = $2 and provider_id = $3",
        )
        .text(app_id.to_string())
        .text(connection_type.to_string())
        .text(provider_id.to_string())
        .text(provider_identifier.to_string())
        .int(now)
    }

    /// The user a provider identity is linked to, with the user's status.
    pub async fn social_link(
        &self,
        app_id: &str,
        connection_type: &str,
        provider_id: &str,
    ) -> Result<Option<(SocialLinkRow, UserStatus)>, Error> {
        let columns: Vec<String> = LINK_COLUMNS.split(", ").map(|c| format!("l.{c}")).collect();
        let sql = format!(
            "select {}, u.status as user_status
               from social_links l join users u on u.id = l.user_id
              where l.app_id = $1 and l.connection_type = $2 and l.provider_id = $3",
            columns.join(", ")
        );
        let row: Option<WithUserStatus<SocialLinkRow>> = Statement::new(sql)
            .bind(app_id)
            .bind(connection_type)
            .bind(provider_id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.row, r.user_status)))
    }

    /// The identities of several users of one app, by user.
    pub async fn social_links_of(
        &self,
        app_id: &str,
        users: &[&User],
    ) -> Result<Vec<SocialLinkRow>, Error> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "select {LINK_COLUMNS} from social_links where app_id = $1 and user_id in ({})
              order by connection_type",
            placeholders(2, users.len())
        );
        let query = Statement::new(sql)
            .bind(app_id)
            .bind_each(users.iter().map(|u| &u.id));
        query.fetch_all(&self.read).await
    }

    /// Unlinks the user's identity at `connection_type`; false when there was none.
    pub async fn delete_social_link(
        &self,
        app_id: &str,
        user_id: &str,
        connection_type: &str,
    ) -> Result<bool, Error> {
        let done = Statement::new(
            "delete from social_links
              where app_id = $1 and user_id = $2 and connection_type = $3",
        )
        .bind(app_id)
        .bind(user_id)
        .bind(connection_type)
        .execute(&self.write)
        .await?;
        Ok(done > 0)
    }
}
