//! Magic links. Activation and the cross-device claim are single conditional statements, so
//! of any number of concurrent uses exactly one succeeds.

use super::rows::row_type;
use super::{Filtered, Statement, Store};
use crate::{
    domain::{Channel, LinkKind},
    error::{Error, Resource},
};

row_type! {
    #[derive(Debug, Clone)]
    pub struct MagicLinkRow {
        pub id: String,
        pub app_id: String,
        pub user_id: String,
        pub kind: LinkKind,
        /// Where the link was sent: the identifier it proves.
        pub channel: Channel,
        pub identifier: String,
        pub redirect_url: String,
        pub expires_at: i64,
        pub activated_at: Option<i64>,
        pub claimed_at: Option<i64>,
        pub created_at: i64,
    }
}

const COLUMNS: &str = "id, app_id, user_id, kind, channel, identifier, redirect_url, \
    expires_at, activated_at, claimed_at, created_at";

impl Store {
    /// Stores a link (by digest). A link that changes the user's email or phone is stored
    /// only while no other user of the app holds the new one.
    pub fn insert_magic_link(l: &MagicLinkRow, token_hash: &[u8]) -> Filtered {
        const SQL: &str = "insert into magic_links (id, app_id, user_id, kind, channel, identifier,
               token_hash, redirect_url, expires_at, created_at)
             select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10";
        let condition = if l.kind.changes_identifier() {
            "not exists (select 1 from users
                          where app_id = $2 and id <> $3 and (email = $6 or phone = $6))"
        } else {
            "true"
        };
        Statement::filtered(SQL, condition)
            .text(l.id.clone())
            .text(l.app_id.clone())
            .text(l.user_id.clone())
            .text(l.kind.as_str().to_string())
            .text(l.channel.as_str().to_string())
            .text(l.identifier.clone())
            .blob(token_hash.to_vec())
            .text(l.redirect_url.clone())
            .int(l.expires_at)
            .int(l.created_at)
    }

    pub async fn get_magic_link(&self, app_id: &str, id: &str) -> Result<MagicLinkRow, Error> {
        let sql = format!("select {COLUMNS} from magic_links where app_id = $1 and id = $2");
        Statement::new(sql)
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(Error::NotFound(Resource::MagicLink))
    }

    /// Uses the link with this token digest, once, before it expires; `None` when it is
    /// unknown, used or expired.
    pub async fn activate_magic_link(
        &self,
        app_id: &str,
        token_hash: &[u8],
        now: i64,
    ) -> Result<Option<MagicLinkRow>, Error> {
        let sql = format!(
            "update magic_links set activated_at = $3
              where app_id = $1 and token_hash = $2 and activated_at is null and expires_at > $3
             returning {COLUMNS}"
        );
        Statement::new(sql)
            .bind(app_id)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.write)
            .await
    }

    /// Hands the session of a link activated after `since` to the device that asked for the
    /// link, once; false when it is not activated (in time) or was claimed already.
    pub async fn claim_magic_link(&self, id: &str, since: i64, now: i64) -> Result<bool, Error> {
        let done = Statement::new(
            "update magic_links set claimed_at = $3
              where id = $1 and activated_at > $2 and claimed_at is null",
        )
        .bind(id)
        .bind(since)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(done == 1)
    }

    /// Deletes passcodes, magic links and WebAuthn ceremonies that expired before `before`,
    /// and refresh tokens past their absolute lifetime.
    pub async fn prune_passage_secrets(&self, before: i64) -> Result<u64, Error> {
        let mut pruned = 0;
        for table in ["passcodes", "magic_links", "refresh_tokens", "ceremonies"] {
            let sql = format!("delete from {table} where expires_at < $1");
            pruned += Statement::new(sql)
                .bind(before)
                .execute(&self.write)
                .await?;
        }
        Ok(pruned)
    }
}
