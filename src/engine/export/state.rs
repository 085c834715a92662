//! Export state: per destination, a SQLite file under `<folder>/.ferry/`
//! (`export-<hash of the destination>.db`) holding, for each profile id,
//! its destination id, key, and the properties and groups last exported
//! *successfully*. A profile that failed keeps its old row, so the next run
//! diffs against what the destination really holds and sends it again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rusqlite::{params, Connection};

use crate::connector::Record;

/// What was last exported for one profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub dest_id: String,
    pub key: String,
    pub properties: Record,
    pub groups: BTreeSet<String>,
}

/// The state file of one destination.
pub struct State {
    path: PathBuf,
    conn: Option<Connection>,
}

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
        Ok(State { path, conn })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every exported profile, by profile id.
    pub fn load(&self) -> Result<BTreeMap<String, Exported>> {
        let mut out = BTreeMap::new();
        let Some(conn) = &self.conn else {
            return Ok(out);
        };
        let mut stmt = conn.prepare("SELECT id, dest_id, key, properties, groups FROM profiles")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        for row in rows {
            let (id, dest_id, key, props, groups) = row?;
            let properties: Record = serde_json::from_str(&props)
                .with_context(|| format!("the export state {} is damaged", self.path.display()))?;
            let groups: BTreeSet<String> = serde_json::from_str(&groups)
                .with_context(|| format!("the export state {} is damaged", self.path.display()))?;
            out.insert(
                id,
                Exported {
                    dest_id,
                    key,
                    properties,
                    groups,
                },
            );
        }
        Ok(out)
    }

    /// Apply the run's results in one transaction: `Some` writes a profile's
    /// row, `None` removes it (deleted in the destination).
    pub fn save(
        &mut self,
        destination: &str,
        changes: &[(String, Option<Exported>)],
    ) -> Result<()> {
        if self.conn.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
            }
            self.conn = Some(open_conn(&self.path)?);
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
                    tx.execute(
                        "INSERT OR REPLACE INTO profiles (id, dest_id, key, properties, groups, exported_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            id,
                            e.dest_id,
                            e.key,
                            serde_json::Value::Object(e.properties.clone()).to_string(),
                            serde_json::to_string(&e.groups)?,
                            now
                        ],
                    )?;
                }
                None => {
                    tx.execute("DELETE FROM profiles WHERE id = ?1", params![id])?;
                }
            }
        }
        tx.commit()
            .with_context(|| format!("could not save the export state {path}"))?;
        Ok(())
    }
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("could not open the export state {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT OR IGNORE INTO meta (key, value) VALUES ('version', '1');
         CREATE TABLE IF NOT EXISTS profiles (
             id TEXT PRIMARY KEY,
             dest_id TEXT NOT NULL,
             key TEXT NOT NULL,
             properties TEXT NOT NULL,
             groups TEXT NOT NULL,
             exported_at TEXT NOT NULL
         );",
    )
    .with_context(|| format!("{} is not an export state file", path.display()))?;
    Ok(conn)
}
