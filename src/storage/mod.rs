//! The one storage layer: the same SQL text runs on SQLite and PostgreSQL through `sqlx::Any`.
//! Each file holds the queries of one aggregate; real dialect differences live in `dialect`.

mod accounts;
mod applications;
mod apps;
mod ceremonies;
mod dialect;
mod magic_links;
mod otps;
mod outbox;
mod passkeys;
mod rate_limits;
mod sessions;
mod social;
mod transfer;
mod types;
mod unit;
mod users;

use std::sync::Arc;

use sqlx::{any::AnyPoolOptions, AnyPool};

pub use accounts::{AccountRow, ApiKeyRow};
pub use applications::{ApplicationRow, ApplicationSettings};
pub use apps::{AppKeyRow, AppRow, SigningKeyRow};
pub use ceremonies::CeremonyRow;
pub use dialect::Backend;
pub use magic_links::MagicLinkRow;
pub use otps::OtpFilter;
pub use otps::{NewOtp, OtpEventRow, OtpRow};
pub use outbox::{DeliveryRow, Settlement};
pub use passkeys::{PasskeyRow, PasskeyUse};
pub use rate_limits::WithFailures;
pub use sessions::{PasscodeRow, RefreshTokenRow, WithUserStatus};
pub use social::{SocialConnectionRow, SocialLinkRow};
use unit::GroupWriter;
pub use unit::{Filtered, Statement, Unit};
pub use users::{User, UserFilter};

use crate::error::Error;
pub(crate) use types::flag;

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
    /// Reads. On SQLite a pool of readers beside the single writer (WAL lets them run in
    /// parallel); on PostgreSQL the same pool as `write`.
    read: AnyPool,
    /// Writes. On SQLite exactly one connection, so writers queue in the pool instead of
    /// spinning in SQLite's busy handler.
    write: AnyPool,
    /// SQLite: commits units of work in groups (see `GroupWriter`).
    group: Option<Arc<GroupWriter>>,
}

impl Store {
    /// Opens (creating a SQLite file and its folder when needed) and migrates.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let store = match backend {
            Backend::Sqlite => {
                let url = dialect::prepare_sqlite_url(url)?;
                let write = dialect::sqlite_pool(&url, 1).await?;
                let read = dialect::sqlite_pool(&url, max_connections.clamp(1, 4)).await?;
                dialect::checkpoint_in_background(read.clone());
                let wal = dialect::sqlite_file(&url).map(dialect::WalLimit::new);
                let group = Some(Arc::new(GroupWriter::start(write.clone(), wal)));
                Store {
                    backend,
                    read,
                    write,
                    group,
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(max_connections.max(2))
                    .connect(url)
                    .await?;
                Store {
                    backend,
                    read: pool.clone(),
                    write: pool,
                    group: None,
                }
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.write).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.write)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Database reachable and answering.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("select 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}
