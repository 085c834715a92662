//! The first pass of an export: every profile of the input once, in input
//! order, checked against the rest of the run (a profile listed twice, two
//! profiles with one key) and, by its hash, against the export state with
//! one indexed lookup and without loading the row. An unchanged profile is
//! only counted; every other entry (a changed or new profile, a `toDelete`
//! mark, an invalid entry in its place) goes to a spool file that the
//! second pass sends from, a chunk at a time, so what a run holds does not
//! grow with its input. The run's marks (ids seen, keys taken) live in a
//! scratch SQLite file beside the spool, with the state attached read-only,
//! so the profiles that left the input are found by one query.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

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

/// What the first pass found.
pub struct Scan {
    conn: Connection,
    /// The state is attached as `st` (it exists).
    has_state: bool,
    spool: Option<BufWriter<std::fs::File>>,
    spool_path: PathBuf,
    _dir: tempfile::TempDir,
    /// Entries of the input, invalid ones included.
    pub profiles: u64,
    /// Profiles whose hash matches their state row: nothing to send.
    pub unchanged: u64,
    /// Entries in the spool (changed, new, toDelete, invalid).
    pub spooled: u64,
    /// Profiles in the state that left the input (sent only with --deletes).
    pub absent: u64,
    /// Deletes and clears the run would send, for the mass-delete guard.
    pub destructive: u64,
    /// The first of them, for the question.
    pub doomed: Vec<Doomed>,
}

/// A row of the state as the first pass reads it.
struct Known {
    hash: String,
}

impl Scan {
    /// Read `input` to its end against the state at `state_path`.
    pub async fn run(
        mut input: Stream,
        state_path: &Path,
        dest: &ExportFields,
        full: bool,
    ) -> Result<Scan> {
        let dir = tempfile::Builder::new()
            .prefix("ferry-export-")
            .tempdir()
            .context("could not create a temporary folder")?;
        let conn = Connection::open(dir.path().join("run.db"))
            .context("could not create the export's scratch database")?;
        conn.execute_batch(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
             CREATE TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID;
             CREATE TABLE keys (key TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;",
        )?;
        let has_state = state_path.exists();
        if has_state {
            // Opened to write first: a state from an older ferry gains its
            // hash column and index before the run reads it.
            drop(super::State::open(state_path.to_path_buf())?);
            let uri = format!("file:{}?mode=ro", state_path.display());
            conn.execute("ATTACH DATABASE ?1 AS st", params![uri])
                .with_context(|| {
                    format!("could not read the export state {}", state_path.display())
                })?;
        }
        // A page cache of 8 MiB each (SQLite's default is 2): the lookups hit the state's index
        // at random, and re-reading pages through the kernel cost a third
        // of an unchanged run.
        conn.execute_batch("PRAGMA cache_size = -8192")?;
        if has_state {
            conn.execute_batch("PRAGMA st.cache_size = -8192")?;
        }
        let spool_path = dir.path().join("spool.jsonl");
        let spool = BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(&spool_path).context("could not create the export's spool")?,
        );
        let mut scan = Scan {
            conn,
            has_state,
            spool: Some(spool),
            spool_path,
            _dir: dir,
            profiles: 0,
            unchanged: 0,
            spooled: 0,
            absent: 0,
            destructive: 0,
            doomed: Vec::new(),
        };
        // One transaction for the run's marks: they are scratch.
        scan.conn.execute_batch("BEGIN")?;
        while let Some(entry) = input.next().await? {
            scan.profiles += 1;
            scan.one(entry, dest, full)?;
        }
        scan.conn.execute_batch("COMMIT")?;
        if let Some(mut spool) = scan.spool.take() {
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
        let fresh = self
            .conn
            .prepare_cached("INSERT OR IGNORE INTO seen (id) VALUES (?1)")?
            .execute(params![profile.id])?;
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
            return self.spool_profile(&profile);
        }
        let mut fields = profile.properties.clone();
        if dest.key_from_profile_id && !fields.contains_key(&dest.key) {
            fields.insert(dest.key.clone(), Value::String(profile.id.clone()));
        }
        // An invalid profile takes no key; the second pass says what is wrong.
        if diff::validate(&fields, dest).is_ok() {
            if let Some(key) = record_id(&fields, &dest.key) {
                let taken = self
                    .conn
                    .prepare_cached("INSERT OR IGNORE INTO keys (key, id) VALUES (?1, ?2)")?
                    .execute(params![key, profile.id])?;
                if taken == 0 {
                    let other: String = self.conn.query_row(
                        "SELECT id FROM keys WHERE key = ?1",
                        params![key],
                        |r| r.get(0),
                    )?;
                    return self.spool_invalid(&Invalid::new(
                        profile.id,
                        format!("with the same \"{}\" as another profile", dest.key),
                        format!(
                            "profile {other} has the same {} \"{key}\"; a destination record holds one profile",
                            dest.key
                        ),
                    ));
                }
            }
        }
        match known {
            Some(k) if !full && k.hash == state::hash(&fields, &profile.groups) => {
                self.unchanged += 1;
                Ok(())
            }
            _ => self.spool_profile(&profile),
        }
    }

