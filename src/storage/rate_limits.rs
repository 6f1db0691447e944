//! Fixed-window throttle counters, shared by every node through the database.

use super::{
    rows::{Column, ColumnError, FromRow, Key, Row},
    Statement, Store,
};
use crate::error::Error;

/// A row read for a verification, with the wrong codes counted against its person in the
/// current failure window (the counter `verify:{tenant}:{subject}`).
#[derive(Debug, Clone)]
pub struct WithFailures<T> {
    pub row: T,
    pub failures: i64,
}

impl<T: FromRow> FromRow for WithFailures<T> {
    fn from_row(row: &dyn Row) -> Result<Self, ColumnError> {
        Ok(WithFailures {
            row: T::from_row(row)?,
            failures: Column::read(row, Key::Name("failures"))?,
        })
    }
}

/// SQL for the failures of the counter named `verify:` `tenant` `:` `subject` (two SQL
/// expressions) in the window starting at parameter `window`.
pub(super) fn failures_column(tenant: &str, subject: &str, window: &str) -> String {
    format!(
        "coalesce((select r.count from rate_counters r
                    where r.bucket = 'verify:' || {tenant} || ':' || {subject}
                      and r.window_start = {window}), 0) as failures"
    )
}

impl Store {
    /// Counts `hits` in `bucket`'s window starting at `window_start`; returns the count
    /// including them.
    pub async fn count_hits(
        &self,
        bucket: &str,
        window_start: i64,
        hits: i64,
    ) -> Result<i64, Error> {
        let (count,): (i64,) = Statement::new(
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

    /// Counts one hit in each of `buckets` (distinct) in the window starting at
    /// `window_start`, in one statement: their counts after it, in the order given.
    pub async fn count_hits_of(
        &self,
        buckets: &[&str],
        window_start: i64,
    ) -> Result<Vec<i64>, Error> {
        let rows: Vec<String> = (0..buckets.len())
            .map(|i| format!("(${}, $1, 1)", i + 2))
            .collect();
        let sql = format!(
            "insert into rate_counters (bucket, window_start, count) values {}
             on conflict (bucket, window_start) do update set count = rate_counters.count + 1
             returning bucket, count",
            rows.join(", ")
        );
        let query = Statement::new(sql)
            .bind(window_start)
            .bind_each(buckets.iter().copied());
        let counted: Vec<(String, i64)> = query.fetch_all(&self.write).await?;
        buckets
            .iter()
            .map(|b| {
                counted
                    .iter()
                    .find(|(bucket, _)| bucket == b)
                    .map(|(_, count)| *count)
                    .ok_or_else(|| Error::Internal(anyhow::anyhow!("rate counter {b} not counted")))
            })
            .collect()
    }

    /// Forgets windows that ended before `before`.
    pub async fn prune_rate_counters(&self, before: i64) -> Result<u64, Error> {
        let done = Statement::new("delete from rate_counters where window_start < $1")
            .bind(before)
            .execute(&self.write)
            .await?;
        Ok(done)
    }
}
