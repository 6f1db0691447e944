//! Rows as both engines answer them: a row type names its columns once (`row_type!`) and
//! reads them the same way from a SQLite row and a PostgreSQL one. Text columns decode into
//! domain enums here, so no status string travels past the storage layer.

use crate::domain::{Channel, LinkKind, OtpStatus, UserStatus, Via};

/// A column by name or by position.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    Name(&'a str),
    Index(usize),
}

/// A column that could not be read as the type asked for.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct ColumnError {
    pub column: String,
    pub reason: String,
}

impl ColumnError {
    pub fn new(key: Key<'_>, reason: impl std::fmt::Display) -> ColumnError {
        let column = match key {
            Key::Name(name) => name.to_string(),
            Key::Index(i) => format!("#{i}"),
        };
        ColumnError {
            column,
            reason: reason.to_string(),
        }
    }
}

/// One answered row, read column by column in the three storage types.
pub trait Row {
    fn int(&self, key: Key<'_>) -> Result<Option<i64>, ColumnError>;
    fn text(&self, key: Key<'_>) -> Result<Option<String>, ColumnError>;
    fn blob(&self, key: Key<'_>) -> Result<Option<Vec<u8>>, ColumnError>;
}

/// A Rust value read from one column.
pub trait Column: Sized {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError>;
}

/// A value read from a whole row.
pub trait FromRow: Sized + Send + 'static {
    fn from_row(row: &dyn Row) -> Result<Self, ColumnError>;
}

fn present<T>(value: Option<T>, key: Key<'_>) -> Result<T, ColumnError> {
    value.ok_or_else(|| ColumnError::new(key, "null"))
}

impl Column for Option<i64> {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        row.int(key)
    }
}

impl Column for i64 {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        present(row.int(key)?, key)
    }
}

impl Column for Option<String> {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        row.text(key)
    }
}

impl Column for String {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        present(row.text(key)?, key)
    }
}

impl Column for Option<Vec<u8>> {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        row.blob(key)
    }
}

impl Column for Vec<u8> {
    fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
        present(row.blob(key)?, key)
    }
}

macro_rules! text_column {
    ($($t:ty: $parse:expr),*) => {$(
        impl Column for $t {
            fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
                let text = String::read(row, key)?;
                $parse(&text).ok_or_else(|| {
                    ColumnError::new(key, format!(concat!("`{}` is not a ", stringify!($t)), text))
                })
            }
        }

        impl Column for Option<$t> {
            fn read(row: &dyn Row, key: Key<'_>) -> Result<Self, ColumnError> {
                match row.text(key)? {
                    None => Ok(None),
                    Some(_) => <$t as Column>::read(row, key).map(Some),
                }
            }
        }
    )*};
}

text_column!(
    UserStatus: UserStatus::parse,
    LinkKind: LinkKind::parse,
    Channel: Channel::parse,
    OtpStatus: OtpStatus::parse,
    Via: |s: &str| Via::parse(s).ok()
);

/// A struct read from the columns named like its fields.
macro_rules! row_type {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        impl $crate::storage::rows::FromRow for $name {
            fn from_row(
                row: &dyn $crate::storage::rows::Row,
            ) -> Result<Self, $crate::storage::rows::ColumnError> {
                Ok($name {
                    $($field: $crate::storage::rows::Column::read(
                        row,
                        $crate::storage::rows::Key::Name(stringify!($field)),
                    )?),*
                })
            }
        }
    };
}
pub(crate) use row_type;

/// Tuples read by position.
macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Column + Send + 'static),+> FromRow for ($($t,)+) {
            fn from_row(row: &dyn Row) -> Result<Self, ColumnError> {
                Ok(($($t::read(row, Key::Index($i))?,)+))
            }
        }
    };
}

tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2);
tuple_row!(A 0, B 1, C 2, D 3);

impl Row for rusqlite::Row<'_> {
    fn int(&self, key: Key<'_>) -> Result<Option<i64>, ColumnError> {
        sqlite_get(self, key)
    }

    fn text(&self, key: Key<'_>) -> Result<Option<String>, ColumnError> {
        sqlite_get(self, key)
    }

    fn blob(&self, key: Key<'_>) -> Result<Option<Vec<u8>>, ColumnError> {
        sqlite_get(self, key)
    }
}

fn sqlite_get<T: rusqlite::types::FromSql>(
    row: &rusqlite::Row<'_>,
    key: Key<'_>,
) -> Result<T, ColumnError> {
    match key {
        Key::Name(name) => row.get(name),
        Key::Index(i) => row.get(i),
    }
    .map_err(|e| ColumnError::new(key, e))
}

impl Row for sqlx::any::AnyRow {
    fn int(&self, key: Key<'_>) -> Result<Option<i64>, ColumnError> {
        any_get(self, key)
    }

    fn text(&self, key: Key<'_>) -> Result<Option<String>, ColumnError> {
        any_get(self, key)
    }

    fn blob(&self, key: Key<'_>) -> Result<Option<Vec<u8>>, ColumnError> {
        any_get(self, key)
    }
}

fn any_get<T>(row: &sqlx::any::AnyRow, key: Key<'_>) -> Result<T, ColumnError>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row as _;
    match key {
        Key::Name(name) => row.try_get(name),
        Key::Index(i) => row.try_get(i),
    }
    .map_err(|e| ColumnError::new(key, e))
}
