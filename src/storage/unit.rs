//! Units of work: statements written now and committed later as a whole, in one round trip
//! (an OTP and its delivery; a login's claim, its record and its session). On PostgreSQL a
//! unit is one statement of data-modifying CTEs. On SQLite, whose single writer every write
//! waits for, the units that arrive together share one transaction (a group commit), each
//! keeping its own outcome.

use sqlx::{any::AnyArguments, pool::PoolConnection, query::Query, Any, AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{dialect::WalLimit, Store};
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
    /// The `where` condition of a [`Filtered`] statement, kept apart so that a chain can add
    /// its own condition to it.
    filter: Option<&'static str>,
    values: Vec<Value>,
}

/// A statement whose effect is limited by a `where` condition: `update … set …` or
/// `delete from …` with its condition, or `insert into … select …` (condition `true`). Only
/// these can follow the guard of a [`Unit::chain`], which adds "the step before applied" to
/// the condition.
#[derive(Debug, Clone)]
pub struct Filtered(Statement);

impl Statement {
    pub fn new(sql: &'static str) -> Self {
        Statement {
            sql,
            filter: None,
            values: Vec::new(),
        }
    }

    /// `sql` (without `where`) limited to the rows matching `condition`.
    pub fn filtered(sql: &'static str, condition: &'static str) -> Filtered {
        Filtered(Statement {
            sql,
            filter: Some(condition),
            values: Vec::new(),
        })
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

    /// The SQL text, its placeholders shifted by `offset`, with `extra` added to its `where`
    /// condition (a chain's "the step before applied").
    fn render(&self, offset: usize, extra: Option<&str>, out: &mut String) {
        shift_placeholders(self.sql, offset, out);
        match (self.filter, extra) {
            (Some(filter), Some(extra)) => {
                out.push_str(" where (");
                shift_placeholders(filter, offset, out);
                out.push_str(") and ");
                out.push_str(extra);
            }
            (Some(filter), None) => {
                out.push_str(" where ");
                shift_placeholders(filter, offset, out);
            }
            (None, _) => {}
        }
    }
}

impl Filtered {
    pub fn text(self, v: impl Into<Option<String>>) -> Self {
        Filtered(self.0.text(v))
    }

    pub fn int(self, v: impl Into<Option<i64>>) -> Self {
        Filtered(self.0.int(v))
    }

    pub fn blob(self, v: Vec<u8>) -> Self {
        Filtered(self.0.blob(v))
    }
}

impl From<Filtered> for Statement {
    fn from(f: Filtered) -> Statement {
        f.0
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

/// Copies `sql` with every `$n` placeholder outside string literals shifted by `offset`, so
/// the statements of a unit can share one list of values.
fn shift_placeholders(sql: &str, offset: usize, out: &mut String) {
    let mut chars = sql.chars().peekable();
    let mut in_literal = false;
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\'' {
            in_literal = !in_literal;
        }
        if c != '$' || in_literal {
            continue;
        }
        let mut n = 0usize;
        let mut digits = false;
        while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
            n = n * 10 + (d as usize - '0' as usize);
            digits = true;
            chars.next();
        }
        if digits {
            out.push_str(&(n + offset).to_string());
        }
    }
}

/// The most statements a unit sends PostgreSQL as one statement of CTEs.
const MAX_CTES: usize = 16;

/// Writes that commit together or not at all.
#[derive(Debug, Clone)]
pub struct Unit {
    chain: bool,
    statements: Vec<Statement>,
}

impl Unit {
    /// Statements that all run.
    pub fn all(statements: Vec<Statement>) -> Unit {
        Unit {
            chain: false,
            statements,
        }
    }

    /// A guard (a conditional write that claims something: a passcode, a rotation) and the
    /// steps that follow from it, each run only when the one before it changed a row.
    pub fn chain(guard: Statement, then: Vec<Filtered>) -> Unit {
        let mut statements = vec![guard];
        statements.extend(then.into_iter().map(Statement::from));
        Unit {
            chain: true,
            statements,
        }
    }

