//! Statements written now and run later, together: a unit of work that must commit as a whole
//! (an OTP and its delivery) in one round trip. On SQLite that holds the single write
//! connection for one hop instead of one per statement; on PostgreSQL it saves the
//! transaction's extra round trips.

use sqlx::{any::AnyArguments, query::Query, Any};

use super::{Backend, Store, Tx};
use crate::error::Error;

/// A bind value. Kept as owned data so statements can be built before they run.
#[derive(Debug, Clone)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Vec<u8>),
}

/// One SQL statement with `$1…$n` placeholders and its values.
#[derive(Debug, Clone)]
pub struct Statement {
    sql: &'static str,
    values: Vec<Value>,
}

impl Statement {
    pub fn new(sql: &'static str) -> Self {
        Statement {
            sql,
            values: Vec::new(),
        }
    }

    pub fn text(mut self, v: impl Into<Option<String>>) -> Self {
        self.values.push(Value::Text(v.into()));
        self
    }

    pub fn int(mut self, v: impl Into<Option<i64>>) -> Self {
        self.values.push(Value::Int(v.into()));
        self
    }

    pub fn blob(mut self, v: Vec<u8>) -> Self {
        self.values.push(Value::Blob(v));
        self
    }

    /// Runs this statement inside a transaction.
    pub async fn execute(self, tx: &mut Tx) -> Result<(), Error> {
        bind_all(sqlx::query(self.sql), self.values)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

fn bind_all<'q>(
    mut q: Query<'q, Any, AnyArguments<'q>>,
    values: Vec<Value>,
) -> Query<'q, Any, AnyArguments<'q>> {
    for v in values {
        q = match v {
            Value::Text(t) => q.bind(t),
            Value::Int(i) => q.bind(i),
            Value::Blob(b) => q.bind(b),
        };
    }
    q
}

/// Shifts every `$n` placeholder of `sql` by `offset`, so statements can share one list of
/// values. Our SQL has no `$` inside string literals.
fn shift_placeholders(sql: &str, offset: usize, out: &mut String) {
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
            n = n * 10 + (d as usize - '0' as usize);
            digits = true;
            chars.next();
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
}

impl Store {
    /// Runs `statements` atomically, in one round trip on either database.
    pub async fn write_all(&self, statements: Vec<Statement>) -> Result<(), Error> {
        let (sql, values) = combine(self.backend, statements);
        let write = self.write.clone();
        // Spawned so that a cancelled request cannot stop half-way (on SQLite that would leave
        // the connection inside an open transaction).
        let done = tokio::spawn(async move {
            let mut conn = write.acquire().await?;
            let result = bind_all(sqlx::query(&sql), values)
                .execute(&mut *conn)
                .await;
            if result.is_err() && sql.starts_with("begin") {
                // A failed statement leaves the SQLite transaction open; close it.
                let _ = sqlx::query("rollback").execute(&mut *conn).await;
            }
            result.map(|_| ())
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(done?)
    }
}

impl Store {
    /// Runs `steps` atomically in one round trip, each only when the one before it changed a
    /// row: the first is the guard (a conditional update that claims something), the others
    /// follow from it. Every step after the first must end in a `where` clause (the condition
    /// is appended to it) and each changes at most one row. True when every step applied.
    pub async fn write_chain(&self, steps: Vec<Statement>) -> Result<bool, Error> {
        let backend = self.backend;
        let (sql, values) = chain(backend, steps);
        let write = self.write.clone();
        // Spawned for the same reason as `write_all`.
        let done = tokio::spawn(async move {
            let mut conn = write.acquire().await?;
            let query = bind_all(sqlx::query(&sql), values);
            // All of the output is read, so that SQLite runs the text through its `commit`.
            let result = query
                .fetch_all(&mut *conn)
                .await
                .map(|rows| !rows.is_empty());
            if result.is_err() && backend == Backend::Sqlite {
                let _ = sqlx::query("rollback").execute(&mut *conn).await;
            }
            result
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(done?)
    }
}

/// The chain's SQL: on SQLite a transaction whose steps test `changes()` (the rows changed
/// by the statement before) and which answers a row when the last step applied; on
/// PostgreSQL CTEs that test the previous step's `returning`.
fn chain(backend: Backend, steps: Vec<Statement>) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut sql = String::new();
    let last = steps.len().saturating_sub(1);
    if backend == Backend::Sqlite {
        sql.push_str("begin immediate;\n");
    }
    for (i, s) in steps.into_iter().enumerate() {
        if backend == Backend::Postgres {
            sql.push_str(if i == 0 { "with " } else { ", " });
            sql.push_str(&format!("step{i} as ("));
        }
        shift_placeholders(s.sql, values.len(), &mut sql);
        values.extend(s.values);
        match (backend, i) {
            (_, 0) => {}
            (Backend::Sqlite, _) => sql.push_str(" and changes() > 0"),
            (Backend::Postgres, _) => {
                sql.push_str(&format!(" and exists (select 1 from step{})", i - 1))
            }
        }
        sql.push_str(if backend == Backend::Sqlite {
            ";\n"
        } else {
            " returning 1)"
        });
    }
    match backend {
        Backend::Sqlite => sql.push_str("select 1 where changes() > 0;\ncommit;"),
        Backend::Postgres => sql.push_str(&format!(" select 1 from step{last}")),
    }
    (sql, values)
}

/// One SQL text for the whole unit: on SQLite a multi-statement transaction, on PostgreSQL
/// one statement whose parts are data-modifying CTEs (a single statement is atomic).
fn combine(backend: Backend, statements: Vec<Statement>) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut sql = String::new();
    match backend {
        Backend::Sqlite => {
            sql.push_str("begin immediate;\n");
            for s in statements {
                shift_placeholders(s.sql, values.len(), &mut sql);
                sql.push_str(";\n");
                values.extend(s.values);
            }
            sql.push_str("commit;");
        }
        Backend::Postgres => {
            for (i, s) in statements.into_iter().enumerate() {
                sql.push_str(if i == 0 { "with " } else { ", " });
                sql.push_str(&format!("part{i} as ("));
                shift_placeholders(s.sql, values.len(), &mut sql);
                sql.push(')');
                values.extend(s.values);
            }
            sql.push_str(" select 1");
        }
    }
    (sql, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_shift() {
        let mut out = String::new();
        shift_placeholders("insert into t values ($1, $2, $10) -- $x", 3, &mut out);
        assert_eq!(out, "insert into t values ($4, $5, $13) -- $x");
    }

    #[test]
    fn units_combine_per_dialect() {
        let parts = || {
            vec![
                Statement::new("insert into a values ($1)").int(1),
                Statement::new("insert into b values ($1, $2)")
                    .int(2)
                    .int(3),
            ]
        };
        let (sql, values) = combine(Backend::Sqlite, parts());
        assert_eq!(
            sql,
            "begin immediate;\ninsert into a values ($1);\ninsert into b values ($2, $3);\ncommit;"
        );
        assert_eq!(values.len(), 3);
        let (sql, _) = combine(Backend::Postgres, parts());
        assert_eq!(
            sql,
            "with part0 as (insert into a values ($1)), part1 as (insert into b values ($2, $3)) select 1"
        );
    }

    #[test]
    fn chains_guard_each_step_by_the_one_before() {
        let steps = || {
            vec![
                Statement::new("update a set x = 1 where id = $1").int(1),
                Statement::new("insert into b select $1 where true").int(2),
            ]
        };
        let (sql, values) = chain(Backend::Sqlite, steps());
        assert_eq!(
            sql,
            "begin immediate;\nupdate a set x = 1 where id = $1;\n\
             insert into b select $2 where true and changes() > 0;\n\
             select 1 where changes() > 0;\ncommit;"
        );
        assert_eq!(values.len(), 2);
        let (sql, _) = chain(Backend::Postgres, steps());
        assert_eq!(
            sql,
            "with step0 as (update a set x = 1 where id = $1 returning 1), \
             step1 as (insert into b select $2 where true and exists (select 1 from step0) returning 1) \
             select 1 from step1"
        );
    }
}
