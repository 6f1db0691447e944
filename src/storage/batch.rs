//! Statements written now and run later, together: a unit of work that must commit as a whole
//! (an OTP and its delivery) in one round trip. On PostgreSQL a unit is one statement of
//! data-modifying CTEs. On SQLite, whose single writer every write waits for, the units that
//! arrive together share one transaction (a group commit), each keeping its own outcome.

use sqlx::{any::AnyArguments, query::Query, Any, AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{Store, Tx};
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

/// A unit of work: statements that commit together, or a chain of guarded steps.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    chain: bool,
    statements: Vec<Statement>,
}

impl Store {
    /// Runs `statements` atomically, in one round trip on either database.
    pub async fn write_all(&self, statements: Vec<Statement>) -> Result<(), Error> {
        self.write_unit(Unit {
            chain: false,
            statements,
        })
        .await
        .map(|_| ())
    }

    /// Runs `steps` atomically in one round trip, each only when the one before it changed a
    /// row: the first is the guard (a conditional update that claims something), the others
    /// follow from it. Every step after the first must end in a `where` clause (the condition
    /// is appended to it) and each changes at most one row. True when every step applied.
    pub async fn write_chain(&self, steps: Vec<Statement>) -> Result<bool, Error> {
        self.write_unit(Unit {
            chain: true,
            statements: steps,
        })
        .await
    }

    async fn write_unit(&self, unit: Unit) -> Result<bool, Error> {
        if let Some(group) = &self.group {
            return group.submit(unit).await;
        }
        let (sql, values) = postgres_text(unit);
        let write = self.write.clone();
        // Spawned so that a cancelled request cannot stop half-way.
        let done = tokio::spawn(async move {
            let mut conn = write.acquire().await?;
            let rows = bind_all(sqlx::query(&sql), values)
                .fetch_all(&mut *conn)
                .await?;
            Ok::<_, sqlx::Error>(!rows.is_empty())
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        Ok(done?)
    }
}

/// One PostgreSQL statement for the unit (a single statement is atomic): its parts are
/// data-modifying CTEs; a chain's steps test the previous step's `returning`. It answers a
/// row when the unit (a chain: its last step) applied.
fn postgres_text(unit: Unit) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut sql = String::new();
    let last = unit.statements.len().saturating_sub(1);
    for (i, s) in unit.statements.into_iter().enumerate() {
        sql.push_str(if i == 0 { "with " } else { ", " });
        sql.push_str(&format!("step{i} as ("));
        shift_placeholders(s.sql, values.len(), &mut sql);
        values.extend(s.values);
        if unit.chain {
            if i > 0 {
                sql.push_str(&format!(" and exists (select 1 from step{})", i - 1));
            }
            sql.push_str(" returning 1");
        }
        sql.push(')');
    }
    if unit.chain {
        sql.push_str(&format!(" select 1 from step{last}"));
    } else {
        sql.push_str(" select 1");
    }
    (sql, values)
}

/// The SQLite text of several units in one transaction. After each unit a `select` answers
/// the unit's index when it applied (a chain's steps test `changes()`, the rows changed by
/// the statement before).
fn sqlite_text(units: &[&Unit]) -> (String, Vec<Value>) {
    let mut values = Vec::new();
    let mut sql = String::from("begin immediate;\n");
    for (index, unit) in units.iter().enumerate() {
        for (i, s) in unit.statements.iter().enumerate() {
            shift_placeholders(s.sql, values.len(), &mut sql);
            values.extend(s.values.iter().cloned());
            if unit.chain && i > 0 {
                sql.push_str(" and changes() > 0");
            }
            sql.push_str(";\n");
        }
        let applied = if unit.chain {
            " where changes() > 0"
        } else {
            ""
        };
        sql.push_str(&format!("select {index}{applied};\n"));
    }
    sql.push_str("commit;");
    (sql, values)
}

/// SQLite's writer: units that arrive while a transaction runs are committed together in the
/// next one, so a busy server pays the single writer's hand-off once per group instead of
/// once per unit. A failing group is rolled back and its units run one by one, so each unit
/// gets its own outcome.
#[derive(Debug)]
pub(super) struct GroupWriter {
    queue: mpsc::UnboundedSender<(Unit, oneshot::Sender<Result<bool, Error>>)>,
}

/// Most units committed in one transaction.
const GROUP_MAX: usize = 32;

impl GroupWriter {
    pub(super) fn start(pool: AnyPool) -> GroupWriter {
        let (queue, mut units) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut group = Vec::new();
            while units.recv_many(&mut group, GROUP_MAX).await > 0 {
                commit_group(&pool, std::mem::take(&mut group)).await;
            }
        });
        GroupWriter { queue }
    }

    async fn submit(&self, unit: Unit) -> Result<bool, Error> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send((unit, reply))
            .map_err(|_| Error::Internal(anyhow::anyhow!("the database writer has stopped")))?;
        outcome
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the database writer has stopped")))?
    }
}

