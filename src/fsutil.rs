//! Atomic file writes: a temporary file in the same folder, fsync, rename.
//! A reader (or a crash) sees the old file or the new one, never half of it.
//!
//! The temporary file is named `.ferry-tmp-PID-RANDOM`. A process killed
//! mid-write (kill -9, power loss) leaves it behind; the next write into the
//! same folder removes such leftovers: every `.ferry-tmp-*` whose PID is no
//! running process (checked in /proc on Linux), and any not modified for an
//! hour (older names without a PID, other systems). A file a live process
//! is writing is never touched.
//!
//! The new file keeps the mode of the file it replaces (and its owner and
//! group, where the user may set them); a file that did not exist gets
//! 0666 less the umask, like any file a program creates.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

/// The name every temporary file of ferry starts with.
const TMP_PREFIX: &str = ".ferry-tmp-";

/// A leftover not modified for this long is stale whatever its name says.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Write `path` atomically with whatever `fill` writes into the buffer.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    // 0666 lets the umask decide, as for any file a program creates.
    write_atomic_as(path, 0o666, fill)
}

/// Write a file that holds secrets (`.env`) atomically: a new one is
/// readable by its owner only, whatever the umask; an existing one keeps
/// the mode its owner gave it.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_as(path, 0o600, |w| {
        w.write_all(bytes)
            .with_context(|| format!("could not write {}", path.display()))
    })
}

fn write_atomic_as(
    path: &Path,
    new_mode: u32,
    fill: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    // A device, a FIFO or a socket (`-o /dev/null`, `-o /dev/stdout`, a
    // named pipe) is written in place: renaming a file over it would
    // replace the device itself (for root, /dev/null for every program).
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("could not open {}", path.display()))?;
            let mut writer = BufWriter::new(&file);
            fill(&mut writer)?;
            return writer
                .flush()
                .with_context(|| format!("could not write {}", path.display()));
        }
    }
    let dir = parent_dir(path);
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create folder {}", dir.display()))?;
    sweep_once(dir);
    let old = std::fs::metadata(path).ok();
    let prefix = format!("{TMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // tempfile creates 0600 whatever is asked of the caller.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(new_mode));
    }
    #[cfg(not(unix))]
    let _ = new_mode;
    let tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("could not create a temporary file in {}", dir.display()))?;
    if let Some(old) = &old {
        keep_mode_and_owner(tmp.as_file(), old)
            .with_context(|| format!("could not give the new {} its old mode", path.display()))?;
    }
    {
        let mut writer = BufWriter::new(tmp.as_file());
        fill(&mut writer)?;
        writer
            .flush()
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("could not flush {} to disk", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("could not replace {}", path.display()))?;
    // The rename is durable only once the folder entry is on disk too.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| {
        w.write_all(bytes)
            .with_context(|| format!("could not write {}", path.display()))
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Give the replacement the replaced file's mode, and its owner and group
/// where the user may (root, or a group the user is in); a change of owner
/// that is not permitted is not an error: the file keeps ours.
fn keep_mode_and_owner(tmp: &File, old: &std::fs::Metadata) -> std::io::Result<()> {
    tmp.set_permissions(old.permissions())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let mine = tmp.metadata()?;
        if mine.uid() != old.uid() || mine.gid() != old.gid() {
            if std::os::unix::fs::fchown(tmp, Some(old.uid()), Some(old.gid())).is_err() {
                let _ = std::os::unix::fs::fchown(tmp, None, Some(old.gid()));
            }
            // chown may clear set-id bits: put the mode back.
            tmp.set_permissions(old.permissions())?;
        }
    }
    Ok(())
}

/// Remove stale temporary files from `dir`, once per folder per process
/// (a run writes its checkpoint after every batch).
fn sweep_once(dir: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    remove_stale_temp_files(dir);
}

/// Remove every `.ferry-tmp-*` in `dir` that no live process is writing.
/// Best effort: a file that cannot be read or removed stays.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let idle = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|d| d > STALE_AFTER);
        let writer_gone = pid_of(rest).is_some_and(|pid| !process_runs(pid));
        if idle || writer_gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The PID in a temporary file's name after the prefix (`PID-RANDOM`).
fn pid_of(rest: &str) -> Option<u32> {
    let (pid, random) = rest.split_once('-')?;
    if random.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process `pid` runs. Where that cannot be known (no /proc),
/// assume it does: only the age rule then removes its files.
fn process_runs(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_device_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_bytes_atomic(&fifo, b"through the pipe").unwrap();
        // Checked before joining: a replaced FIFO would leave the reader
        // waiting for a writer forever.
        let kind = std::fs::metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the FIFO was replaced by a file");
        assert_eq!(reader.join().unwrap(), "through the pipe");
    }
    use super::*;

    #[test]
    fn the_pid_is_read_from_ferrys_own_names_only() {
        assert_eq!(pid_of("123-abcDEF"), Some(123));
        assert_eq!(pid_of("abcDEF"), None);
        assert_eq!(pid_of("123-"), None);
        assert_eq!(pid_of("x1-abc"), None);
    }

    #[test]
    fn leftovers_of_dead_writers_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        // PIDs above the kernel's maximum (4194304) are never running.
        let dead = dir.path().join(".ferry-tmp-999999999-abc123");
        let live = dir
            .path()
            .join(format!(".ferry-tmp-{}-abc123", std::process::id()));
        let other = dir.path().join("data.jsonl");
        for p in [&dead, &live, &other] {
            std::fs::write(p, "x").unwrap();
        }
        remove_stale_temp_files(dir.path());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(other.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_rewrite_keeps_the_mode_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.jsonl");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_bytes_atomic(&path, b"new").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}
