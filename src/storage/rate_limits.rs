//! Fixed-window throttle counters, shared by every node through the database.

use super::Store;
use crate::error::Error;

impl Store {
    /// Counts `hits` in `bucket`'s window starting at `window_start`; returns the count
    /// including them.
    pub async fn count_hits(
        &self,
        bucket: &str,
        window_start: i64,
        hits: i64,
    ) -> Result<i64, Error> {
        let (count,): (i64,) = sqlx::query_as(
            "insert into rate_counters (bucket, window_start, count) values ($1, $2, $3)
             on conflict (bucket, window_start) do update set count = rate_counters.count + $3
             returning count",
        )
        .bind(bucket)
        .bind(window_start)
        .bind(hits)
        .fetch_one(&self.write)
        .await?;
        Ok(count)
    }

    /// Forgets windows that ended before `before`.
    pub async fn prune_rate_counters(&self, before: i64) -> Result<u64, Error> {
        let done = sqlx::query("delete from rate_counters where window_start < $1")
            .bind(before)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