type Pending = (Unit, oneshot::Sender<Result<bool, Error>>);

async fn commit_group(pool: &AnyPool, group: Vec<Pending>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            for (_, reply) in group {
                let _ = reply.send(Err(Error::Internal(anyhow::anyhow!("database: {e}"))));
            }
            return;
        }
    };
    if group.len() > 1 {
        let units: Vec<&Unit> = group.iter().map(|(u, _)| u).collect();
        let (sql, values) = sqlite_text(&units);
        // Group texts vary: not worth a place in the prepared-statement cache.
        let query = bind_all(sqlx::query(&sql), values).persistent(false);
        match query.fetch_all(&mut *conn).await {
            Ok(rows) => {
                let applied: Vec<i64> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
                for (index, (_, reply)) in group.into_iter().enumerate() {
                    let _ = reply.send(Ok(applied.contains(&(index as i64))));
                }
                return;
            }
            Err(_) => {
                let _ = sqlx::query("rollback").execute(&mut *conn).await;
            }
        }
    }
    for (unit, reply) in group {
        let (sql, values) = sqlite_text(&[&unit]);
        let outcome = match bind_all(sqlx::query(&sql), values)
            .fetch_all(&mut *conn)
            .await
        {
            Ok(rows) => Ok(!rows.is_empty()),
            Err(e) => {
                let _ = sqlx::query("rollback").execute(&mut *conn).await;
                Err(e.into())
            }
        };
        let _ = reply.send(outcome);
    }
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

    fn unit(chain: bool) -> Unit {
        Unit {
            chain,
            statements: vec![
                Statement::new("update a set x = 1 where id = $1").int(1),
                Statement::new("insert into b select $1, $2 where true")
                    .int(2)
                    .int(3),
            ],
        }
    }

    #[test]
    fn units_on_postgres_are_one_statement() {
        let (sql, values) = postgres_text(unit(false));
        assert_eq!(
            sql,
            "with step0 as (update a set x = 1 where id = $1), \
             step1 as (insert into b select $2, $3 where true) select 1"
        );
        assert_eq!(values.len(), 3);
        let (sql, _) = postgres_text(unit(true));
        assert_eq!(
            sql,
            "with step0 as (update a set x = 1 where id = $1 returning 1), \
             step1 as (insert into b select $2, $3 where true and exists (select 1 from step0) \
             returning 1) select 1 from step1"
        );
    }

    #[test]
    fn units_on_sqlite_share_a_transaction_and_report_each_outcome() {
        let (all, chain) = (unit(false), unit(true));
        let (sql, values) = sqlite_text(&[&all, &chain]);
        assert_eq!(
            sql,
            "begin immediate;\n\
             update a set x = 1 where id = $1;\n\
             insert into b select $2, $3 where true;\n\
             select 0;\n\
             update a set x = 1 where id = $4;\n\
             insert into b select $5, $6 where true and changes() > 0;\n\
             select 1 where changes() > 0;\n\
             commit;"
        );
        assert_eq!(values.len(), 6);
    }
}
