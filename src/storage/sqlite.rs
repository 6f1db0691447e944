//! SQLite's engine: one writer thread, and reads on the calling thread. Every connection
//! keeps its prepared statements. A write is one hop to the writer, which runs a whole
//! statement or unit of work there and commits everything waiting for it in one transaction
//! (a group commit), each request inside its own savepoint so that one failing leaves the
//! others and gets its own error. A read is a point query or a short list on a pooled
//! connection: WAL never makes it wait for the writer, and it costs less than a hop to
//! another thread would.

use std::{
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::Mutex,
    thread,
};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{CachedStatement, Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{
    dialect::WalLimit,
    query::{Statement, Value},
    rows::FromRow,
    unit::Unit,
};
use crate::error::Error;

/// Most requests committed in one transaction.
const GROUP_MAX: usize = 64;
/// Prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 256;

/// A request queued for the writer.
trait Job: Send {
    /// Runs on the writer's connection, inside the group's transaction.
    fn run(&mut self, conn: &Connection) -> Result<(), Error>;
    /// Answers the request: `Ok` once what `run` did is committed.
    fn finish(self: Box<Self>, outcome: Result<(), Error>);
}

enum Message {
    Job(Box<dyn Job>),
    /// Ends the thread, once everything sent before has run.
    Stop(oneshot::Sender<()>),
}

pub struct Engine {
    path: PathBuf,
    /// Reader connections not in use.
    readers: Mutex<Vec<Connection>>,
    writer: Sender<Message>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish()
    }
}

impl Engine {
    /// Opens the writer on the database file at `path`; readers open as they are needed.
    pub(super) fn start(path: &Path, wal: WalLimit) -> anyhow::Result<Engine> {
        let (writer, writer_jobs) = crossbeam_channel::unbounded();
        let conn = open(path, false)?;
        let first_reader = open(path, true)?;
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(conn, writer_jobs, wal))?;
        Ok(Engine {
            path: path.to_path_buf(),
            readers: Mutex::new(vec![first_reader]),
            writer,
        })
    }

    /// The rows (at most `limit`) a statement answers, read here on a pooled connection.
    pub(super) fn read<T: FromRow>(
        &self,
        statement: &Statement,
        limit: usize,
    ) -> Result<Vec<T>, Error> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open(&self.path, true).map_err(Error::Internal)?,
        };
        let rows = fetch_rows(&conn, statement, limit);
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        rows
    }

    /// The rows (at most `limit`) a statement answers on the writer (`returning`).
    pub(super) async fn fetch<T: FromRow>(
        &self,
        statement: Statement,
        limit: usize,
    ) -> Result<Vec<T>, Error> {
        self.on_writer(Fetch {
            statement,
            limit,
            rows: std::marker::PhantomData,
        })
        .await
    }

    /// Runs a statement on the writer: the rows it changed.
    pub(super) async fn execute(&self, statement: Statement) -> Result<u64, Error> {
        self.on_writer(Execute(statement)).await
    }

    /// Commits a unit of work; true when it applied (see [`Unit`]).
    pub(super) async fn commit(&self, unit: Unit) -> Result<bool, Error> {
        self.on_writer(Commit(unit)).await
    }

    /// Hands `work` to the writer; its outcome once committed.
    async fn on_writer<W: Work>(&self, work: W) -> Result<W::Output, Error> {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            work,
            output: None,
            reply,
        };
        self.writer
            .send(Message::Job(Box::new(job)))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Stops the writer once what was sent before has run, and closes the readers.
    pub(super) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.writer.send(Message::Stop(ack)).is_ok() {
            let _ = done.await;
        }
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn stopped() -> Error {
    Error::Internal(anyhow::anyhow!("the database has been closed"))
}

/// A connection as every thread sets it up. WAL: readers never block the writer.
/// synchronous=NORMAL keeps every committed transaction across a process kill (only an OS
/// crash can lose the last ones). The writer checkpoints every 1,000 pages (4 MiB): short
/// stalls; journal_size_limit cuts the WAL back when it starts over, and `WalLimit` covers
/// the case where it cannot.
fn open(path: &Path, reader: bool) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch(
        "pragma journal_mode = wal; pragma synchronous = normal; \
         pragma busy_timeout = 5000; pragma foreign_keys = on; \
         pragma wal_autocheckpoint = 1000; pragma journal_size_limit = 41943040;",
    )?;
    if reader {
        conn.execute_batch("pragma query_only = on;")?;
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn write_loop(conn: Connection, jobs: Receiver<Message>, mut wal: WalLimit) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    let mut stop = None;
    while stop.is_none() {
        let Ok(first) = jobs.recv() else { return };
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Job(job) => group.push(job),
                Message::Stop(ack) => {
                    stop = Some(ack);
                    break;
                }
            }
            if group.len() < GROUP_MAX {
                next = jobs.try_recv().ok();
            }
        }
        if !group.is_empty() {
            let group = std::mem::take(&mut group);
            // A panic must not end the writer: the group's requests are told the database
            // failed (their replies drop) and the next group starts clean.
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| commit_group(&conn, group)));
            if ran.is_err() && !conn.is_autocommit() {
                let _ = conn.execute_batch("rollback");
            }
        }
        wal.keep_bounded(&conn);
    }
    if let Some(ack) = stop {
        let _ = ack.send(());
    }
}

