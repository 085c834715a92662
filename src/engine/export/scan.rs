//! The first pass of an export: every profile of the input once, in input
//! order, checked against the rest of the run (a profile listed twice, two
//! profiles with one key) and, by its hash, against the export state with
//! one indexed lookup and without loading the row. An unchanged profile is
//! only counted; every other entry goes to a spool file that the second
//! pass sends from, a chunk at a time, so what a run holds does not grow
//! with its input: `toDelete` marks to a spool of their own (deletes go out
//! before creates, as a key may pass from a deleted profile to a new one),
//! changed and new profiles and invalid entries, in their place, to the
//! other. The run's marks (ids seen, keys taken) live in a scratch SQLite
//! file under `.ferry/tmp/`, with the state attached read-only, so the
//! profiles that left the input are found by one query.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::diff::{self, Deletes};
use super::input::{Entry, Invalid, Profile, Stream};
use super::state::{self, Exported};
use super::Doomed;
use crate::connector::{record_id, ExportFields, Record};

/// How many doomed profiles the mass-delete question names.
const NAMED: usize = 10;
/// How many profiles the first pass marks per scratch transaction: each
/// commit also lets go of the state, which another run may be writing.
const MARKS_PER_COMMIT: u64 = 10_000;
/// A scratch folder older than this belongs to a run that died.
const STALE: Duration = Duration::from_secs(24 * 3600);

/// What the first pass found.
pub struct Scan {
    conn: Connection,
    /// The state is attached as `st` (it exists).
    has_state: bool,
    /// The state has the (id, hash) index the lookups use; an older state
    /// read by a dry run (which upgrades nothing) has not.
    indexed: bool,
    spool: Option<BufWriter<std::fs::File>>,
    deletes: Option<BufWriter<std::fs::File>>,
    spool_path: PathBuf,
    deletes_path: PathBuf,
    /// The export state, as messages name it.
    state_path: PathBuf,
    dir: Option<tempfile::TempDir>,
    /// `.ferry/tmp/`, removed when the run leaves it empty.
    root: Option<PathBuf>,
    /// Entries of the input, invalid ones included.
    pub profiles: u64,
    /// Profiles whose hash matches their state row: nothing to send.
    pub unchanged: u64,
    /// Entries in the spools (changed, new, toDelete, invalid).
    pub spooled: u64,
    /// Profiles in the state that left the input (sent only with --deletes).
    pub absent: u64,
    /// Deletes and clears the run would send, for the mass-delete guard.
    pub destructive: u64,
    /// The first of them, for the question.
    pub doomed: Vec<Doomed>,
    /// Unchanged profiles whose state row holds no hash, or another one
    /// (a state written by an older ferry): the hash to write back.
    rehash: Vec<(String, String)>,
    /// A key other than its profile's id has been taken (`key_taken`).
    other_keys: bool,
}

/// The scratch folder of one run, under `root` (`.ferry/tmp/` of the
/// connector folder, beside the state: not the system's temporary folder,
/// which may be memory); folders a run that died left there a day ago or
/// more are removed first.
fn scratch(root: &Path) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("could not create {}", root.display()))?;
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE);
            if old && entry.file_name().to_string_lossy().starts_with("export-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(root)
        .with_context(|| format!("could not create a scratch folder in {}", root.display()))
}

/// `path` as an SQLite URI that opens it read-only, whatever characters it
/// holds (`#`, `?` and `%` would otherwise end or escape the path).
fn read_only_uri(path: &Path) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let text = path.display().to_string();
    format!(
        "file:{}?mode=ro",
        percent_encoding::utf8_percent_encode(&text, KEEP)
    )
}

fn writer(path: &Path) -> Result<BufWriter<std::fs::File>> {
    Ok(BufWriter::with_capacity(
        1 << 16,
        std::fs::File::create(path).context("could not create the export's spool")?,
    ))
}

