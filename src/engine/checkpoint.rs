//! The import checkpoint: a small versioned JSON file saying where in the
//! source the next run starts, what has been counted so far, and which two
//! targets it belongs to. It is only ever replaced whole (temporary file,
//! fsync, rename), so a crash leaves the previous checkpoint, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::connector::Position;
use crate::error::usage;

/// The only version this build writes and reads.
pub const VERSION: u32 = 1;

/// What the checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub version: u32,
    /// The source target, canonical (absolute paths).
    pub from: String,
    /// The destination target, canonical.
    pub to: String,
    /// Where the next read starts: every record before it is written or rejected.
    pub position: Position,
    /// Totals over every run of this import.
    pub counts: Counts,
    /// The length of the rejects file when this checkpoint was saved; a
    /// resumed run cuts the file back to it, so records of batches that were
    /// never committed are not reported twice.
    #[serde(default)]
    pub rejects_bytes: u64,
    /// True once the source was read to its end.
    #[serde(default)]
    pub finished: bool,
    /// Once finished: where the source's last page started. A source that
    /// pages by cursor cannot start at an offset, so a resume of a finished
    /// import reads that page again, skips the records before `position`,
    /// and reads on from there (instead of reading the source again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_page: Option<Position>,
}

/// Record counts, in the summary and the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    #[serde(default)]
    pub rejected_by_reason: BTreeMap<String, u64>,
    #[serde(default)]
    pub warnings: u64,
    #[serde(default)]
    pub warnings_by_reason: BTreeMap<String, u64>,
    pub failed: u64,
    pub batches: u64,
}

impl Counts {
    /// Add `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.written += other.written;
        self.rejected += other.rejected;
        for (k, v) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(k.clone()).or_default() += v;
        }
        self.warnings += other.warnings;
        for (k, v) in &other.warnings_by_reason {
            *self.warnings_by_reason.entry(k.clone()).or_default() += v;
        }
        self.failed += other.failed;
        self.batches += other.batches;
    }
}

/// The default checkpoint file for two targets: `.ferry/import-HASH.json`
/// under the connector folder.
pub fn default_path(folder: &Path, from: &str, to: &str) -> PathBuf {
    folder
        .join(".ferry")
        .join(format!("import-{}.json", pair_hash(from, to)))
}

/// The default rejects file for two targets: `.ferry/rejects-HASH.jsonl`.
pub fn default_rejects_path(folder: &Path, from: &str, to: &str) -> PathBuf {
    folder
        .join(".ferry")
        .join(format!("rejects-{}.jsonl", pair_hash(from, to)))
}

/// A short stable name for a (source, destination) pair: FNV-1a, 64 bits,
/// in hex. Stable across builds and platforms, unlike std's hasher.
pub fn pair_hash(from: &str, to: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in from.bytes().chain([0u8]).chain(to.bytes()) {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:016x}", h)[..12].to_string()
}

impl Checkpoint {
    pub fn new(from: &str, to: &str, position: Position) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            from: from.to_string(),
            to: to.to_string(),
            position,
            counts: Counts::default(),
            rejects_bytes: 0,
            finished: false,
            last_page: None,
        }
    }

    /// Where a resumed run starts reading, and the offset before which the
    /// records it reads were already imported: the last page again for a
    /// finished import that knows where it started, `position` otherwise.
    pub fn resume_from(&self) -> (Position, u64) {
        match (&self.last_page, self.finished) {
            (Some(page), true) => (page.clone(), self.position.offset),
            _ => (self.position.clone(), 0),
        }
    }

    /// Read the checkpoint at `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("could not read checkpoint {}", path.display())))
            }
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "checkpoint {} is not valid JSON (line {}, column {}): {e}",
                path.display(),
                e.line(),
                e.column()
            ))
            .hint("delete it to start the import over, or pass --offset N")
        })?;
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(u64::from(VERSION)) {
            return Err(usage(format!(
                "checkpoint {} has version {}, this ferry reads version {VERSION}",
                path.display(),
                version.map_or("(none)".to_string(), |v| v.to_string())
            ))
            .hint("resume with the ferry that wrote it, or delete it and pass --offset N")
            .into());
        }
        let checkpoint = serde_json::from_value(value).map_err(|e| {
            usage(format!("checkpoint {} is malformed: {e}", path.display()))
                .hint("delete it to start the import over, or pass --offset N")
        })?;
        Ok(Some(checkpoint))
    }

    /// Replace the checkpoint at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text =
            serde_json::to_vec_pretty(self).context("could not render the checkpoint")?;
        text.push(b'\n');
        crate::fsutil::write_bytes_atomic(path, &text).map_err(|e| save_error(path, e))
    }
}

/// A checkpoint that could not be saved, with what to do when the disk is
/// full (the one cause a user can fix before resuming).
fn save_error(path: &Path, err: anyhow::Error) -> anyhow::Error {
    let full = err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
    });
    let err = err.context(format!("could not save checkpoint {}", path.display()));
    if !full {
        return err;
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    err.context(crate::error::failed("the disk is full").hint(format!(
        "free some space on the disk holding {} (or pass --state FILE on another disk)",
        folder.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_says_what_to_free() {
        let err = anyhow::Error::new(std::io::Error::from_raw_os_error(28));
        let err = save_error(Path::new("/data/.ferry/import-1.json"), err);
        let failure = crate::error::find_failure(&err).expect("a failure with a hint");
        assert_eq!(
            failure.hint.as_deref(),
            Some("free some space on the disk holding /data/.ferry (or pass --state FILE on another disk)")
        );
        assert!(format!("{err:#}").contains("could not save checkpoint /data/.ferry/import-1.json"));
        let other = save_error(Path::new("/x.json"), anyhow::anyhow!("denied"));
        assert!(crate::error::find_failure(&other).is_none());
    }

    #[test]
    fn round_trips_and_is_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cp.json");
        let mut cp = Checkpoint::new(
            "jsonl:/a",
            "sqlite:/b",
            Position {
                offset: 10,
                cursor: Some("123".into()),
            },
        );
        cp.counts.read = 10;
        cp.counts.rejected_by_reason.insert("missing id".into(), 2);
        cp.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");
        assert!(text.contains("\"cursor\": \"123\""), "{text}");
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        assert_eq!(
            Checkpoint::load(&dir.path().join("none.json")).unwrap(),
            None
        );
    }

    #[test]
    fn another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        std::fs::write(&path, r#"{"version": 2}"#).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        std::fs::write(&path, "{oops").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }

    #[test]
    fn the_pair_hash_is_stable_and_ordered() {
        assert_eq!(pair_hash("a", "b"), pair_hash("a", "b"));
        assert_ne!(pair_hash("a", "b"), pair_hash("b", "a"));
        assert_ne!(pair_hash("ab", ""), pair_hash("a", "b"));
        assert_eq!(pair_hash("a", "b").len(), 12);
    }
}
