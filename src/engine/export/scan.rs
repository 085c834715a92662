//! The first pass of an export: every profile of the input once, checked
//! against the rest of the run (a profile listed twice, two profiles with
//! one key) and, by its hash, against the export state, without a lookup
//! per profile and without loading a state row. It goes in two steps:
//!
//! 1. Read the input in order. Every entry goes to a spool file, with its
//!    place in the input, for the second pass to send from a chunk at a
//!    time (`toDelete` marks to a spool of their own: deletes go out
//!    before creates, as a key may pass from a deleted profile to a new
//!    one). Each profile also leaves a mark (id, place, hash) in sorted
//!    runs ([`super::runs`]), and a second mark by its destination key
//!    when that key is not its id (a destination keyed by email).
//! 2. Merge the id runs with the state's (id, hash) index read in id order:
//!    a repeated id is listed twice (the first place wins), an equal hash
//!    is unchanged, a state row no mark met left the input (noted in a
//!    scratch table, so `--deletes` finds them by one query). Then, if any
//!    profile's key is not its id, merge by key: the first profile to
//!    have a key holds it, and the others are refused.
//!
//! What each entry came to is kept in two bits per entry ([`Verdicts`]);
//! the second pass reads the spools back in input order and skips what is
//! unchanged without parsing it. Memory is the runs being filled, the read
//! buffers of at most 64 runs being merged, and those bits (a quarter of a
//! MiB per million profiles). Everything else lives in a scratch folder
//! under `.ferry/tmp/`, with the state attached read-only.

use std::collections::BTreeSet;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::diff::{self, Deletes};
use super::input::{Entry, Invalid, Item, Profile};
use super::light::{self, Light};
use super::runs::{Merge, Run, Runs};
use super::state::{self, Exported};
use super::Doomed;
use crate::connector::{record_id, ExportFields, Record};

/// How many doomed profiles the mass-delete question names.
const NAMED: usize = 10;
/// A scratch folder older than this belongs to a run that died.
const STALE: Duration = Duration::from_secs(24 * 3600);
/// State rows read per query while merging: each query is a transaction
/// of its own, so the state is never held for long (another run may be
/// writing it).
const STATE_PAGE: i64 = 10_000;

/// A mark's flags: a `toDelete` mark.
const FLAG_DELETE: u8 = 1;
/// The profile has a valid key (it can be unchanged, and holds that key).
const FLAG_KEYED: u8 = 2;
/// Its key is its own id (it holds the key through its id mark).
const FLAG_OWN_KEY: u8 = 4;
/// A mark of the key runs (sorted by key; `id` is the profile's id).
const FLAG_BY_KEY: u8 = 8;
/// An entry that names its profile but cannot be sent (`"groups": 5`):
/// the profile is in the input, so its state row has not left it.
const FLAG_INVALID: u8 = 16;

/// What the first pass found.
pub struct Scan {
    /// The scratch database (`absent` and `taken`), with the state
    /// attached as `st` when it exists.
    conn: Connection,
    /// The state, read-only, for the merge (its own connection, so that
    /// the scratch tables' transactions never hold it).
    state: Option<Connection>,
    /// The state has the (id, hash) index the merge reads; an older state
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
    ids: Runs,
    keys: Runs,
    verdicts: Verdicts,
    /// The destination's key field, as refusals name it.
    key_field: String,
    /// Entries of the input, invalid ones included.
    pub profiles: u64,
    /// Of them, JSON lines read light (without building the profile).
    pub light: u64,
    /// Profiles whose hash matches their state row: nothing to send.
    pub unchanged: u64,
    /// Entries the second pass reads from the spools (changed, new,
    /// toDelete, invalid).
    pub spooled: u64,
    /// Profiles in the state that left the input (sent only with --deletes).
    pub absent: u64,
    /// Deletes and clears the run would send, for the mass-delete guard.
    pub destructive: u64,
    /// The first of them, for the question.
    pub doomed: Vec<Doomed>,
    /// Unchanged profiles whose state row holds no hash (a state written
    /// by an older ferry), by place: the hash to write back.
    rehash: Vec<(u64, String, String)>,
    /// A profile's key is not its id: the key runs are merged.
    other_keys: bool,
}

