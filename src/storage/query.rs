//! Statements: SQL text with `$1…$n` placeholders and owned values, run by either engine. The
//! text is the same on SQLite and PostgreSQL; `db` chooses where it runs.

use std::borrow::Cow;

use super::{db::Db, rows::FromRow};
use crate::error::Error;

/// A bind value. Kept as owned data so statements can be built before they run (and sent to
/// SQLite's threads).
#[derive(Debug, Clone)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Blob(Option<Vec<u8>>),
}

/// What a Rust value binds as.
pub trait IntoValue {
    fn into_value(self) -> Value;
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(Some(self.to_string()))
    }
}

impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Text(Some(self))
    }
}

impl IntoValue for &String {
    fn into_value(self) -> Value {
        Value::Text(Some(self.clone()))
    }
}

impl IntoValue for Option<&str> {
    fn into_value(self) -> Value {
        Value::Text(self.map(str::to_string))
    }
}

impl IntoValue for Option<String> {
    fn into_value(self) -> Value {
        Value::Text(self)
    }
}

impl IntoValue for &Option<String> {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl IntoValue for i64 {
    fn into_value(self) -> Value {
        Value::Int(Some(self))
    }
}

impl IntoValue for Option<i64> {
    fn into_value(self) -> Value {
        Value::Int(self)
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Value {
        Value::Blob(Some(self.to_vec()))
    }
}

impl IntoValue for Vec<u8> {
    fn into_value(self) -> Value {
        Value::Blob(Some(self))
    }
}

impl IntoValue for &Vec<u8> {
    fn into_value(self) -> Value {
        Value::Blob(Some(self.clone()))
    }
}

/// 0/1 integer flags: portable across both databases.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}

/// One SQL statement with `$1…$n` placeholders and its values.
#[derive(Debug, Clone)]
pub struct Statement {
    pub(super) sql: Cow<'static, str>,
    /// The `where` condition of a [`Filtered`] statement, kept apart so that a chain can add
    /// its own condition to it.
    pub(super) filter: Option<&'static str>,
    pub(super) values: Vec<Value>,
}

/// A statement whose effect is limited by a `where` condition: `update … set …` or
/// `delete from …` with its condition, or `insert into … select …` (condition `true`). Only
/// these can follow the guard of a [`super::Unit::chain`], which adds "the step before
/// applied" to the condition.
#[derive(Debug, Clone)]
pub struct Filtered(pub(super) Statement);

impl Statement {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Statement {
            sql: sql.into(),
            filter: None,
            values: Vec::new(),
        }
    }

    /// `sql` (without `where`) limited to the rows matching `condition`.
    pub fn filtered(sql: &'static str, condition: &'static str) -> Filtered {
        Filtered(Statement {
            sql: sql.into(),
            filter: Some(condition),
            values: Vec::new(),
        })
    }

    pub fn bind(mut self, v: impl IntoValue) -> Self {
        self.values.push(v.into_value());
        self
    }

    /// Binds each of `values` in turn (the list of an `in (…)`).
    pub fn bind_each<V: IntoValue>(self, values: impl IntoIterator<Item = V>) -> Self {
        values.into_iter().fold(self, Statement::bind)
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
        self.values.push(Value::Blob(Some(v)));
        self
    }

    /// The SQL text, its placeholders shifted by `offset`, with `extra` added to its `where`
    /// condition (a chain's "the step before applied").
    pub(super) fn render(&self, offset: usize, extra: Option<&str>, out: &mut String) {
        shift_placeholders(&self.sql, offset, out);
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

    /// The text as it runs on its own.
    pub(super) fn full_text(&self) -> Cow<'_, str> {
        match self.filter {
            None => Cow::Borrowed(&self.sql),
            Some(_) => {
                let mut sql = String::new();
                self.render(0, None, &mut sql);
                Cow::Owned(sql)
            }
        }
    }

    /// Every row the statement answers.
    pub async fn fetch_all<T: FromRow>(self, db: &Db) -> Result<Vec<T>, Error> {
        db.fetch(self, usize::MAX).await
    }

    /// The first row the statement answers, if any.
    pub async fn fetch_optional<T: FromRow>(self, db: &Db) -> Result<Option<T>, Error> {
        Ok(db.fetch(self, 1).await?.into_iter().next())
    }

    /// The first row the statement answers; an internal error when there is none.
    pub async fn fetch_one<T: FromRow>(self, db: &Db) -> Result<T, Error> {
        self.fetch_optional(db)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the query answered no row")))
    }

    /// Runs the statement: the rows it changed.
    pub async fn execute(self, db: &Db) -> Result<u64, Error> {
        db.execute(self).await
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

/// Copies `sql` with every `$n` placeholder outside string literals shifted by `offset`, so
/// the statements of a unit can share one list of values.
pub(super) fn shift_placeholders(sql: &str, offset: usize, out: &mut String) {
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
}
