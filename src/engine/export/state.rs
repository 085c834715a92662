//! Export state: per destination, a SQLite file under `<folder>/.ferry/`
//! (`export-<hash of the destination>.db`) holding, for each profile id,
//! its destination id, key, and the properties and groups last exported
//! *successfully*. A profile that failed keeps its old row, so the next run
//! diffs against what the destination really holds and sends it again.
//! Each row also keeps a hash of its properties and groups ([`hash`]), so a
//! run tells an unchanged profile from the `(id, hash)` index read in id
//! order, without loading the row; rows of an older state without one are
//! hashed as they are read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use crate::connector::Record;
use crate::wal::Checkpoints;

/// What was last exported for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub dest_id: String,
    pub key: String,
    pub properties: Record,
    pub groups: BTreeSet<String>,
}

/// A profile's row as [`State::save`] writes it: what was exported.
#[derive(Debug)]
pub struct Written {
    pub dest_id: String,
    pub key: String,
    pub properties: Props,
    pub groups: BTreeSet<String>,
}

/// Properties as a state row keeps them: their JSON, and the part of the
/// row's hash they make, which the groups complete. Written before the
/// properties are sent (by the planner, off the send's path), so the
/// request can take the properties themselves.
#[derive(Debug, Clone)]
pub struct Props {
    json: String,
    hashed: Fnv,
}

impl Props {
    /// The properties back from their JSON (a retry of properties sent):
    /// the same values, floats included (serde_json's `float_roundtrip`).
    /// The text is a map `of` wrote, so it always parses.
    pub fn record(&self) -> Record {
        serde_json::from_str(&self.json).unwrap_or_default()
    }

    pub fn of(properties: &Record) -> Props {
        Props {
            // A map of strings to JSON values always serializes.
            json: serde_json::to_string(properties).unwrap_or_default(),
            hashed: Fnv::of_properties(properties),
        }
    }
}

/// The state file of one destination.
pub struct State {
    path: PathBuf,
    /// The saves' checkpoints, once they are apart
    /// ([`State::checkpoint_apart`]). Declared before `conn`: dropped
    /// first, so the saves' connection is the last to close and removes
    /// the log.
    checkpoints: Option<Checkpoints>,
    conn: Option<Connection>,
}

/// With checkpoints apart, one every this many saves (chunks of 1,000
/// profiles write about 1,000 pages of log in eight).
const CHECKPOINT_EVERY: u32 = 8;

/// The state file for the destination `identity` in `folder`.
pub fn path_for(folder: &Path, identity: &str) -> PathBuf {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in identity.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    folder.join(".ferry").join(format!("export-{h:016x}.db"))
}

impl State {
    /// Open the state at `path` for reading; a missing file is an empty state
    /// and is only created by [`State::save`], so a dry run writes nothing.
    pub fn open(path: PathBuf) -> Result<State> {
        let conn = if path.exists() {
            Some(open_conn(&path)?)
        } else {
            None
        };
        Ok(State {
            path,
            checkpoints: None,
            conn,
        })
    }