impl Scan {
    /// Read `input` to its end against the state at `state_path`, with the
    /// scratch files under `folder/.ferry/tmp/`. A dry run (`upgrade`
    /// false) writes nothing there: it reads an older state as it is and
    /// keeps its scratch files in the system's temporary folder.
    pub async fn run(
        mut input: Stream,
        folder: &Path,
        state_path: &Path,
        dest: &ExportFields,
        full: bool,
        upgrade: bool,
    ) -> Result<Scan> {
        let root = upgrade.then(|| folder.join(".ferry").join("tmp"));
        let dir = match &root {
            Some(root) => scratch(root)?,
            None => tempfile::Builder::new()
                .prefix("ferry-export-")
                .tempdir()
                .context("could not create a temporary folder")?,
        };
        let conn = Connection::open(dir.path().join("run.db"))
            .context("could not create the export's scratch database")?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE TABLE seen (id TEXT PRIMARY KEY, own_key INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE keys (key TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;",
        )?;
        let has_state = state_path.exists();
        if has_state {
            if upgrade {
                // Opened to write first: a state from an older ferry gains
                // its hash column and index before the run reads it.
                drop(super::State::open(state_path.to_path_buf())?);
            }
            conn.execute(
                "ATTACH DATABASE ?1 AS st",
                params![read_only_uri(state_path)],
            )
            .with_context(|| format!("could not read the export state {}", state_path.display()))?;
        }
        let indexed = has_state
            && conn
                .prepare("SELECT 1 FROM st.sqlite_master WHERE type = 'index' AND name = 'profiles_hash'")?
                .exists([])?;
        // A page cache of 2 MiB each, SQLite's default, set here because
        // it is a choice: 8 MiB saved a few percent of an unchanged run's
        // CPU (the lookups hit the state's index at random) but was still
        // filling at 100,000 profiles, so memory grew with the input.
        conn.execute_batch("PRAGMA cache_size = -2048")?;
        if has_state {
            conn.execute_batch("PRAGMA st.cache_size = -2048")?;
        }
        let spool_path = dir.path().join("spool.jsonl");
        let deletes_path = dir.path().join("deletes.jsonl");
        let mut scan = Scan {
            conn,
            has_state,
            indexed,
            spool: Some(writer(&spool_path)?),
            deletes: Some(writer(&deletes_path)?),
            spool_path,
            deletes_path,
            state_path: state_path.to_path_buf(),
            dir: Some(dir),
            root,
            profiles: 0,
            unchanged: 0,
            spooled: 0,
            absent: 0,
            destructive: 0,
            doomed: Vec::new(),
            rehash: Vec::new(),
            other_keys: false,
        };
        // The run's marks are scratch: written in large transactions.
        scan.conn.execute_batch("BEGIN")?;
        while let Some(entry) = input.next().await? {
            scan.profiles += 1;
            scan.one(entry, dest, full)?;
            if scan.profiles.is_multiple_of(MARKS_PER_COMMIT) {
                scan.conn.execute_batch("COMMIT; BEGIN")?;
            }
        }
        scan.conn.execute_batch("COMMIT")?;
        for spool in [scan.spool.take(), scan.deletes.take()]
            .into_iter()
            .flatten()
        {
            let mut spool = spool;
            spool
                .flush()
                .context("could not write the export's spool")?;
        }
        Ok(scan)
    }

    /// One entry of the input.
    fn one(&mut self, entry: Entry, dest: &ExportFields, full: bool) -> Result<()> {
        let profile = match entry {
            Ok(p) => p,
            Err(invalid) => return self.spool_invalid(&invalid),
        };
        // The fields and key the profile would send, worked out before it
        // is marked (nothing here writes). An invalid profile takes no key,
        // and is never unchanged: the second pass says what is wrong with
        // it, every run.
        let mut fields = profile.properties.clone();
        if !profile.to_delete && dest.key_from_profile_id && !fields.contains_key(&dest.key) {
            fields.insert(dest.key.clone(), Value::String(profile.id.clone()));
        }
        let key = (!profile.to_delete && diff::validate(&fields, dest).is_ok())
            .then(|| record_id(&fields, &dest.key))
            .flatten();
        // A key that is the profile's own id is marked in `seen` alone: two
        // such profiles with one key are one id listed twice. Only keys of
        // another value go to `keys` (see `key_taken`).
        let own_key = key.as_deref() == Some(profile.id.as_str());
        let fresh = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO seen (id, own_key) VALUES (?1, ?2)")?
            .execute(params![profile.id, own_key])?;
        if fresh == 0 {
            return self.spool_invalid(&Invalid::new(
                profile.id,
                "listed more than once",
                "the profile appears more than once in the input; only the first is exported",
            ));
        }
        let known = self.known(&profile.id)?;
        if profile.to_delete {
            if known.is_some() {
                self.destructive += 1;
                if self.doomed.len() < NAMED {
                    let key = self.key_of(&profile.id)?;
                    self.name(&profile.id, &key, true);
                }
            }
            return self.spool_delete(&profile);
        }
        let Some(key) = key else {
            return self.spool_profile(&profile);
        };
        if let Some(other) = self.key_taken(&key, own_key, &profile.id)? {
            return self.spool_invalid(&Invalid::new(
                profile.id,
                format!("with the same \"{}\" as another profile", dest.key),
                format!(
                    "profile {other} has the same {} \"{key}\"; a destination record holds one profile",
                    dest.key
                ),
            ));
        }
        match known {
            Some(k) if !full => {
                let now = state::hash(&fields, &profile.groups);
                if k.hash.as_deref() == Some(now.as_str()) {
                    self.unchanged += 1;
                    return Ok(());
                }
                if k.hash.is_none() && k.fallback.as_deref() == Some(now.as_str()) {
                    // A row an older ferry wrote: unchanged, and its hash
                    // is written back so the next run finds it at once.
                    self.unchanged += 1;
                    self.rehash.push((profile.id, now));
                    return Ok(());
                }
                self.spool_profile(&profile)
            }
            _ => self.spool_profile(&profile),
        }
    }

    /// The profile that already holds `key`, or `None` when `id` takes it
    /// now. Keys that are their profile's own id (the common case: a
    /// destination keyed by the profile id) are only in `seen`, which
    /// spares a second insert per profile; until a key of another value
    /// has been taken, no other profile can hold such a key (one with the
    /// same id was refused as listed twice). After that, both tables are
    /// asked.
    fn key_taken(&mut self, key: &str, own_key: bool, id: &str) -> Result<Option<String>> {
        if own_key && !self.other_keys {
            return Ok(None);
        }
        let holder: Option<String> = self
            .conn
            .prepare_cached("SELECT id FROM keys WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        if holder.is_some() || own_key {
            return Ok(holder);
        }
        let own: bool = self
            .conn
            .prepare_cached("SELECT 1 FROM seen WHERE id = ?1 AND own_key")?
            .exists(params![key])?;
        if own {
            return Ok(Some(key.to_string()));
        }
        self.conn
            .prepare_cached("INSERT INTO keys (key, id) VALUES (?1, ?2)")?
            .execute(params![key, id])?;
        self.other_keys = true;
        Ok(None)
    }

    /// The hash of `id`'s state row: the one it keeps, or (for a row
    /// without one) the one its properties and groups give.
    fn known(&self, id: &str) -> Result<Option<Known>> {
        if !self.has_state {
            return Ok(None);
        }
        let hash: Option<Option<String>> = if self.indexed {
            // Answered by the (id, hash) index alone.
            self.conn
                .prepare_cached(
                    "SELECT hash FROM st.profiles INDEXED BY profiles_hash WHERE id = ?1",
                )?
                .query_row(params![id], |r| r.get(0))
                .optional()?
        } else {
            self.conn
                .prepare_cached("SELECT NULL FROM st.profiles WHERE id = ?1")?
                .query_row(params![id], |r| r.get(0))
                .optional()?
        };
        let Some(hash) = hash else {
            return Ok(None);
        };
        let fallback = match hash {
            Some(_) => None,
            None => {
                let (props, groups): (String, String) = self
                    .conn
                    .prepare_cached("SELECT properties, groups FROM st.profiles WHERE id = ?1")?
                    .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let damaged = || "the export state is damaged".to_string();
                let props: Record = serde_json::from_str(&props).with_context(damaged)?;
                let groups = serde_json::from_str(&groups).with_context(damaged)?;
                Some(state::hash(&props, &groups))
            }
        };
        Ok(Some(Known { hash, fallback }))
    }

    /// The key the state knows `id` by (to name a profile to delete).
    fn key_of(&self, id: &str) -> Result<String> {
        Ok(self.conn.query_row(
            "SELECT key FROM st.profiles WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?)
    }

    fn name(&mut self, id: &str, key: &str, delete: bool) {
        if self.doomed.len() < NAMED {
            self.doomed.push(Doomed {
                id: id.to_string(),
                key: key.to_string(),
                delete,
            });
        }
    }

    fn spool_profile(&mut self, p: &Profile) -> Result<()> {
        self.spool_to(false, &profile_line(p))
    }

    fn spool_delete(&mut self, p: &Profile) -> Result<()> {
        self.spool_to(true, &profile_line(p))
    }

    fn spool_invalid(&mut self, i: &Invalid) -> Result<()> {
        let line = json!({"i": {"id": i.id, "reason": i.reason, "message": i.message}});
        self.spool_to(false, &line)
    }

    /// Append `line` to the deletes spool or the other one.
    fn spool_to(&mut self, deletes: bool, line: &Value) -> Result<()> {
        let spool = if deletes {
            self.deletes.as_mut()
        } else {
            self.spool.as_mut()
        }
        .context("the export's spool is closed")?;
        serde_json::to_writer(&mut *spool, line)?;
        spool
            .write_all(b"\n")
            .context("could not write the export's spool")?;
        self.spooled += 1;
        Ok(())
    }

    /// The hashes to write back into the state for unchanged rows that
    /// had none (taken once).
    pub fn take_rehash(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.rehash)
    }

    /// With `--deletes`, the profiles of the state that left the input:
    /// counted, and the destructive ones among them counted and named for
    /// the mass-delete question.
    pub fn count_absent(
        &mut self,
        dest: &ExportFields,
        groups: bool,
        deletes: Deletes,
    ) -> Result<()> {
        if !self.has_state || deletes == Deletes::None {
            return Ok(());
        }
        let mut after = String::new();
        loop {
            let page = self.absent_page(&after, 1000)?;
            let Some((last, _)) = page.last() else {
                return Ok(());
            };
            after = last.clone();
            for (id, row) in &page {
                self.absent += 1;
                if let Some(p) = diff::absent(id, row, dest, groups, deletes) {
                    if p.is_destructive() {
                        self.destructive += 1;
                        self.name(id, &p.key, matches!(p.step, diff::Step::Delete { .. }));
                    }
                }
            }
        }
    }

    /// Up to `n` state rows that left the input, by id after `after`.
    pub fn absent_page(&self, after: &str, n: usize) -> Result<Vec<(String, Exported)>> {
        if !self.has_state {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.dest_id, p.key, p.properties, p.groups FROM st.profiles p
             WHERE p.id > ?1 AND NOT EXISTS (SELECT 1 FROM seen s WHERE s.id = p.id)
             ORDER BY p.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, n as i64], state::row_of)?;
        rows.map(|row| state::exported_of(row?, &self.state_path))
            .collect()
    }

    /// The spooled `toDelete` marks, in input order.
    pub fn deletes(&self) -> Result<Spooled> {
        Spooled::open(&self.deletes_path)
    }

    /// The other spooled entries, in input order.
    pub fn entries(&self) -> Result<Spooled> {
        Spooled::open(&self.spool_path)
    }
}

impl Drop for Scan {
    /// The scratch folder goes, and `.ferry/tmp/` with it when no other
    /// run has one there.
    fn drop(&mut self) {
        drop(self.dir.take());
        if let Some(root) = &self.root {
            let _ = std::fs::remove_dir(root);
        }
    }
}

/// A state row as the first pass reads it.
struct Known {
    /// The hash the row keeps (none in a row an older ferry wrote).
    hash: Option<String>,
    /// For a row without one: the hash of its properties and groups.
    fallback: Option<String>,
}

fn profile_line(p: &Profile) -> Value {
    json!({"p": {
        "id": p.id,
        "properties": Value::Object(p.properties.clone()),
        "groups": p.groups,
        "toDelete": p.to_delete,
    }})
}

/// A spool, read back a chunk at a time.
pub struct Spooled {
    reader: std::io::BufReader<std::fs::File>,
    line: String,
}

impl Spooled {
    fn open(path: &Path) -> Result<Spooled> {
        let file = std::fs::File::open(path).context("could not read the export's spool")?;
        Ok(Spooled {
            reader: std::io::BufReader::with_capacity(1 << 16, file),
            line: String::new(),
        })
    }

    /// Up to `n` entries; empty at the end.
    pub fn chunk(&mut self, n: usize) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        while out.len() < n {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                break;
            }
            let v: Value =
                serde_json::from_str(&self.line).context("the export's spool is damaged")?;
            out.push(match (v.get("p"), v.get("i")) {
                (Some(p), _) => super::input::from_value(p, "the spool"),
                (None, Some(i)) => Err(Invalid::new(
                    i["id"].as_str().unwrap_or_default(),
                    i["reason"].as_str().unwrap_or_default(),
                    i["message"].as_str().unwrap_or_default(),
                )),
                (None, None) => anyhow::bail!("the export's spool is damaged"),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_path_is_a_uri_whatever_it_holds() {
        assert_eq!(
            read_only_uri(Path::new("/tmp/a b/#x?y%z/s.db")),
            "file:/tmp/a%20b/%23x%3Fy%25z/s.db?mode=ro"
        );
    }
}