/// What became of each entry of the input, two bits each, by position:
/// 0 (to be sent, or reported invalid for an entry that is) unless one of
/// the verdicts below.
#[derive(Default)]
struct Verdicts(Vec<u8>);
/// Its hash matches its state row.
const UNCHANGED: u8 = 1;
/// Its id came earlier in the input.
const LISTED_TWICE: u8 = 2;
/// Its key is held by an earlier profile (the `taken` table says which).
const KEY_TAKEN: u8 = 3;

impl Verdicts {
    /// Room for the entry at `pos` (entries come in order).
    fn grow(&mut self, pos: u64) {
        let byte = (pos / 4) as usize;
        if byte >= self.0.len() {
            self.0.push(0);
        }
    }

    fn get(&self, pos: u64) -> u8 {
        let byte = self.0.get((pos / 4) as usize).copied().unwrap_or(0);
        (byte >> ((pos % 4) * 2)) & 3
    }

    fn set(&mut self, pos: u64, verdict: u8) {
        if let Some(byte) = self.0.get_mut((pos / 4) as usize) {
            let shift = (pos % 4) * 2;
            *byte = (*byte & !(3 << shift)) | (verdict << shift);
        }
    }
}

/// How a spool line starts (after its place in the input): a [`LineOut`],
/// or the text of a JSON line read light.
const LINE: &str = "j";
const TEXT: &str = "r";
/// The place of a `toDelete` mark, with its id as a JSON string.
const PLACE: &str = "d";

/// A spool line as written: a profile or an invalid entry, borrowed.
#[derive(Serialize)]
enum LineOut<'a> {
    #[serde(rename = "p")]
    Profile {
        id: &'a str,
        properties: &'a Record,
        groups: &'a BTreeSet<String>,
        #[serde(rename = "toDelete")]
        to_delete: bool,
    },
    #[serde(rename = "i")]
    Invalid {
        id: &'a str,
        reason: &'a str,
        message: &'a str,
    },
}

/// A spool line as read back.
#[derive(Deserialize)]
enum LineIn {
    #[serde(rename = "p")]
    Profile {
        id: String,
        properties: Record,
        groups: BTreeSet<String>,
        #[serde(rename = "toDelete")]
        to_delete: bool,
    },
    #[serde(rename = "i")]
    Invalid {
        id: String,
        reason: String,
        message: String,
    },
}