    /// Leave folding the log into the file to checkpoints on a thread of
    /// their own (`crate::wal`). Left to the commits, every fourteenth save
    /// or so copied 4 MiB and waited for two fsyncs, and the run waited for
    /// that save.
    pub fn checkpoint_apart(&mut self) -> Result<()> {
        if let Some(conn) = &self.conn {
            crate::wal::checkpoint_apart(conn)?;
        }
        self.checkpoints = Some(Checkpoints::new(self.path.clone(), CHECKPOINT_EVERY));
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The state at `path` opened to be read, as it is (a dry run writes
    /// nothing, an older state is not upgraded); a missing file is empty.
    /// The connection could write, though nothing writes through it: the
    /// last connection to a write-ahead-logged file folds the log in and
    /// removes it when it closes, which a read-only one cannot do, and a
    /// dry run must not leave the log files behind.
    pub fn open_read(path: PathBuf) -> Result<State> {
        let conn = if path.exists() {
            let conn =
                Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
                    .with_context(|| {
                        format!("could not open the export state {}", path.display())
                    })?;
            conn.busy_timeout(std::time::Duration::from_secs(10))?;
            // Rows are looked up a chunk of ids at a time, scattered over
            // the file: a page cache would seldom be hit again.
            conn.pragma_update(None, "cache_size", -256)?;
            Some(conn)
        } else {
            None
        };
        Ok(State {
            path,
            checkpoints: None,
            conn,
        })
    }

    /// Write the hash of rows found unchanged that kept none or another
    /// (a state written by an older ferry), so the next run finds them at
    /// once.
    pub fn set_hashes(&mut self, hashes: &[(String, String)]) -> Result<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let tx = conn.transaction()?;
        for (id, hash) in hashes {
            tx.prepare_cached("UPDATE profiles SET hash = ?2 WHERE id = ?1")?
                .execute(params![id, hash])?;
        }
        tx.commit()
            .with_context(|| format!("could not save the export state {}", self.path.display()))
    }

    /// How many profiles were exported.
    pub fn count(&self) -> Result<u64> {
        let Some(conn) = &self.conn else {
            return Ok(0);
        };
        Ok(conn.query_row("SELECT COUNT(*) FROM profiles", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The exported profiles among `ids`, by profile id.
    pub fn rows(&self, ids: &[String]) -> Result<BTreeMap<String, Exported>> {
        let mut out = BTreeMap::new();
        let Some(conn) = &self.conn else {
            return Ok(out);
        };
        // SQLite takes at most 32766 parameters; a few hundred a query is plenty.
        for part in ids.chunks(500) {
            let marks = vec!["?"; part.len()].join(",");
            let sql = format!(
                "SELECT id, dest_id, key, properties, groups FROM profiles WHERE id IN ({marks})"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(part), row_of)?;
            for row in rows {
                let (id, e) = self.exported(row?)?;
                out.insert(id, e);
            }
        }
        Ok(out)
    }

    /// One row as read, parsed.
    fn exported(&self, row: Row) -> Result<(String, Exported)> {
        exported_of(row, &self.path)
    }

    /// Apply the run's results in one transaction: `Some` writes a profile's
    /// row, `None` removes it (deleted in the destination).
    pub fn save(&mut self, destination: &str, changes: &[(String, Option<Written>)]) -> Result<()> {
        if self.conn.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
            }
            let conn = open_conn(&self.path)?;
            if self.checkpoints.is_some() {
                crate::wal::checkpoint_apart(&conn)?;
            }
            self.conn = Some(conn);
        }
        let path = self.path.display().to_string();
        let conn = self.conn.as_mut().context("the export state is closed")?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('destination', ?1)",
            params![destination],
        )?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (id, row) in changes {
            match row {
                Some(e) => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO profiles (id, dest_id, key, properties, groups, exported_at, hash)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                            id,
                            e.dest_id,
                            e.key,
                            e.properties.json,
                            serde_json::to_string(&e.groups)?,
                            now,
                            format!("{:032x}", e.properties.hashed.with_groups(&e.groups))
                        ],
                    )?;
                }
                None => {
                    tx.prepare_cached("DELETE FROM profiles WHERE id = ?1")?
                        .execute(params![id])?;
                }
            }
        }
        tx.commit()
            .with_context(|| format!("could not save the export state {path}"))?;
        if let Some(checkpoints) = &mut self.checkpoints {
            checkpoints.wrote();
        }
        Ok(())
    }
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("could not open the export state {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A write-ahead log: a run saves the state after every chunk, and a
    // rollback journal's commit waits for two fsyncs (a third of a first
    // run's time); with the log a commit survives a killed process, and a
    // power cut loses at most the last commits (sent again next run, as
    // upserts), never the file. The run's planner reads while it writes.
    conn.pragma_update(None, "journal_mode", "WAL")
        .with_context(|| format!("could not open the export state {}", path.display()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '1');
         CREATE TABLE IF NOT EXISTS profiles (
             id TEXT PRIMARY KEY,
             dest_id TEXT NOT NULL,
             key TEXT NOT NULL,
             properties TEXT NOT NULL,
             groups TEXT NOT NULL,
             exported_at TEXT NOT NULL,
             hash TEXT
         );",
    )
    .with_context(|| format!("{} is not an export state file", path.display()))?;
    // A state written before rows kept their hash gains the column; its
    // rows are hashed as they are read until they are written again.
    let has_hash = conn
        .prepare("SELECT 1 FROM pragma_table_info('profiles') WHERE name = 'hash'")?
        .exists([])?;
    if !has_hash {
        conn.execute_batch("ALTER TABLE profiles ADD COLUMN hash TEXT")
            .with_context(|| format!("could not upgrade the export state {}", path.display()))?;
    }
    // What a run's first pass asks of each profile, answered from the index
    // alone: one B-tree search instead of two.
    conn.execute_batch("CREATE INDEX IF NOT EXISTS profiles_hash ON profiles (id, hash)")
        .with_context(|| format!("could not upgrade the export state {}", path.display()))?;
    Ok(conn)
}

