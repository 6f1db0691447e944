//! Where a statement runs: SQLite's readers or its writer (see `sqlite`), or PostgreSQL's pool.

use std::sync::Arc;

use sqlx::{any::AnyArguments, query::Query, Any, AnyPool};

use super::{
    query::{Statement, Value},
    rows::FromRow,
    sqlite::Engine,
};
use crate::error::Error;

#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite's readers, beside the writer (WAL lets them run in parallel).
    SqliteRead(Arc<Engine>),
    /// SQLite's single writer.
    SqliteWrite(Arc<Engine>),
    Postgres(AnyPool),
}

impl Db {
    pub(super) async fn fetch<T: FromRow>(
        &self,
        statement: Statement,
        limit: usize,
    ) -> Result<Vec<T>, Error> {
        match self {
            Db::SqliteRead(engine) => engine.read(&statement, limit),
            Db::SqliteWrite(engine) => engine.fetch(statement, limit).await,
            Db::Postgres(pool) => {
                let sql = statement.full_text();
                let query = bind_all(sqlx::query(&sql), &statement.values);
                let rows = if limit == 1 {
                    query.fetch_optional(pool).await?.into_iter().collect()
                } else {
                    query.fetch_all(pool).await?
                };
                rows.iter()
                    .take(limit)
                    .map(|row| T::from_row(row).map_err(|e| Error::Internal(e.into())))
                    .collect()
            }
        }
    }

    pub(super) async fn execute(&self, statement: Statement) -> Result<u64, Error> {
        match self {
            Db::SqliteRead(engine) | Db::SqliteWrite(engine) => engine.execute(statement).await,
            Db::Postgres(pool) => {
                let sql = statement.full_text();
                let done = bind_all(sqlx::query(&sql), &statement.values)
                    .execute(pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    }
}

pub(super) fn bind_all<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    values: &[Value],
) -> Query<'q, Any, AnyArguments<'q>> {
    for value in values {
        query = match value {
            Value::Text(v) => query.bind(v.clone()),
            Value::Int(v) => query.bind(*v),
            Value::Blob(v) => query.bind(v.clone()),
        };
    }
    query
}
