//! A SQLite file's write-ahead log folded into the file apart from its
//! writes. SQLite runs a checkpoint in the commit that takes the log past
//! 1,000 pages: it copies them into the file and waits for two fsyncs, and
//! the thread that wrote waits with it. ferry's busy writers (an export's
//! state saves, a SQLite destination's batches) instead count their writes
//! and every few of them start a `PASSIVE` checkpoint on a thread and
//! connection of its own ([`Checkpoints`]); their own commits fold the log
//! in only past [`BACKSTOP_PAGES`], should those checkpoints fall behind or
//! fail (a failed one leaves its pages in the log for the next, and a
//! commit's checkpoint reports what is wrong with the file).

use std::path::PathBuf;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

/// How many pages of log a commit folds in itself (40 MiB of 4 KiB pages)
/// once checkpoints are apart.
pub const BACKSTOP_PAGES: i64 = 10_000;

/// Leave `conn`'s checkpoints to a [`Checkpoints`]: its commits fold the
/// log in only past [`BACKSTOP_PAGES`].
pub fn checkpoint_apart(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
}

/// Checkpoints of the file at `path`, each on a thread of its own. Dropped
/// (its thread joined, its connection closed) before the writes'
/// connection closes, so that connection is the last: it folds the log in
/// and removes it.
pub struct Checkpoints {
    path: PathBuf,
    /// A checkpoint every this many writes.
    every: u32,
    /// Writes since the last checkpoint began.
    since: u32,
    /// The checkpoint under way; its thread hands its connection back.
    running: Option<JoinHandle<Option<Connection>>>,
    /// The checkpoints' connection, while none runs.
    conn: Option<Connection>,
}

impl Checkpoints {
    pub fn new(path: PathBuf, every: u32) -> Checkpoints {
        Checkpoints {
            path,
            every,
            since: 0,
            running: None,
            conn: None,
        }
    }

    /// Count a committed write; every `every` begin a checkpoint, unless
    /// the last one still runs (the next write tries again).
    pub fn wrote(&mut self) {
        self.since += 1;
        if self.since < self.every || self.running.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        if let Some(done) = self.running.take() {
            self.conn = done.join().ok().flatten();
        }
        self.since = 0;
        let conn = self.conn.take();
        let path = self.path.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let conn = match conn {
                    Some(conn) => conn,
                    None => Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
                        .ok()?,
                };
                // A failure leaves the pages in the log, for the next one.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                Some(conn)
            });
        // No thread, no checkpoint: the commits fold the log in.
        self.running = spawned.ok();
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.join();
        }
        self.conn = None;
    }
}
