//! The database file: its connection (opened on first use, in WAL mode),
//! which layout its table has, the transactions reads and writes run in,
//! and the errors that say what went wrong with the file rather than with
//! a record.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::{Context, Result};
use rusqlite::{params, Connection};
use serde_json::{json, Value};

use super::existing::Existing;
use super::layout::Layout;
use super::managed::{Managed, MANAGED_MARKER};
use crate::error::{failed, not_found, usage};
use crate::wal::Checkpoints;

pub(super) struct Db {
    pub(super) path: PathBuf,
    pub(super) table: String,
    pub(super) id_field: String,
    /// How long a write waits for another process's lock.
    pub(super) busy_timeout: std::time::Duration,
    /// The log folded into the file apart from the writes (`crate::wal`).
    /// Declared before `conn`: dropped first, so the writes' connection is
    /// the last to close and removes the log.
    pub(super) checkpoints: Mutex<Checkpoints>,
    /// Opened on first use, so a read of a missing file creates nothing.
    pub(super) conn: Mutex<Option<Connection>>,
    /// The membership tables are known to exist (created and committed),
    /// so a run's membership batches skip their `CREATE TABLE IF NOT EXISTS`.
    pub(super) group_tables: std::sync::atomic::AtomicBool,
}

/// A checkpoint every this many writes (an export's chunk is three): the
/// thread the writes come from never waits for one (an export's sending,
/// a second of a 1M-profile first run, did).
pub(super) const CHECKPOINT_EVERY: u32 = 10;

impl Db {
    fn lock(&self, create: bool) -> Result<Option<MutexGuard<'_, Option<Connection>>>> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            if !create && !self.path.exists() {
                return Ok(None);
            }
            self.check_folder()?;
            let conn = Connection::open(&self.path)
                .with_context(|| format!("could not open SQLite file {}", self.path.display()))?;
            conn.busy_timeout(self.busy_timeout)?;
            // WAL keeps readers and the writer out of each other's way and
            // makes each committed batch durable without rewriting the file.
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| self.open_error(e))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            crate::wal::checkpoint_apart(&conn)?;
            *guard = Some(conn);
        }
        Ok(Some(guard))
    }

    /// The file's folder must exist: SQLite would only say it cannot open
    /// the file.
    fn check_folder(&self) -> Result<()> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(usage(format!(
                    "the folder of {} does not exist",
                    self.path.display()
                ))
                .hint("create the folder, or change \"path\" in account.json")
                .into());
            }
        }
        Ok(())
    }

    /// The first statement on a file is where SQLite finds out it is not a
    /// database: that is the account's mistake (exit 2), not a failed action.
    fn open_error(&self, err: rusqlite::Error) -> anyhow::Error {
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            return usage(format!(
                "{} is not a SQLite database ({err})",
                self.path.display()
            ))
            .hint("point \"path\" in account.json at a SQLite file, or at a new file name to create one")
            .into();
        }
        anyhow::Error::new(err).context(format!(
            "could not open SQLite file {}",
            self.path.display()
        ))
    }

    /// The table's layout; `None` when the table does not exist.
    pub(super) fn layout(&self, conn: &Connection) -> Result<Option<Box<dyn Layout + '_>>> {
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            params![self.table],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(None);
        }
        let managed: bool = conn
            .query_row(
                &format!("SELECT count(*) > 0 FROM {MANAGED_MARKER} WHERE name = ?1"),
                params![self.table],
                |r| r.get(0),
            )
            .unwrap_or(false);
        if managed {
            return Ok(Some(Box::new(Managed::new(self))));
        }
        Ok(Some(Box::new(Existing::read(self, conn)?)))
    }

    /// Create the managed table, unless another writer did since `layout`
    /// looked: the check and the creation share one write transaction, and
    /// the table and its marker are committed together.
    fn create_managed(&self, conn: &mut Connection) -> Result<Box<dyn Layout + '_>> {
        let tx = write_tx(conn)?;
        if let Some(layout) = self.layout(&tx)? {
            return Ok(layout);
        }
        Managed::create(self, &tx)?;
        tx.commit()?;
        Ok(Box::new(Managed::new(self)))
    }

    /// The connection and layout for a read; `empty` when there is nothing
    /// to read.
    pub(super) fn with_read<T>(
        &self,
        empty: T,
        f: impl FnOnce(&Connection, &dyn Layout) -> Result<T>,
    ) -> Result<T> {
        let Some(guard) = self.lock(false)? else {
            return Ok(empty);
        };
        let conn = guard.as_ref().context("the SQLite connection is closed")?;
        match self.layout(conn)? {
            None => Ok(empty),
            Some(layout) => f(conn, layout.as_ref()),
        }
    }

    /// The connection and layout for a write, creating the table if needed.
    pub(super) fn with_write<T>(
        &self,
        f: impl FnOnce(&mut Connection, &dyn Layout) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self
            .lock(true)?
            .context("the SQLite connection is closed")?;
        let conn = guard.as_mut().context("the SQLite connection is closed")?;
        let layout = match self.layout(conn)? {
            Some(layout) => layout,
            None => self.create_managed(conn)?,
        };
        let written = f(conn, layout.as_ref())?;
        self.checkpoint_soon();
        Ok(written)
    }

    /// Count a write toward the next checkpoint.
    fn checkpoint_soon(&self) {
        self.checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .wrote();
    }

    pub(super) fn not_found(&self, id: &str) -> anyhow::Error {
        not_found(format!(
            "no record with {} \"{id}\" in table \"{}\" of {}",
            self.id_field,
            self.table,
            self.path.display()
        ))
        // The command adds the hint that lists the ids, with its -C folder.
        .into()
    }

    /// The error that stops a run when the database itself failed, with
    /// what to do about it; `None` when the record is at fault.
    pub(super) fn store_failure(&self, err: &anyhow::Error) -> Option<anyhow::Error> {
        use rusqlite::ErrorCode as C;
        let code = store_code(err)?;
        let file = self.path.display();
        let hint = match code {
            C::DatabaseBusy | C::DatabaseLocked => format!(
                "another process holds {file} (waited {}s): let it finish or close it, or raise \"busyTimeoutSecs\" in the account",
                self.busy_timeout.as_secs_f64()
            ),
            C::ReadOnly => format!("{file} cannot be written: make it (and its folder) writable"),
            C::DiskFull => format!("the disk holding {file} is full: free some space"),
            _ => format!("check that {file} is a healthy SQLite file on a working disk"),
        };
        Some(
            failed(format!("could not write to SQLite file {file}: {err:#}"))
                .hint(hint)
                .into(),
        )
    }

    /// Run `op` on each item in its own savepoint of `tx`, so an item the
    /// table refuses is undone alone and answered with its error; the
    /// database itself failing stops them all.
    pub(super) fn each_saved<T, R>(
        &self,
        tx: &mut rusqlite::Transaction<'_>,
        items: impl IntoIterator<Item = T>,
        mut op: impl FnMut(&Connection, T) -> Result<R>,
    ) -> Result<Vec<Result<R>>> {
        let mut out = Vec::new();
        for item in items {
            let sp = tx.savepoint()?;
            match op(&sp, item) {
                Ok(done) => {
                    sp.commit()?;
                    out.push(Ok(done));
                }
                Err(e) => {
                    if let Some(failure) = self.store_failure(&e) {
                        return Err(failure);
                    }
                    drop(sp);
                    out.push(Err(e));
                }
            }
        }
        Ok(out)
    }

    /// What `ferry check` says of the file and its table.
    pub(super) fn check(&self) -> Result<Value> {
        let mut base =
            json!({ "ok": true, "path": self.path.display().to_string(), "table": self.table });
        let report = self.with_read(None, |conn, layout| {
            Ok(Some((self.count(conn, layout)?, layout.kind())))
        })?;
        match report {
            Some((count, kind)) => {
                base["records"] = json!(count);
                base["tableKind"] = json!(kind);
            }
            None => {
                self.check_folder()?;
                base["records"] = json!(0);
                base["message"] = json!("the table does not exist yet; the first write creates it");
            }
        }
        Ok(base)
    }
}