    /// The state row of `id`, as far as the first pass needs it.
    fn known(&self, id: &str) -> Result<Option<Known>> {
        if !self.has_state {
            return Ok(None);
        }
        // The hash only, answered by the (id, hash) index alone.
        let row: Option<Option<String>> = self
            .conn
            .prepare_cached("SELECT hash FROM st.profiles INDEXED BY profiles_hash WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        let Some(hash) = row else {
            return Ok(None);
        };
        let hash = match hash {
            Some(h) => h,
            // A row written before rows kept their hash.
            None => {
                let (props, groups): (String, String) = self.conn.query_row(
                    "SELECT properties, groups FROM st.profiles WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let props: Record = serde_json::from_str(&props).unwrap_or_default();
                let groups = serde_json::from_str(&groups).unwrap_or_default();
                state::hash(&props, &groups)
            }
        };
        Ok(Some(Known { hash }))
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
        let line = json!({"p": {
            "id": p.id,
            "properties": Value::Object(p.properties.clone()),
            "groups": p.groups,
            "toDelete": p.to_delete,
        }});
        self.spool_line(&line)
    }

    fn spool_invalid(&mut self, i: &Invalid) -> Result<()> {
        let line = json!({"i": {"id": i.id, "reason": i.reason, "message": i.message}});
        self.spool_line(&line)
    }

    fn spool_line(&mut self, line: &Value) -> Result<()> {
        let spool = self
            .spool
            .as_mut()
            .context("the export's spool is closed")?;
        serde_json::to_writer(&mut *spool, line)?;
        spool
            .write_all(b"\n")
            .context("could not write the export's spool")?;
        self.spooled += 1;
        Ok(())
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
        let rows = stmt.query_map(params![after, n as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, dest_id, key, props, groups) = row?;
            out.push((
                id,
                Exported {
                    dest_id,
                    key,
                    properties: serde_json::from_str(&props).unwrap_or_default(),
                    groups: serde_json::from_str(&groups).unwrap_or_default(),
                },
            ));
        }
        Ok(out)
    }

    /// The spooled entries, in input order.
    pub fn spooled_entries(&self) -> Result<Spooled> {
        let file =
            std::fs::File::open(&self.spool_path).context("could not read the export's spool")?;
        Ok(Spooled {
            reader: std::io::BufReader::with_capacity(1 << 16, file),
            line: String::new(),
        })
    }
}

/// The spool, read back a chunk at a time.
pub struct Spooled {
    reader: std::io::BufReader<std::fs::File>,
    line: String,
}

impl Spooled {
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
                (Some(p), _) => Ok(Profile {
                    id: p["id"].as_str().unwrap_or_default().to_string(),
                    properties: p["properties"].as_object().cloned().unwrap_or_default(),
                    groups: serde_json::from_value(p["groups"].clone()).unwrap_or_default(),
                    to_delete: p["toDelete"].as_bool().unwrap_or(false),
                }),
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
