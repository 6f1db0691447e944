//! Units of work: statements written now and committed later as a whole, in one round trip
//! (an OTP and its delivery; a login's claim, its record and its session). On PostgreSQL a
//! unit is one statement of data-modifying CTEs. On SQLite the single writer runs it inside
//! the transaction it shares with the other requests waiting (see `sqlite`).

use sqlx::AnyPool;

use super::{
    db::{bind_all, Db},
    query::{Filtered, Statement, Value},
    Store,
};
use crate::error::Error;

/// The most statements a unit sends PostgreSQL as one statement of CTEs.
const MAX_CTES: usize = 16;

/// Writes that commit together or not at all.
#[derive(Debug, Clone)]
pub struct Unit {
    pub(super) chain: bool,
    pub(super) statements: Vec<Statement>,
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
        let pool = match &self.write {
            Db::SqliteRead(engine) | Db::SqliteWrite(engine) => return engine.commit(unit).await,
            Db::Postgres(pool) => pool.clone(),
        };
        // Spawned so that a cancelled request cannot stop half-way.
        tokio::spawn(async move {
            // A statement of hundreds of CTEs (an import batch) takes PostgreSQL longer to plan
            // than the round trips of a transaction.
            if unit.steps_share_a_table() || unit.statements.len() > MAX_CTES {
                return postgres_transaction(&pool, unit).await;
            }
            let (sql, values) = postgres_text(unit);
            let rows = bind_all(sqlx::query(&sql), &values)
                .fetch_all(&pool)
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
            .filter_map(|s| target(&s.sql))
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
        let done = bind_all(sqlx::query(&sql), &s.values)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