impl LineIn {
    fn entry(self) -> Entry {
        match self {
            LineIn::Profile {
                id,
                properties,
                groups,
                to_delete,
            } => Ok(Profile {
                id,
                properties,
                groups,
                to_delete,
            }),
            LineIn::Invalid {
                id,
                reason,
                message,
            } => Err(Invalid::new(id, reason, message)),
        }
    }
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

/// `path` as an SQLite URI that opens an existing file, whatever characters
/// it holds (`#`, `?` and `%` would otherwise end or escape the path). The
/// pass only reads through it, but not as `mode=ro`: the state keeps a
/// write-ahead log, which only a connection that could write removes when
/// it is the last to close (see [`super::State::open_read`]).
fn state_uri(path: &Path) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let text = path.display().to_string();
    format!(
        "file:{}?mode=rw",
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
    /// keeps its scratch files in the system's temporary folder. The
    /// profiles that left the input are only noted with `deletes`.
    pub async fn run(
        mut input: super::input::Stream,
        folder: &Path,
        state_path: &Path,
        dest: &ExportFields,
        opts: diff::DiffOptions,
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
             CREATE TABLE absent (id TEXT PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE taken (pos INTEGER PRIMARY KEY, key TEXT NOT NULL, holder TEXT NOT NULL);",
        )?;
        let state = if state_path.exists() {
            if upgrade {
                // Opened to write first: a state from an older ferry gains
                // its hash column and index before the run reads it.
                drop(super::State::open(state_path.to_path_buf())?);
            }
            let read = || format!("could not read the export state {}", state_path.display());
            conn.execute("ATTACH DATABASE ?1 AS st", params![state_uri(state_path)])
                .with_context(read)?;
            let state = Connection::open_with_flags(state_path, OpenFlags::SQLITE_OPEN_READ_WRITE)
                .with_context(read)?;
            state.busy_timeout(Duration::from_secs(10))?;
            Some(state)
        } else {
            None
        };
        let indexed = match &state {
            Some(state) => state
                .prepare(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'profiles_hash'",
                )?
                .exists([])?,
            None => false,
        };
        let spool_path = dir.path().join("spool.jsonl");
        let deletes_path = dir.path().join("deletes.jsonl");
        let mut scan = Scan {
            conn,
            state,
            indexed,
            spool: Some(writer(&spool_path)?),
            deletes: Some(writer(&deletes_path)?),
            spool_path,
            deletes_path,
            state_path: state_path.to_path_buf(),
            ids: Runs::new(dir.path(), "ids"),
            keys: Runs::new(dir.path(), "keys"),
            dir: Some(dir),
            root,
            verdicts: Verdicts::default(),
            key_field: dest.key.clone(),
            profiles: 0,
            light: 0,
            unchanged: 0,
            spooled: 0,
            absent: 0,
            destructive: 0,
            doomed: Vec::new(),
            rehash: Vec::new(),
            other_keys: false,
        };
        // Hashes are only compared with a state, and not at all with --full.
        let hashed = scan.state.is_some() && !opts.full;
        let light = light::Reader::new(dest);
        while let Some(item) = input.next_item().await? {
            match item {
                Item::Line(line) => match light.as_ref().and_then(|r| r.read(line.text)) {
                    Some(found) => scan.read_light(&found, line.text, hashed)?,
                    None => scan.read(line.entry(), dest, hashed)?,
                },
                Item::Entry(entry) => scan.read(entry, dest, hashed)?,
            }
        }
        for spool in [scan.spool.take(), scan.deletes.take()]
            .into_iter()
            .flatten()
        {
            let mut spool = spool;
            spool
                .flush()
                .context("could not write the export's spool")?;
        }
        scan.merge_ids(hashed, opts.deletes != Deletes::None)?;
        if scan.other_keys {
            scan.merge_keys()?;
        }
        // The merges are done: the pages they cached are not read again,
        // and the second pass holds up to four chunks of its own.
        for conn in std::iter::once(&scan.conn).chain(scan.state.as_ref()) {
            conn.execute_batch("PRAGMA shrink_memory")?;
        }
        scan.spooled = scan.profiles - scan.unchanged;
        Ok(scan)
    }

    /// The place in the input of the entry read now.
    fn next_pos(&mut self) -> u64 {
        let pos = self.profiles;
        self.profiles += 1;
        self.verdicts.grow(pos);
        pos
    }

    /// One JSON line read light: spooled as it is, and marked.
    fn read_light(&mut self, found: &Light<'_>, text: &str, hashed: bool) -> Result<()> {
        let pos = self.next_pos();
        self.light += 1;
        let hash = if hashed { found.hash } else { 0 };
        self.mark(pos, found.id, found.to_delete, found.key, hash)?;
        let spool = self.spool(found.to_delete)?;
        write!(spool, "{pos}\t{TEXT}")
            .and_then(|()| spool.write_all(text.as_bytes()))
            .and_then(|()| spool.write_all(b"\n"))
            .context("could not write the export's spool")
    }

    /// One entry of the input: spooled, and marked in the runs.
    fn read(&mut self, entry: Entry, dest: &ExportFields, hashed: bool) -> Result<()> {
        let pos = self.next_pos();
        let mut profile = match entry {
            Ok(p) => p,
            Err(i) => {
                if i.named {
                    self.ids.push(&i.id, "", pos, FLAG_INVALID, 0)?;
                }
                let line = LineOut::Invalid {
                    id: &i.id,
                    reason: &i.reason,
                    message: &i.message,
                };
                return self.spool_to(false, pos, &line);
            }
        };
        let mut key = None;
        let mut hash = 0;
        if !profile.to_delete {
            // The fields the profile would send, key included, worked out
            // in place (and put back). An invalid profile takes no key, and
            // is never unchanged: the second pass says what is wrong with
            // it, every run.
            let fields = &mut profile.properties;
            let filled = dest.key_from_profile_id && !fields.contains_key(&dest.key);
            if filled {
                fields.insert(dest.key.clone(), Value::String(profile.id.clone()));
            }
            key = diff::validate(fields, dest)
                .is_ok()
                .then(|| record_id(fields, &dest.key))
                .flatten();
            if key.is_some() && hashed {
                hash = state::hash_of(fields, &profile.groups);
            }
            if filled {
                // The last one in: removing it leaves the order as it was.
                fields.shift_remove(&dest.key);
            }
        }
        self.mark(pos, &profile.id, profile.to_delete, key.as_deref(), hash)?;
        let line = LineOut::Profile {
            id: &profile.id,
            properties: &profile.properties,
            groups: &profile.groups,
            to_delete: profile.to_delete,
        };
        self.spool_to(profile.to_delete, pos, &line)
    }

    /// Mark entry `pos` in the runs: by its id always, and by its `key`
    /// when it has one other than its id; a `toDelete` mark keeps its
    /// place in the main spool too.
    fn mark(
        &mut self,
        pos: u64,
        id: &str,
        to_delete: bool,
        key: Option<&str>,
        hash: u128,
    ) -> Result<()> {
        let mut flags = 0;
        if to_delete {
            flags |= FLAG_DELETE;
        } else if let Some(key) = key {
            flags |= FLAG_KEYED;
            if key == id {
                flags |= FLAG_OWN_KEY;
            } else {
                self.keys.push(key, id, pos, FLAG_BY_KEY, 0)?;
                self.other_keys = true;
            }
        }
        self.ids.push(id, "", pos, flags, hash)?;
        if to_delete {
            self.hold_place(pos, id)?;
        }
        Ok(())
    }

    /// The deletes spool or the other one.
    fn spool(&mut self, deletes: bool) -> Result<&mut BufWriter<std::fs::File>> {
        if deletes {
            self.deletes.as_mut()
        } else {
            self.spool.as_mut()
        }
        .context("the export's spool is closed")
    }

    /// Keep the place of `toDelete` mark `pos` in the main spool: the
    /// mark itself goes out with the deletes, first, but when its id came
    /// earlier in the input it is reported where it stands, among the rest.
    fn hold_place(&mut self, pos: u64, id: &str) -> Result<()> {
        let spool = self.spool(false)?;
        write!(spool, "{pos}\t{PLACE}")
            .map_err(anyhow::Error::from)
            .and_then(|()| Ok(serde_json::to_writer(&mut *spool, id)?))
            .and_then(|()| Ok(spool.write_all(b"\n")?))
            .context("could not write the export's spool")
    }

    /// Append entry `pos` to the deletes spool or the other one.
    fn spool_to(&mut self, deletes: bool, pos: u64, line: &LineOut<'_>) -> Result<()> {
        let spool = self.spool(deletes)?;
        write!(spool, "{pos}\t{LINE}").context("could not write the export's spool")?;
        serde_json::to_writer(&mut *spool, line)?;
        spool
            .write_all(b"\n")
            .context("could not write the export's spool")
    }

    /// The id merge: listed twice, unchanged, doomed by `toDelete`, and
    /// (`note_absent`) the state rows that left the input.
    fn merge_ids(&mut self, hashed: bool, note_absent: bool) -> Result<()> {
        let mut marks = Merge::open(self.ids.finish()?)?;
        let state = self.state.as_ref();
        let mut rows = StateRows::new(state, self.indexed);
        // The first toDelete marks of known profiles, by place in the input.
        let mut doomed: Vec<(u64, String)> = Vec::new();
        let mut last: Option<String> = None;
        let absent = |id: &str| -> Result<()> {
            if note_absent {
                self.conn
                    .prepare_cached("INSERT OR IGNORE INTO absent (id) VALUES (?1)")?
                    .execute(params![id])?;
            }
            Ok(())
        };
        // The state row the last mark's id found, for the next mark with
        // the same id (an invalid entry's mark beside a profile's).
        let mut found: Option<(String, Option<Option<String>>)> = None;
        self.conn.execute_batch("BEGIN")?;
        while let Some(mark) = marks.next_mark()? {
            let invalid = mark.flags & FLAG_INVALID != 0;
            if !invalid && last.as_deref() == Some(mark.key.as_str()) {
                self.verdicts.set(mark.pos, LISTED_TWICE);
                continue;
            }
            while let Some(id) = rows.before(&mark.key)? {
                absent(&id)?;
            }
            let known = match found.take() {
                Some((id, known)) if id == mark.key => known,
                _ => rows.take(&mark.key)?,
            };
            found = Some((mark.key.clone(), known.clone()));
            // An entry that cannot be sent keeps its profile's row from
            // counting as gone, and has no other part in the merge: it is
            // reported invalid where it stands, and a profile with the
            // same id is not listed twice for it.
            if invalid {
                continue;
            }
            if mark.flags & FLAG_DELETE != 0 {
                if known.is_some() {
                    self.destructive += 1;
                    doomed.push((mark.pos, mark.key.clone()));
                    doomed.sort_unstable();
                    doomed.truncate(NAMED);
                }
            } else if let (true, true, Some(hash), Some(state)) =
                (hashed, mark.flags & FLAG_KEYED != 0, known, state)
            {
                let same = match hash {
                    Some(hash) => same_hash(&hash, mark.hash),
                    None => {
                        // A row an older ferry wrote: unchanged if it
                        // hashes the same, and its hash is written back so
                        // the next run finds it at once.
                        let same = row_hash(state, &self.state_path, &mark.key)? == mark.hash;
                        if same {
                            self.rehash.push((
                                mark.pos,
                                mark.key.clone(),
                                format!("{:032x}", mark.hash),
                            ));
                        }
                        same
                    }
                };
                if same {
                    self.unchanged += 1;
                    self.verdicts.set(mark.pos, UNCHANGED);
                }
            }
            last = Some(mark.key);
        }
        while let Some(id) = rows.before_end()? {
            absent(&id)?;
        }
        self.conn.execute_batch("COMMIT")?;
        for (_, id) in doomed {
            let key = self.key_of(&id)?;
            self.name(&id, &key, true);
        }
        Ok(())
    }

    /// The key merge, once some profile's key is not its id: every keyed
    /// profile by its key (the id marks of those whose key is their id,
    /// and the key marks of the others), and the first in the input to
    /// have a key holds it. A profile listed twice takes no key.
    fn merge_keys(&mut self) -> Result<()> {
        let files: Vec<Run> = self
            .ids
            .finish()?
            .iter()
            .chain(self.keys.finish()?.iter())
            .cloned()
            .collect();
        let mut marks = Merge::open(&files)?;
        let mut holder: Option<(String, String)> = None;
        self.conn.execute_batch("BEGIN")?;
        while let Some(mark) = marks.next_mark()? {
            let by_key = mark.flags & FLAG_BY_KEY != 0;
            if !by_key && mark.flags & FLAG_OWN_KEY == 0 {
                continue;
            }
            if self.verdicts.get(mark.pos) == LISTED_TWICE {
                continue;
            }
            match &holder {
                Some((key, id)) if *key == mark.key => {
                    if self.verdicts.get(mark.pos) == UNCHANGED {
                        self.unchanged -= 1;
                    }
                    self.verdicts.set(mark.pos, KEY_TAKEN);
                    self.conn
                        .prepare_cached("INSERT INTO taken (pos, key, holder) VALUES (?1, ?2, ?3)")?
                        .execute(params![mark.pos as i64, mark.key, id])?;
                }
                _ => {
                    let id = if by_key { mark.id } else { mark.key.clone() };
                    holder = Some((mark.key, id));
                }
            }
        }
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// The key the state knows `id` by (to name a profile to delete).
    fn key_of(&self, id: &str) -> Result<String> {
        let state = self.state.as_ref().context("the export state is closed")?;
        Ok(
            state.query_row("SELECT key FROM profiles WHERE id = ?1", params![id], |r| {
                r.get(0)
            })?,
        )
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

    /// The hashes to write back into the state for unchanged rows that
    /// had none (taken once).
    pub fn take_rehash(&mut self) -> Vec<(String, String)> {
        // A profile refused for a key another holds is not unchanged.
        std::mem::take(&mut self.rehash)
            .into_iter()
            .filter(|(pos, _, _)| self.verdicts.get(*pos) != KEY_TAKEN)
            .map(|(_, id, hash)| (id, hash))
            .collect()
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
        if self.state.is_none() || deletes == Deletes::None {
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
        if self.state.is_none() {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT p.id, p.dest_id, p.key, p.properties, p.groups
             FROM absent a JOIN st.profiles p ON p.id = a.id
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, n as i64], state::row_of)?;
        rows.map(|row| state::exported_of(row?, &self.state_path))
            .collect()
    }

    /// The spooled `toDelete` marks, in input order.
    pub fn deletes(&self) -> Result<Spooled> {
        Spooled::open(&self.deletes_path, true)
    }

    /// The other spooled entries, in input order.
    pub fn entries(&self) -> Result<Spooled> {
        Spooled::open(&self.spool_path, false)
    }

    /// Up to `n` entries of `spool` to diff; empty at its end. Unchanged
    /// ones are skipped unread, and a profile listed twice or with a key
    /// another holds comes back invalid.
    pub fn chunk(&self, spool: &mut Spooled, n: usize) -> Result<Vec<Entry>> {
        let damaged = "the export's spool is damaged";
        let mut out = Vec::new();
        while out.len() < n {
            spool.line.clear();
            if spool.reader.read_line(&mut spool.line)? == 0 {
                break;
            }
            let (pos, text) = spool.line.split_once('\t').context(damaged)?;
            let pos: u64 = pos.parse().context(damaged)?;
            let verdict = self.verdicts.get(pos);
            if verdict == UNCHANGED {
                continue;
            }
            let text = text.trim_end_matches('\n');
            match (verdict, text.strip_prefix(PLACE)) {
                // A repeated toDelete mark is reported at its place.
                (LISTED_TWICE, Some(id)) => {
                    let id: String = serde_json::from_str(id).context(damaged)?;
                    out.push(Err(listed_twice(&id)));
                    continue;
                }
                (_, Some(_)) => continue,
                (LISTED_TWICE, None) if spool.deletes => continue,
                _ => {}
            }
            let entry = match (text.strip_prefix(LINE), text.strip_prefix(TEXT)) {
                (Some(line), _) => serde_json::from_str::<LineIn>(line)
                    .context(damaged)?
                    .entry(),
                (None, Some(text)) => super::input::from_owned(
                    serde_json::from_str(text).context(damaged)?,
                    "the spool",
                ),
                (None, None) => anyhow::bail!(damaged),
            };
            let id = match &entry {
                Ok(p) => p.id.as_str(),
                Err(i) => i.id.as_str(),
            };
            out.push(match verdict {
                LISTED_TWICE => Err(listed_twice(id)),
                KEY_TAKEN => {
                    let (key, holder): (String, String) = self
                        .conn
                        .prepare_cached("SELECT key, holder FROM taken WHERE pos = ?1")?
                        .query_row(params![pos as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .context(damaged)?;
                    Err(Invalid::new(
                        id,
                        format!("with the same \"{}\" as another profile", self.key_field),
                        format!(
                            "profile {holder} has the same {} \"{key}\"; a destination record holds one profile",
                            self.key_field
                        ),
                    ))
                }
                _ => entry,
            });
        }
        Ok(out)
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

/// Whether a state row's hash text is `hash` as [`state::hash`] writes it
/// (32 lowercase hex digits), without formatting it for every profile.
fn same_hash(text: &str, hash: u128) -> bool {
    text.len() == 32
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && u128::from_str_radix(text, 16).ok() == Some(hash)
}

/// The invalid entry of a profile whose id came earlier in the input.
fn listed_twice(id: &str) -> Invalid {
    Invalid::new(
        id,
        "listed more than once",
        "the profile appears more than once in the input; only the first is exported",
    )
}

/// The hash of `id`'s state row, from its properties and groups.
fn row_hash(state: &Connection, path: &Path, id: &str) -> Result<u128> {
    let (props, groups): (String, String) = state
        .prepare_cached("SELECT properties, groups FROM profiles WHERE id = ?1")?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let damaged = || format!("the export state {} is damaged", path.display());
    let props: Record = serde_json::from_str(&props).with_context(damaged)?;
    let groups = serde_json::from_str(&groups).with_context(damaged)?;
    Ok(state::hash_of(&props, &groups))
}

/// The state's rows in id order, a page at a time: the other side of the
/// id merge.
struct StateRows<'a> {
    state: Option<&'a Connection>,
    indexed: bool,
    page: std::collections::VecDeque<(String, Option<String>)>,
    /// The last id read; `None` before the first page.
    after: Option<String>,
    done: bool,
}

impl<'a> StateRows<'a> {
    fn new(state: Option<&'a Connection>, indexed: bool) -> StateRows<'a> {
        StateRows {
            done: state.is_none(),
            state,
            indexed,
            page: Default::default(),
            after: None,
        }
    }

    /// The next row, reading a page when the last one is used up.
    fn peek(&mut self) -> Result<Option<&(String, Option<String>)>> {
        if self.page.is_empty() && !self.done {
            self.read_page()?;
        }
        Ok(self.page.front())
    }

    fn read_page(&mut self) -> Result<()> {
        let Some(state) = self.state else {
            self.done = true;
            return Ok(());
        };
        // Answered from the (id, hash) index alone when there is one.
        let columns = if self.indexed {
            "id, hash FROM profiles INDEXED BY profiles_hash"
        } else {
            "id, NULL FROM profiles"
        };
        let sql = match self.after {
            Some(_) => format!("SELECT {columns} WHERE id > ?1 ORDER BY id LIMIT ?2"),
            None => format!("SELECT {columns} WHERE ?1 IS NULL ORDER BY id LIMIT ?2"),
        };
        let mut stmt = state.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![self.after, STATE_PAGE], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for row in rows {
            self.page.push_back(row?);
        }
        self.done = (self.page.len() as i64) < STATE_PAGE;
        self.after = self.page.back().map(|(id, _)| id.clone());
        Ok(())
    }

    /// The next row's id if it comes before `id` (a row no mark met).
    fn before(&mut self, id: &str) -> Result<Option<String>> {
        match self.peek()? {
            Some((row, _)) if row.as_bytes() < id.as_bytes() => {
                Ok(self.page.pop_front().map(|(row, _)| row))
            }
            _ => Ok(None),
        }
    }

    /// The next row's id, whatever it is (after the last mark).
    fn before_end(&mut self) -> Result<Option<String>> {
        self.peek()?;
        Ok(self.page.pop_front().map(|(row, _)| row))
    }

    /// The hash of `id`'s row (`Some(None)` for a row without one), if the
    /// next row is `id`'s.
    fn take(&mut self, id: &str) -> Result<Option<Option<String>>> {
        match self.peek()? {
            Some((row, _)) if row == id => Ok(self.page.pop_front().map(|(_, hash)| hash)),
            _ => Ok(None),
        }
    }
}

/// A spool, read back a chunk at a time through [`Scan::chunk`].
pub struct Spooled {
    reader: std::io::BufReader<std::fs::File>,
    line: String,
    /// The spool of `toDelete` marks.
    deletes: bool,
}

impl Spooled {
    fn open(path: &Path, deletes: bool) -> Result<Spooled> {
        let file = std::fs::File::open(path).context("could not read the export's spool")?;
        Ok(Spooled {
            reader: std::io::BufReader::with_capacity(1 << 16, file),
            line: String::new(),
            deletes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_path_is_a_uri_whatever_it_holds() {
        assert_eq!(
            state_uri(Path::new("/tmp/a b/#x?y%z/s.db")),
            "file:/tmp/a%20b/%23x%3Fy%25z/s.db?mode=rw"
        );
    }
}