/// Runs `group` in one transaction, each job in its own savepoint (a job alone needs none:
/// its failure rolls the transaction back), and commits.
fn commit_group(conn: &Connection, mut group: Vec<Box<dyn Job>>) {
    if group.len() == 1 {
        if let Some(job) = group.pop() {
            commit_alone(conn, job);
        }
        return;
    }
    if let Err(e) = run_cached(conn, "begin immediate") {
        for job in group {
            job.finish(Err(shared_failure(&e)));
        }
        return;
    }
    let mut done = Vec::with_capacity(group.len());
    for mut job in group {
        let outcome = run_cached(conn, "savepoint job")
            .map_err(Error::from)
            .and_then(|()| job.run(conn));
        match outcome {
            Ok(()) => {
                let _ = run_cached(conn, "release job");
                done.push(job);
            }
            Err(e) => {
                let _ = run_cached(conn, "rollback to job");
                let _ = run_cached(conn, "release job");
                job.finish(Err(e));
            }
        }
    }
    match run_cached(conn, "commit") {
        Ok(()) => done.into_iter().for_each(|job| job.finish(Ok(()))),
        Err(e) => {
            let _ = conn.execute_batch("rollback");
            for job in done {
                job.finish(Err(shared_failure(&e)));
            }
        }
    }
}

/// A failure of the whole group (its `begin` or `commit`), told to each of its requests.
fn shared_failure(e: &rusqlite::Error) -> Error {
    Error::Internal(anyhow::anyhow!("database: {e}"))
}

fn commit_alone(conn: &Connection, mut job: Box<dyn Job>) {
    let outcome = run_cached(conn, "begin immediate")
        .map_err(Error::from)
        .and_then(|()| job.run(conn))
        .and_then(|()| run_cached(conn, "commit").map_err(Error::from));
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("rollback");
    }
    job.finish(outcome);
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

/// Prepares (from the cache) and binds a statement. SQLite numbers `$n` parameters by first
/// appearance; the values are bound by the number each one names.
fn prepare<'c>(conn: &'c Connection, statement: &Statement) -> Result<CachedStatement<'c>, Error> {
    let mut prepared = conn.prepare_cached(&statement.full_text())?;
    for index in 1..=prepared.parameter_count() {
        let value = prepared
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| statement.values.get(n.wrapping_sub(1)))
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "parameter {index} has no value: {}",
                    statement.sql
                ))
            })?;
        match value {
            Value::Text(v) => prepared.raw_bind_parameter(index, v)?,
            Value::Int(v) => prepared.raw_bind_parameter(index, v)?,
            Value::Blob(v) => prepared.raw_bind_parameter(index, v)?,
        }
    }
    Ok(prepared)
}

/// Runs a prepared statement to its end; the rows it changed.
fn run_to_end(prepared: &mut CachedStatement<'_>) -> Result<u64, Error> {
    if prepared.column_count() == 0 {
        return Ok(prepared.raw_execute()? as u64);
    }
    // `returning` rows: stepped through so that every change is made.
    let mut rows = prepared.raw_query();
    let mut changed = 0;
    while rows.next()?.is_some() {
        changed += 1;
    }
    Ok(changed)
}

/// Runs a statement; the first `limit` rows it answers. Every row is stepped through: a
/// write's `returning` must finish its changes.
fn fetch_rows<T: FromRow>(
    conn: &Connection,
    statement: &Statement,
    limit: usize,
) -> Result<Vec<T>, Error> {
    let mut prepared = prepare(conn, statement)?;
    let mut rows = prepared.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        if found.len() < limit {
            found.push(T::from_row(row).map_err(|e| Error::Internal(e.into()))?);
        }
    }
    Ok(found)
}

/// What a request asks the writer to do.
trait Work: Send + 'static {
    type Output: Send + 'static;
    fn run(&mut self, conn: &Connection) -> Result<Self::Output, Error>;
}

/// A request waiting for the writer: its work, what the work answered, and where the answer
/// goes once the group is committed.
struct Pending<W: Work> {
    work: W,
    output: Option<W::Output>,
    reply: oneshot::Sender<Result<W::Output, Error>>,
}

impl<W: Work> Job for Pending<W> {
    fn run(&mut self, conn: &Connection) -> Result<(), Error> {
        self.output = Some(self.work.run(conn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), Error>) {
        let Pending { output, reply, .. } = *self;
        let _ = reply.send(outcome.and_then(|()| output.ok_or_else(stopped)));
    }
}

struct Fetch<T> {
    statement: Statement,
    limit: usize,
    rows: std::marker::PhantomData<fn() -> T>,
}

impl<T: FromRow> Work for Fetch<T> {
    type Output = Vec<T>;

    fn run(&mut self, conn: &Connection) -> Result<Vec<T>, Error> {
        fetch_rows(conn, &self.statement, self.limit)
    }
}

struct Execute(Statement);

impl Work for Execute {
    type Output = u64;

    fn run(&mut self, conn: &Connection) -> Result<u64, Error> {
        run_to_end(&mut prepare(conn, &self.0)?)
    }
}

struct Commit(Unit);

impl Work for Commit {
    type Output = bool;

    /// Each statement in turn; true when it applied. A chain stops at the first step that
    /// changes nothing (what applied before it stays, as on PostgreSQL).
    fn run(&mut self, conn: &Connection) -> Result<bool, Error> {
        for statement in &self.0.statements {
            let changed = run_to_end(&mut prepare(conn, statement)?)?;
            if self.0.chain && changed == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
