//! The rejects file: one JSON line per record validation or the destination
//! refused, opened on the first reject, flushed before each checkpoint save
//! (which records its length) and cut back to that length on resume.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

/// Cut the rejects file back to `len` bytes (remove it at 0), dropping lines
/// of batches that were never committed.
pub(super) fn cut_rejects(path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(anyhow::Error::new(e)
                .context(format!("could not reset rejects file {}", path.display()))),
            _ => Ok(()),
        };
    }
    let file = match OpenOptions::new().write(true).open(path) {
        Ok(f) => f,
        // Removed by the user: nothing to cut.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("could not open rejects file {}", path.display())))
        }
    };
    if file.metadata()?.len() > len {
        file.set_len(len)
            .with_context(|| format!("could not cut rejects file {}", path.display()))?;
    }
    Ok(())
}

/// The rejects file, opened on the first reject.
pub(super) struct RejectsFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    dirty: bool,
}

impl RejectsFile {
    pub(super) fn new(path: &Path) -> RejectsFile {
        RejectsFile {
            path: path.to_path_buf(),
            file: None,
            dirty: false,
        }
    }

    pub(super) fn write(&mut self, line: &Value) -> Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create folder {}", dir.display()))?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("could not open rejects file {}", self.path.display()))?;
            self.file = Some(BufWriter::new(file));
        }
        if let Some(w) = self.file.as_mut() {
            serde_json::to_writer(&mut *w, line)?;
            w.write_all(b"\n")
                .with_context(|| format!("could not write rejects file {}", self.path.display()))?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Flush to disk and answer the file's length (0 when there is none).
    pub(super) fn flush(&mut self) -> Result<u64> {
        let Some(w) = self.file.as_mut() else {
            return Ok(0);
        };
        if self.dirty {
            w.flush()
                .with_context(|| format!("could not write rejects file {}", self.path.display()))?;
            w.get_ref()
                .sync_data()
                .with_context(|| format!("could not flush rejects file {}", self.path.display()))?;
            self.dirty = false;
        }
        Ok(w.get_ref().metadata()?.len())
    }

    pub(super) fn finish(&mut self) -> Result<u64> {
        match self.file {
            Some(_) => self.flush(),
            None => Ok(std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)),
        }
    }
}
