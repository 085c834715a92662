//! The second pass's plan, a chunk at a time: the spooled entries read
//! back and diffed against their state rows ([`Parts`]), on a thread of
//! their own ([`Planner`]) while the run sends the chunk before, so that
//! reading and diffing (about as much work as a local destination's
//! writes) overlaps the sending instead of waiting for it.
//!
//! Chunks never share a profile (a profile listed twice is invalid at its
//! second place), so the state rows a chunk is diffed against do not
//! depend on the saves of the chunks still being sent.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use tokio::sync::mpsc;

use super::diff::{self, Decision, DiffOptions};
use super::input::Entry;
use super::scan::{Scan, Spooled};
use super::state::{Exported, State};
use crate::connector::ExportFields;

/// The second pass's parts, in the order they are sent: the spooled
/// `toDelete` marks, then (with `--deletes`) the profiles that left the
/// input, then every other spooled entry, a chunk at a time. Deletes go
/// first, as the old code did: a key may pass from a deleted profile to a
/// new one, whose create must not find the record about to be deleted.
pub(super) struct Parts {
    scan: Scan,
    /// The state as the run found it, read-only.
    state: State,
    deletes: Spooled,
    entries: Spooled,
    /// The last absent profile sent (their pages go by id).
    after: String,
    /// Every absent profile has been sent.
    absent_done: bool,
    chunk: usize,
    with: Diffing,
}

/// What the parts are diffed with: the destination's fields, whether it
/// holds memberships, its connector's name and the run's options.
pub(super) struct Diffing {
    pub(super) fields: ExportFields,
    pub(super) groups: bool,
    pub(super) code: String,
    pub(super) opts: DiffOptions,
}

impl Parts {
    /// The parts of `scan`'s spools, `chunk` entries at a time, diffed
    /// against `state`.
    pub(super) fn new(scan: Scan, state: State, chunk: usize, with: Diffing) -> Result<Parts> {
        Ok(Parts {
            deletes: scan.deletes()?,
            entries: scan.entries()?,
            scan,
            state,
            after: String::new(),
            absent_done: false,
            chunk,
            with,
        })
    }

    /// The decisions of the next chunk; `None` at the end.
    pub(super) fn next(&mut self) -> Result<Option<Vec<Decision>>> {
        let deletes = self.scan.chunk(&mut self.deletes, self.chunk)?;
        if !deletes.is_empty() {
            return Ok(Some(self.present(deletes)?));
        }
        if self.with.opts.deletes != diff::Deletes::None && !self.absent_done {
            let page = self.scan.absent_page(&self.after, self.chunk)?;
            match page.last() {
                Some((last, _)) => {
                    self.after = last.clone();
                    let rows = page.into_iter().collect();
                    return Ok(Some(self.plan(Vec::new(), &rows, self.with.opts)));
                }
                None => self.absent_done = true,
            }
        }
        let entries = self.scan.chunk(&mut self.entries, self.chunk)?;
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.present(entries)?))
    }

    /// Diff a chunk of spooled entries against their state rows (the
    /// profiles that left the input are another part's).
    fn present(&self, entries: Vec<Entry>) -> Result<Vec<Decision>> {
        let ids: Vec<String> = entries
            .iter()
            .filter_map(|e| e.as_ref().ok().map(|p| p.id.clone()))
            .collect();
        let rows = self.state.rows(&ids)?;
        let opts = DiffOptions {
            deletes: diff::Deletes::None,
            ..self.with.opts
        };
        Ok(self.plan(entries, &rows, opts))
    }

    fn plan(
        &self,
        entries: Vec<Entry>,
        rows: &BTreeMap<String, Exported>,
        opts: DiffOptions,
    ) -> Vec<Decision> {
        let Diffing {
            fields,
            groups,
            code,
            ..
        } = &self.with;
        diff::plan(entries, rows, fields, *groups, code, opts)
    }
}

/// [`Parts`] planned on a thread of their own, one chunk ahead of the run:
/// each chunk's decisions, shaped by the run (`shape`, also run on that
/// thread), wait in a channel of one: the planner holds at most the chunk
/// waiting and the one it plans.
pub(super) struct Planner<T> {
    planned: mpsc::Receiver<Result<T>>,
    thread: std::thread::JoinHandle<()>,
}

impl<T: Send + 'static> Planner<T> {
    /// Start planning `parts`.
    pub(super) fn start(
        mut parts: Parts,
        mut shape: impl FnMut(Vec<Decision>) -> T + Send + 'static,
    ) -> Result<Planner<T>> {
        let (tx, planned) = mpsc::channel(1);
        let thread = std::thread::Builder::new()
            .name("export-planner".into())
            .spawn(move || {
                yield_to_the_run();
                loop {
                    let next = match parts.next() {
                        Ok(Some(decisions)) => Ok(shape(decisions)),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    let failed = next.is_err();
                    // The run stopped listening (it failed): nothing more to plan.
                    if tx.blocking_send(next).is_err() || failed {
                        break;
                    }
                }
            })
            .context("could not start the export's planning thread")?;
        Ok(Planner { planned, thread })
    }

    /// The next chunk, shaped; `None` after the last.
    pub(super) async fn next(&mut self) -> Result<Option<T>> {
        self.planned.recv().await.transpose()
    }

    /// Wait for the planning thread to end, so the first pass's scratch
    /// files are gone when the run returns. Dropping the channel ends it
    /// after the chunk it is planning.
    pub(super) async fn finish(self) -> Result<()> {
        drop(self.planned);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("the export's planning stopped unexpectedly")?
            .map_err(|_| anyhow::anyhow!("the export's planning stopped unexpectedly"))
    }
}

/// Lower the calling thread's priority (nice 10), so the planner takes
/// what the sending and the saving leave of the cores. It is one chunk
/// ahead and has time to spare; at equal priority it took a core from them
/// as often as not, and a 1M-profile first run took 10% longer (three
/// runs each way, docs/export.md). On Linux a thread has its own nice
/// value; elsewhere `setpriority` would lower the whole process, so the
/// planner keeps the process's priority there.
fn yield_to_the_run() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure leaves the
    // priority as it was, which is harmless.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}
