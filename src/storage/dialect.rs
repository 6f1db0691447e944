//! The few places where SQLite and PostgreSQL really differ: connection set-up and the outbox
//! claim (`claim_due_sql`). How a unit of work commits on each is `unit`'s.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool, Executor,
};

use crate::files;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("database URL must start with sqlite:// or postgres://")
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Creates the database file's folder and asks SQLite to create the file.
pub(super) fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if path != ":memory:" {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                files::private_dir(parent)?;
            }
        }
        // SQLite gives its WAL and shared-memory files the database file's mode.
        files::private_file().write(true).create(true).open(path)?;
    }
    Ok(if rest.contains("mode=") {
        format!("sqlite://{rest}")
    } else if rest.contains('?') {
        format!("sqlite://{rest}&mode=rwc")
    } else {
        format!("sqlite://{rest}?mode=rwc")
    })
}

/// One connection for the migrations, which run through sqlx before the engine starts.
pub(super) async fn migration_connection(url: &str) -> anyhow::Result<AnyPool> {
    let options = AnyConnectOptions::from_str(url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("pragma journal_mode = wal; pragma busy_timeout = 5000;")
                    .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// The SQLite database file a URL names (`None` in memory).
pub(super) fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (path != ":memory:" && !path.is_empty()).then(|| path.into())
}

/// Keeps the WAL bounded when the automatic checkpoints cannot start it over (readers still
/// using its frames each time): without this a busy node's WAL grows by gigabytes. Past
/// `WAL_LIMIT` the writer waits, between groups, for the readers of the moment and truncates it.
pub(super) struct WalLimit {
    wal: std::path::PathBuf,
    checked_at: std::time::Instant,
}

/// The WAL size at which the writer truncates it: ten times what the automatic checkpoints
/// keep it to.
const WAL_LIMIT: u64 = 40 * 1024 * 1024;
/// How often the writer looks at the WAL's size.
const WAL_CHECK: Duration = Duration::from_millis(200);

impl WalLimit {
    pub(super) fn new(database: std::path::PathBuf) -> WalLimit {
        let mut wal = database.into_os_string();
        wal.push("-wal");
        WalLimit {
            wal: wal.into(),
            checked_at: std::time::Instant::now(),
        }
    }

    /// Truncates the WAL when it has grown past `WAL_LIMIT`; called by the writer between
    /// groups.
    pub(super) fn keep_bounded(&mut self, conn: &rusqlite::Connection) {
        if self.checked_at.elapsed() < WAL_CHECK {
            return;
        }
        self.checked_at = std::time::Instant::now();
        let size = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        if size <= WAL_LIMIT {
            return;
        }
        if let Err(e) = conn.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
}

/// Claims due outbox rows for one worker. PostgreSQL's `skip locked` lets several nodes claim
/// side by side without taking the same row; SQLite has one writer, so a plain update is
/// already exclusive.
pub(super) fn claim_due_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "update deliveries set locked_until = $1, attempts = attempts + 1, updated_at = $2
              where id in (select id from deliveries
                            where status = 'pending' and next_attempt_at <= $2
                              and locked_until <= $2
                            order by next_attempt_at limit $3)
                and status = 'pending' and locked_until <= $2
             returning id, otp_id, channel, fallback_channel, recipient, payload, attempts"
        }
        Backend::Postgres => {
            "update deliveries set locked_until = $1, attempts = attempts + 1, updated_at = $2
              where id in (select id from deliveries
                            where status = 'pending' and next_attempt_at <= $2
                              and locked_until <= $2
                            order by next_attempt_at limit $3
                            for update skip locked)
                and status = 'pending' and locked_until <= $2
             returning id, otp_id, channel, fallback_channel, recipient, payload, attempts"
        }
    }
}
