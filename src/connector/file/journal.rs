//! The append journal, which makes an append crash-safe: the file's
//! length is saved in `.NAME.ferry-append` beside the file (atomically)
//! before the append, the appended bytes are fsynced, then the journal is
//! removed. If the process dies in between (kill -9, power loss), the
//! journal is still there and the next write of the file cuts it back to
//! the saved length before doing anything else, so a half-written batch
//! never stays. Since an unacknowledged batch is sent again by whoever sent
//! it (import resumes from its checkpoint), nothing is lost, and since
//! upserts replace by id, nothing is duplicated. Reads do not repair the
//! file (they may run beside a writer in another process): while a journal
//! is there they stop at the length it saved ([`UpTo`]), so a torn tail is
//! never read and the next write cuts it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::index::Index;
use super::store::Store;
use super::{Format, RecordReader};
use crate::connector::Record;
use crate::error::failed;

impl<F: Format> Store<F> {
    /// The file length an unfinished append's journal saved, if there is one.
    pub(super) fn journal_len(&self) -> Result<Option<u64>> {
        let journal = self.journal();
        let text = match std::fs::read_to_string(&journal) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("could not read {}", journal.display()))
                )
            }
        };
        let len = text.trim().parse().map_err(|_| {
            failed(format!(
                "{} is damaged: {text:?} is not a length",
                journal.display()
            ))
            .hint(format!(
                "check the end of {} by hand, then delete the journal",
                self.path.display()
            ))
        })?;
        Ok(Some(len))
    }

    /// The journal that marks an append in progress.
    pub(super) fn journal(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path.with_file_name(format!(".{name}.ferry-append"))
    }

    /// Cut the file back to the length the journal saved: the append it
    /// announced never finished.
    pub(super) fn recover(&self) -> Result<()> {
        let Some(len) = self.journal_len()? else {
            return Ok(());
        };
        let journal = self.journal();
        if let Ok(meta) = std::fs::metadata(&self.path) {
            if meta.len() > len {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.path)
                    .with_context(|| format!("could not open {}", self.path.display()))?;
                file.set_len(len)
                    .and_then(|()| file.sync_all())
                    .with_context(|| {
                        format!("could not cut {} back to {len} bytes", self.path.display())
                    })?;
            }
        }
        std::fs::remove_file(&journal)
            .with_context(|| format!("could not remove {}", journal.display()))
    }

    /// Append records (none of them in the file, all columns known) under
    /// the journal with `write`, and update the index with their id `hashes`.
    pub(super) fn append(
        &self,
        index: &mut Index,
        hashes: &[u64],
        write: impl FnOnce(&mut dyn Write, &[String]) -> Result<()>,
    ) -> Result<()> {
        let journal = self.journal();
        crate::fsutil::write_bytes_atomic(&journal, index.len.to_string().as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .with_context(|| format!("could not open {} to append", self.path.display()))?;
        {
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, &file);
            write(&mut out, &index.columns)?;
            out.flush()
                .with_context(|| format!("could not write {}", self.path.display()))?;
        }
        file.sync_data()
            .with_context(|| format!("could not flush {} to disk", self.path.display()))?;
        std::fs::remove_file(&journal)
            .with_context(|| format!("could not remove {}", journal.display()))?;
        self.logged(|| {
            format!(
                "appended {} records to {}",
                hashes.len(),
                self.path.display()
            )
        });
        let meta = file.metadata()?;
        index.len = meta.len();
        index.modified = meta.modified().ok();
        // `appendable` saw that these ids are new and unique.
        index.ids.add_new(hashes);
        Ok(())
    }
}

/// A reader that stops at byte `end` (where an unfinished append began).
pub(super) struct UpTo {
    pub(super) inner: Box<dyn RecordReader>,
    pub(super) end: u64,
}

impl Iterator for UpTo {
    type Item = Result<Record>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.inner.byte_offset() >= self.end {
            return None;
        }
        self.inner.next()
    }
}

impl RecordReader for UpTo {
    fn byte_offset(&self) -> u64 {
        self.inner.byte_offset()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::connector::file::testing::{out_file, rec, store, text, upsert};
    use crate::connector::{Position, RecordSink, RecordSource, Records};

    #[tokio::test]
    async fn a_torn_append_is_cut_back_by_the_next_write() {
        let (dir, path) = out_file();
        let good = "{\"id\":\"a\"}\n{\"id\":\"b\"}\n";
        // What a process killed mid-append leaves: the journal with the old
        // length and half a batch after it.
        std::fs::write(&path, format!("{good}{{\"id\":\"c\"}}\n{{\"id\":\"d\",\"x")).unwrap();
        std::fs::write(
            dir.path().join(".out.jsonl.ferry-append"),
            good.len().to_string(),
        )
        .unwrap();
        let c = store(&path);
        // Reads stop where the journal says the file ended, without repairing it.
        let read = c.read_page(&Position::start(), 10).await.unwrap();
        assert_eq!(read.records.len(), 2);
        assert!(dir.path().join(".out.jsonl.ferry-append").exists());
        upsert(&c, json!([{"id": "c"}, {"id": "d"}])).await;
        assert_eq!(
            text(&path),
            format!("{good}{{\"id\":\"c\"}}\n{{\"id\":\"d\"}}\n")
        );
        assert!(!dir.path().join(".out.jsonl.ferry-append").exists());
    }

    #[tokio::test]
    async fn a_damaged_journal_stops_the_write_and_says_what_to_do() {
        let (dir, path) = out_file();
        std::fs::write(&path, "{\"id\":\"a\"}\n").unwrap();
        std::fs::write(dir.path().join(".out.jsonl.ferry-append"), "oops").unwrap();
        let err = store(&path)
            .upsert_batch(Records::new(vec![rec(json!({"id": "b"}))]))
            .await
            .unwrap_err();
        let failure = crate::error::find_failure(&err).unwrap();
        assert!(
            failure.message.contains("is damaged"),
            "{}",
            failure.message
        );
        assert_eq!(text(&path), "{\"id\":\"a\"}\n");
    }
}
