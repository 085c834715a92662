//! One writer at a time: a run that writes a file another ferry process may
//! write too (a csv or jsonl destination, an export state, an import
//! checkpoint) holds an OS lock on it for the whole run. Two runs writing
//! the same file at once would interleave their rewrites and appends and
//! lose or duplicate records, silently.
//!
//! The lock is taken on a lock file beside the target, `.NAME.ferry-lock`,
//! not on the target itself: a rewrite replaces the target by a rename, and
//! a lock on the old inode would not hold the new one. The holder writes its
//! PID and (redacted) command line into the lock file, so a second run can
//! say who holds it. A second run waits up to [`DEFAULT_WAIT`] (or
//! `FERRY_LOCK_WAIT_MS`), then fails with exit 1 (130 when it is
//! interrupted while waiting). The lock file stays after
//! the run (emptied): removing it would let a waiting process lock a file
//! that is no longer the one a third process opens. The OS releases the lock
//! of a process that dies, even by kill -9.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::{failed, usage, Failure, Kind};
use crate::interrupt::Interrupt;

/// How long a run waits for a file another run holds.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The environment variable that sets the wait, in milliseconds.
pub const WAIT_VAR: &str = "FERRY_LOCK_WAIT_MS";

/// The longest wait `FERRY_LOCK_WAIT_MS` may ask for (ten minutes).
const MAX_WAIT_MS: u64 = 600_000;

/// How often a waiting run tries the lock again.
const POLL: Duration = Duration::from_millis(25);

/// A held lock; released (and the lock file emptied) on drop.
#[derive(Debug)]
pub struct Held {
    file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        // Emptied before it is released, so nobody reads a stale holder.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The lock file of `target`: `.NAME.ferry-lock` in the same folder.
pub fn lock_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // The same file reached by two spellings is one lock.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    dir.join(format!(".{name}.ferry-lock"))
}

/// Hold `target` (described as `what`, e.g. "the destination") for this
/// run: take its lock, waiting up to the configured time for another holder.
/// A Ctrl-C, SIGTERM or SIGHUP while waiting ends the wait (exit 130).
pub async fn hold(ctx: &Ctx, target: &Path, what: &str, interrupt: &Interrupt) -> Result<Held> {
    let wait = configured_wait(ctx)?;
    let path = lock_path(target);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create folder {}", dir.display()))?;
    }
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    // A lock file another user left (0644 under the usual umask) cannot be
    // written by us, but a lock works on a read-only handle too: lock it,
    // without saying who holds it.
    let (mut file, writable) = match opened {
        Ok(f) => (f, true),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => (
            File::open(&path)
                .with_context(|| format!("could not open the lock file {}", path.display()))?,
            false,
        ),
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("could not open the lock file {}", path.display())))
        }
    };
    let deadline = Instant::now() + wait;
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return Err(busy(target, what, &path, wait));
                }
                if !said {
                    said = true;
                    ctx.out.info(&format!(
                        "{what} {} is in use by {}; waiting up to {:.1}s",
                        target.display(),
                        holder(&path),
                        wait.as_secs_f64()
                    ));
                }
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    () = interrupt.wait() => {
                        return Err(Failure::new(
                            Kind::Interrupted,
                            format!(
                                "interrupted while waiting for {what} {}, in use by {}; nothing was written",
                                target.display(),
                                holder(&path)
                            ),
                        )
                        .hint("run the same command again once the other run has finished")
                        .into());
                    }
                }
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(
                    anyhow::Error::new(e).context(format!("could not lock {}", path.display()))
                );
            }
        }
    }
    if !writable {
        return Ok(Held { file });
    }
    let me = json!({"pid": std::process::id(), "command": command_line(ctx)});
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| file.write_all(format!("{me}\n").as_bytes()))
        .and_then(|()| file.flush())
        .with_context(|| format!("could not write the lock file {}", path.display()))?;
    Ok(Held { file })
}

/// This process's command line as the user typed it, secrets redacted.
fn command_line(ctx: &Ctx) -> String {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    ctx.out
        .redact(&format!("ferry {}", crate::shell::join(&args)))
}

/// Who holds the lock file at `path`, as its holder wrote it.
fn holder(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match serde_json::from_str::<Value>(text.trim()) {
        Ok(v) => match (v["pid"].as_u64(), v["command"].as_str()) {
            (Some(pid), Some(command)) => format!("another ferry run (pid {pid}: {command})"),
            (Some(pid), None) => format!("another ferry run (pid {pid})"),
            _ => "another process".to_string(),
        },
        Err(_) => "another process".to_string(),
    }
}

fn busy(target: &Path, what: &str, path: &Path, wait: Duration) -> anyhow::Error {
    failed(format!(
        "{what} {} is in use by {}; gave up after waiting {:.1}s, nothing was written",
        target.display(),
        holder(path),
        wait.as_secs_f64()
    ))
    .hint(format!(
        "two runs writing one file would lose records: wait for the other run to finish (or stop it), then run this command again; {WAIT_VAR} sets how long to wait"
    ))
    .into()
}

/// The wait from `FERRY_LOCK_WAIT_MS`, or [`DEFAULT_WAIT`].
fn configured_wait(ctx: &Ctx) -> Result<Duration> {
    let Some(text) = ctx.env.get(WAIT_VAR) else {
        return Ok(DEFAULT_WAIT);
    };
    match text.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_WAIT_MS => Ok(Duration::from_millis(ms)),
        _ => Err(usage(format!(
            "{WAIT_VAR} is \"{text}\"; it must be a whole number of milliseconds from 0 to {MAX_WAIT_MS}"
        ))
        .hint(format!("unset {WAIT_VAR} to wait the default {}s", DEFAULT_WAIT.as_secs()))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let canon = dir.path().canonicalize().unwrap();
        assert_eq!(
            lock_path(&dir.path().join("out.jsonl")),
            canon.join(".out.jsonl.ferry-lock")
        );
    }

    #[test]
    fn a_holder_is_named_from_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.ferry-lock");
        std::fs::write(&path, "{\"pid\": 42, \"command\": \"ferry import\"}\n").unwrap();
        assert_eq!(holder(&path), "another ferry run (pid 42: ferry import)");
        std::fs::write(&path, "").unwrap();
        assert_eq!(holder(&path), "another process");
    }
}