    /// Adds a statement that runs with the others (in a chain: after the last step, when it
    /// applied).
    pub fn then(mut self, statement: Filtered) -> Unit {
        self.statements.push(statement.into());
        self
    }
}

impl Store {
    /// Commits `unit` atomically, in one round trip on either database. True when it applied:
    /// always for [`Unit::all`]; for a chain, when every step changed a row.
    pub async fn commit(&self, unit: Unit) -> Result<bool, Error> {
        if let Some(group) = &self.group {
            return group.submit(unit).await;
        }
        let write = self.write.clone();
        // Spawned so that a cancelled request cannot stop half-way.
        tokio::spawn(async move {
            // A statement of hundreds of CTEs (an import batch) takes PostgreSQL longer to plan
            // than the round trips of a transaction.
            if unit.steps_share_a_table() || unit.statements.len() > MAX_CTES {
                return postgres_transaction(&write, unit).await;
            }
            let (sql, values) = postgres_text(unit);
            let mut conn = write.acquire().await?;
            let rows = bind_all(sqlx::query(&sql), values)
                .fetch_all(&mut *conn)
                .await?;
            Ok(!rows.is_empty())
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?
    }
}

impl Unit {
    /// Whether a step changes rows of a table an earlier step wrote (or inserts where one
    /// deleted). One PostgreSQL statement runs its parts on one snapshot: such a step would not
    /// see the earlier change (and a second change of one row is dropped), so these units run
    /// step by step. Inserting beside an earlier change needs no such care. Subqueries see
    /// the database as the unit found it.
    fn steps_share_a_table(&self) -> bool {
        let writes: Vec<(&str, Write)> = self
            .statements
            .iter()
            .filter_map(|s| target(s.sql))
            .collect();
        writes.iter().enumerate().any(|(i, (table, earlier))| {
            writes[i + 1..].iter().any(|(other, later)| {
                other == table && (*later != Write::Insert || *earlier == Write::Delete)
            })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Insert,
    Update,
    Delete,
}

/// The table a statement writes, and how.
fn target(sql: &str) -> Option<(&str, Write)> {
    let mut words = sql.split_whitespace();
    let (write, table) = match words.next()? {
        "insert" => (Write::Insert, words.nth(1)?),
        "delete" => (Write::Delete, words.nth(1)?),
        "update" => (Write::Update, words.next()?),
        _ => return None,
    };
    let table = table.split('(').next().unwrap_or(table);
    Some((table, write))
}

/// A unit as a transaction of its statements, each seeing the changes of the ones before;
/// a chain stops at the first step that changes nothing (what applied before it stays, as in
/// the one-statement form).
async fn postgres_transaction(pool: &AnyPool, unit: Unit) -> Result<bool, Error> {
    let mut tx = pool.begin().await?;
    let mut applied = true;
    for s in unit.statements {
        let mut sql = String::new();
        s.render(0, None, &mut sql);
        let done = bind_all(sqlx::query(&sql), s.values)
            .execute(&mut *tx)
            .await?;
        if unit.chain && done.rows_affected() == 0 {
            applied = false;
            break;
        }
    }
    tx.commit().await?;
    Ok(applied)
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
        let applied = format!("exists (select 1 from step{})", i.saturating_sub(1));
        let extra = (unit.chain && i > 0).then_some(applied.as_str());
        s.render(values.len(), extra, &mut sql);
        values.extend(s.values);
        if unit.chain {
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
            let extra = (unit.chain && i > 0).then_some("changes() > 0");
            s.render(values.len(), extra, &mut sql);
            values.extend(s.values.iter().cloned());
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
    pub(super) fn start(pool: AnyPool, mut wal: Option<WalLimit>) -> GroupWriter {
        let (queue, mut units) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut group = Vec::new();
            while units.recv_many(&mut group, GROUP_MAX).await > 0 {
                let Some(mut conn) = acquire(&pool, &mut group).await else {
                    continue;
                };
                commit_group(&mut conn, std::mem::take(&mut group)).await;
                if let Some(wal) = &mut wal {
                    wal.keep_bounded(&mut conn).await;
                }
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

/// The writer connection; when there is none, every unit of `group` is told so.
async fn acquire(pool: &AnyPool, group: &mut Vec<Pending>) -> Option<PoolConnection<Any>> {
    match pool.acquire().await {
        Ok(conn) => Some(conn),
        Err(e) => {
            for (_, reply) in group.drain(..) {
                let _ = reply.send(Err(Error::Internal(anyhow::anyhow!("database: {e}"))));
            }
            None
        }
    }
}

async fn commit_group(conn: &mut sqlx::AnyConnection, group: Vec<Pending>) {
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
        shift_placeholders(
            "insert into t values ($1, $2, $10, '$1') -- $x",
            3,
            &mut out,
        );
        assert_eq!(out, "insert into t values ($4, $5, $13, '$1') -- $x");
    }

    fn unit(chain: bool) -> Unit {
        let guard = Statement::new("update a set x = 1 where id = $1").int(1);
        let then = Statement::filtered("insert into b select $1, $2", "true")
            .int(2)
            .int(3);
        if chain {
            Unit::chain(guard, vec![then])
        } else {
            Unit::all(vec![guard, then.into()])
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
             step1 as (insert into b select $2, $3 where (true) and exists (select 1 from step0) \
             returning 1) select 1 from step1"
        );
    }

    #[test]
    fn units_that_change_a_table_twice_are_told_apart() {
        let update = || Statement::new("update a set x = 1 where id = $1");
        let insert = || Statement::new("insert into a values ($1)");
        let other = Statement::new("update b set x = 1 where id = $1");
        let delete = || Statement::new("delete from a where id = $1");
        assert!(Unit::all(vec![update(), update()]).steps_share_a_table());
        assert!(Unit::all(vec![insert(), update()]).steps_share_a_table());
        assert!(Unit::all(vec![delete(), insert()]).steps_share_a_table());
        // A rotation: the old row changes, a new row is inserted beside it.
        assert!(!Unit::all(vec![update(), insert()]).steps_share_a_table());
        assert!(!Unit::all(vec![insert(), insert(), other]).steps_share_a_table());
        assert_eq!(target("delete from a where x"), Some(("a", Write::Delete)));
        assert_eq!(
            target(" insert into b(x) values (1)"),
            Some(("b", Write::Insert))
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
             insert into b select $5, $6 where (true) and changes() > 0;\n\
             select 1 where changes() > 0;\n\
             commit;"
        );
        assert_eq!(values.len(), 6);
    }
}