/// A write transaction that takes the write lock up front. A deferred one
/// reads first and then fails at once with "database is locked" when another
/// process wrote in between (SQLite cannot upgrade a stale read snapshot);
/// taken up front, the lock waits for the busy timeout instead.
pub(super) fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
}

/// Whether SQLite's error code says the database failed, rather than that
/// it refused a record: read-only, full, locked past the busy timeout, gone,
/// damaged. A constraint, a type mismatch or a value too big is the
/// record's fault; so is any error that is not SQLite's (ferry's own checks).
pub(super) fn store_code(err: &anyhow::Error) -> Option<rusqlite::ErrorCode> {
    use rusqlite::ErrorCode as C;
    let code = err
        .chain()
        .find_map(|c| c.downcast_ref::<rusqlite::Error>())?
        .sqlite_error_code()?;
    match code {
        C::ConstraintViolation | C::TypeMismatch | C::TooBig => None,
        other => Some(other),
    }
}

/// A consistent copy of the database file at `path` as it is now (what a
/// test case keeps): `VACUUM INTO` folds the write-ahead log in, which a
/// plain copy of the file would miss. `None` when there is no file.
pub fn snapshot(path: &Path) -> Result<Option<Vec<u8>>> {
    if !path.exists() {
        return Ok(None);
    }
    let dir = tempfile::tempdir().context("could not create a temporary folder")?;
    let copy = dir.path().join("copy.db");
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("could not open SQLite file {}", path.display()))?;
    conn.execute("VACUUM INTO ?1", params![copy.to_string_lossy()])
        .with_context(|| format!("could not copy SQLite file {}", path.display()))?;
    std::fs::read(&copy)
        .with_context(|| format!("could not read {}", copy.display()))
        .map(Some)
}