/// A row as selected: id, dest_id, key, properties, groups.
pub(super) type Row = (String, String, String, String, String);

pub(super) fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// One row of the state at `path`, parsed.
pub(super) fn exported_of(row: Row, path: &Path) -> Result<(String, Exported)> {
    let (id, dest_id, key, props, groups) = row;
    let damaged = || format!("the export state {} is damaged", path.display());
    let properties: Record = serde_json::from_str(&props).with_context(damaged)?;
    let groups: BTreeSet<String> = serde_json::from_str(&groups).with_context(damaged)?;
    Ok((
        id,
        Exported {
            dest_id,
            key,
            properties,
            groups,
        },
    ))
}

/// The hash a state row keeps of what was exported: the properties (in
/// key order, whatever order they came in) and the groups. A profile whose
/// fields and groups hash the same is unchanged; a hash that differs only
/// makes the run diff the profile against its row (which then writes the
/// hash back). FNV-1a on 128 bits: written here, so it is the same on
/// every build, and wide enough that two different profiles do not meet.
pub fn hash(properties: &Record, groups: &BTreeSet<String>) -> String {
    format!("{:032x}", hash_of(properties, groups))
}

/// [`hash`] as a number, computed without building a string for any of
/// its parts (the first pass of an export hashes every profile it reads).
pub fn hash_of(properties: &Record, groups: &BTreeSet<String>) -> u128 {
    Fnv::of_properties(properties).with_groups(groups)
}

