//! The one storage layer: the same SQL text runs on SQLite (rusqlite on its own threads, see
//! `sqlite`) and PostgreSQL (`sqlx::Any`). Each file holds the queries of one aggregate; real
//! dialect differences live in `dialect`.

mod accounts;
mod applications;
mod apps;
mod ceremonies;
mod db;
mod dialect;
mod magic_links;
mod otps;
mod outbox;
mod passkeys;
mod query;
mod rate_limits;
pub(crate) mod rows;
mod sessions;
mod social;
mod sqlite;
mod transfer;
mod unit;
mod users;

use std::sync::Arc;

use sqlx::any::AnyPoolOptions;

pub use accounts::{AccountRow, ApiKeyRow};
pub use applications::{ApplicationRow, ApplicationSettings};
pub use apps::{AppKeyRow, AppRow, SigningKeyRow};
pub use ceremonies::CeremonyRow;
pub use db::Db;
pub use dialect::Backend;
pub use magic_links::MagicLinkRow;
pub use otps::OtpFilter;
pub use otps::{NewOtp, OtpEventRow, OtpRow};
pub use outbox::{DeliveryRow, Settlement};
pub use passkeys::{PasskeyRow, PasskeyUse};
pub use query::{Filtered, Statement};
pub use rate_limits::WithFailures;
pub use sessions::{PasscodeRow, RefreshTokenRow, WithUserStatus};
pub use social::{SocialConnectionRow, SocialLinkRow};
pub use unit::Unit;
pub use users::{User, UserFilter};

use crate::error::Error;
pub(crate) use query::flag;

/// `$first, $first+1, …` for a list of `n` values (`in (…)`).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Handle to the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// Reads. On SQLite pooled connections beside the single writer; on PostgreSQL the same
    /// pool as `write`.
    read: Db,
    /// Writes. On SQLite the one writer thread, so writers queue for it instead of spinning
    /// in SQLite's busy handler.
    write: Db,
}

impl Store {
    /// Opens (creating a SQLite file and its folder when needed) and migrates.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        match backend {
            Backend::Sqlite => {
                let url = dialect::prepare_sqlite_url(url)?;
                let Some(file) = dialect::sqlite_file(&url) else {
                    anyhow::bail!("SQLite needs a database file, not memory");
                };
                let migrations = dialect::migration_connection(&url).await?;
                sqlx::migrate!("migrations/sqlite").run(&migrations).await?;
                migrations.close().await;
                let wal = dialect::WalLimit::new(file.clone());
                let engine = Arc::new(sqlite::Engine::start(&file, wal)?);
                Ok(Store {
                    backend,
                    read: Db::SqliteRead(engine.clone()),
                    write: Db::SqliteWrite(engine),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .connect(url)
                    .await?;
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                Ok(Store {
                    backend,
                    read: Db::Postgres(pool.clone()),
                    write: Db::Postgres(pool),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Database reachable and answering.
    pub async fn ping(&self) -> Result<(), Error> {
        Statement::new("select 1")
            .fetch_one::<(i64,)>(&self.read)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.write {
            Db::SqliteRead(engine) | Db::SqliteWrite(engine) => engine.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