/// FNV-1a on 128 bits, fed as a writer (or by [`super::light`], which
/// feeds it the same bytes from a line's text).
#[derive(Debug, Clone, Copy)]
pub(super) struct Fnv(u128);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }

    /// The hash fed the properties, in key order: the first part of
    /// [`hash_of`].
    fn of_properties(properties: &Record) -> Fnv {
        let mut h = Fnv::new();
        let mut keys: Vec<&String> = properties.keys().collect();
        keys.sort_unstable();
        for k in keys {
            // The key as a JSON string, then the value as compact JSON: the
            // same bytes `to_string` gives, written straight into the hash.
            let _ = serde_json::to_writer(&mut h, k);
            h.eat(b":");
            let _ = serde_json::to_writer(&mut h, &properties[k.as_str()]);
            h.eat(b"\n");
        }
        h
    }

    /// The rest of [`hash_of`]: the groups, after the properties.
    fn with_groups(mut self, groups: &BTreeSet<String>) -> u128 {
        self.eat(b"\x01");
        for g in groups {
            self.eat(g.as_bytes());
            self.eat(b"\n");
        }
        self.finish()
    }

    pub(super) fn finish(&self) -> u128 {
        self.0
    }

    pub(super) fn eat(&mut self, bytes: &[u8]) {
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }
}

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.eat(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The hash as the first version of the state computed it, from
    /// strings: rows it wrote must still be found unchanged.
    fn hash_as_written_first(properties: &Record, groups: &BTreeSet<String>) -> String {
        let mut h = Fnv::new();
        let mut keys: Vec<&String> = properties.keys().collect();
        keys.sort();
        for k in keys {
            h.eat(serde_json::to_string(k).unwrap().as_bytes());
            h.eat(b":");
            h.eat(properties[k.as_str()].to_string().as_bytes());
            h.eat(b"\n");
        }
        h.eat(b"\x01");
        for g in groups {
            h.eat(g.as_bytes());
            h.eat(b"\n");
        }
        format!("{:032x}", h.0)
    }

    /// A create the destination asks to retry is rebuilt from the state
    /// row's JSON: it must be the record that was sent, to the last bit of
    /// a float.
    #[test]
    fn properties_come_back_from_their_json_as_they_were() {
        let p: Record = serde_json::from_value(json!({
            "tiny": 1.4562914443455792e-9,
            "pi": std::f64::consts::PI,
            "big": 12345678901234567890u64,
            "neg": -0.0,
            "text": "é\"\n",
            "nested": {"a": [1, 2.5, null]},
        }))
        .unwrap();
        let props = Props::of(&p);
        assert_eq!(props.record(), p);
        assert_eq!(serde_json::to_string(&props.record()).unwrap(), props.json);
    }

    /// With checkpoints apart, saves leave their pages in the log; every
    /// eighth save a checkpoint on its own connection and thread folds
    /// them into the file, and the last connection to close removes the
    /// log.
    #[test]
    fn a_checkpoint_apart_folds_the_saves_into_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.db");
        // A checkpoint before the first save finds no file and makes none.
        Checkpoints::new(path.clone(), 1).wrote();
        assert!(
            !path.exists(),
            "nothing to checkpoint before the first save"
        );
        let mut state = State::open(path.clone()).unwrap();
        state.checkpoint_apart().unwrap();
        let properties: Record =
            serde_json::from_value(json!({"email": "someone@example.com", "plan": "free"}))
                .unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut before = 0;
        for chunk in 0..CHECKPOINT_EVERY {
            let rows = if chunk + 1 < CHECKPOINT_EVERY {
                200
            } else {
                100
            };
            let changes: Vec<(String, Option<Written>)> = (0..rows)
                .map(|i| {
                    let id = format!("p{chunk}-{i}");
                    let row = Written {
                        dest_id: id.clone(),
                        key: id.clone(),
                        properties: Props::of(&properties),
                        groups: BTreeSet::from(["newsletter".to_string()]),
                    };
                    (id, Some(row))
                })
                .collect();
            before = size();
            state.save("sqlite:crm.db", &changes).unwrap();
        }
        let waited = std::time::Instant::now();
        while size() <= before + 100_000 && waited.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            size() > before + 100_000,
            "the file grew from {before} to only {} bytes",
            size()
        );
        drop(state);
        assert!(!dir.path().join("export.db-wal").exists());
        assert_eq!(State::open(path).unwrap().count().unwrap(), 1500);
    }

    #[test]
    fn the_hash_is_the_one_rows_were_written_with() {
        let profiles = [
            json!({}),
            json!({"email": "a@x", "age": 31, "plan": "free"}),
            json!({"z": null, "a": [1, 2.5, {"k": "v"}], "é\"\\\n": "tab\there \u{1}"}),
            json!({"n": -0.0, "big": 12345678901234567890u64, "t": true}),
        ];
        let groups: BTreeSet<String> = ["vip", "news letter", "ünï"].map(String::from).into();
        for p in profiles {
            let Value::Object(p) = p else { unreachable!() };
            for g in [BTreeSet::new(), groups.clone()] {
                assert_eq!(hash(&p, &g), hash_as_written_first(&p, &g));
            }
        }
        // One byte of difference anywhere changes it.
        let a: Record = serde_json::from_value(json!({"a": "x", "b": "y"})).unwrap();
        let b: Record = serde_json::from_value(json!({"a": "xy", "b": ""})).unwrap();
        assert_ne!(hash(&a, &BTreeSet::new()), hash(&b, &BTreeSet::new()));
    }
}
