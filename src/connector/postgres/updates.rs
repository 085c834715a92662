//! `getupdates` on ferry's table. The sync token is the change number
//! (`seq`) of the last change seen: every write draws the next number from
//! the table's sequence, so two changes that share a timestamp are never
//! skipped. An RFC 3339 time is accepted too, meaning every change at or
//! after it.
//!
//! A sequence hands out numbers in the order writes start, not the order
//! they commit: a write that drew 10 may commit after one that drew 11, and
//! a reader that had already answered "up to 11" would never see 10. So the
//! read takes the table in SHARE mode first, which waits for every write in
//! progress to commit (each holds ROW EXCLUSIVE from the start of its
//! statement, before it draws its number) and holds new ones back until the
//! read's transaction ends. Every number at or below the highest one it
//! then sees is committed or will never appear. The lock needs UPDATE,
//! DELETE or TRUNCATE on the table (a read-only user cannot take it), and
//! waits at most a minute for a write left open.

use anyhow::{Context, Result};
use tokio_postgres::types::ToSql;

use super::db::Db;
use crate::connector::{Change, ChangeType, Updates};
use crate::error::usage;

/// A `lastSync` token, read before any I/O so a bad one is refused even
/// when the server cannot be reached.
pub(super) enum Since {
    /// Every live record (no token).
    Start,
    /// Changes after this change number.
    Seq(i64),
    /// Changes at or after this time.
    Time(chrono::DateTime<chrono::Utc>, String),
}

impl Since {
    pub(super) fn parse(token: Option<&str>) -> Result<Since> {
        let Some(token) = token else {
            return Ok(Since::Start);
        };
        if let Ok(seq) = token.parse::<i64>() {
            return Ok(Since::Seq(seq));
        }
        let at = chrono::DateTime::parse_from_rfc3339(token).map_err(|_| {
            usage(format!(
                "lastSync \"{token}\" is neither a nextSync token nor an RFC 3339 time"
            ))
            .hint("pass the nextSync of the previous getupdates, or a time such as 2026-01-01T00:00:00Z")
        })?;
        Ok(Since::Time(
            at.with_timezone(&chrono::Utc),
            token.to_string(),
        ))
    }

    fn token(&self) -> String {
        match self {
            Since::Start => "0".into(),
            Since::Seq(seq) => seq.to_string(),
            Since::Time(_, token) => token.clone(),
        }
    }
}

impl Db {
    /// The changes after `since` in the order they were made, at most
    /// `limit`, and the token to continue from; nothing (and the same
    /// token) while the table does not exist.
    pub(super) async fn updates(&self, since: &Since, limit: Option<usize>) -> Result<Updates> {
        let mut guard = self.client().await?;
        let client = guard
            .as_mut()
            .context("the PostgreSQL connection is closed")?;
        if self.managed(client, "getupdates").await?.is_none() {
            return Ok(Updates {
                next_sync: since.token(),
                entries: Vec::new(),
            });
        }
        let read = |e: tokio_postgres::Error| self.failure(&e, "could not read");
        let t = self.qualified();
        let tx = client.transaction().await.map_err(read)?;
        // A write left open must not hold the read (and, behind it,
        // every other write) forever.
        tx.batch_execute(&format!(
            "SET LOCAL lock_timeout = '60s'; LOCK TABLE {t} IN SHARE MODE"
        ))
        .await
        .map_err(read)?;
        let cap = limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let (filter, param): (&str, Box<dyn ToSql + Sync + Send>) = match since {
            Since::Start => ("NOT deleted AND $1::bigint IS NULL", Box::new(None::<i64>)),
            Since::Seq(seq) => ("seq > $1", Box::new(*seq)),
            Since::Time(at, _) => ("updated_at >= $1", Box::new(*at)),
        };
        let rows = tx
            .query(
                &format!(
                    "SELECT id, data, seq, created_seq, deleted FROM {t}
                      WHERE {filter} ORDER BY seq LIMIT $2"
                ),
                &[param.as_ref(), &cap],
            )
            .await
            .map_err(read)?;
        let since_seq = match since {
            Since::Seq(seq) => Some(*seq),
            _ => None,
        };
        let mut entries = Vec::with_capacity(rows.len());
        let mut last_seq = None;
        for row in &rows {
            let seq: i64 = row.get(2);
            let created: i64 = row.get(3);
            let deleted: bool = row.get(4);
            last_seq = Some(seq);
            let kind = match since_seq {
                _ if deleted => ChangeType::Delete,
                Some(s) if created > s => ChangeType::Insert,
                Some(_) => ChangeType::Update,
                None => ChangeType::Upsert,
            };
            let value = row
                .get::<_, Option<serde_json::Value>>(1)
                .map(|v| match v {
                    serde_json::Value::Object(map) => Ok(map),
                    other => Err(anyhow::anyhow!(
                        "a row of {} holds {other}, not a JSON object",
                        self.named()
                    )),
                })
                .transpose()?;
            entries.push(Change {
                id: row.get(0),
                kind,
                value,
            });
        }
        // Stopped early: continue right after the last entry. Otherwise
        // everything up to the newest change has been seen.
        let next = match (limit, last_seq) {
            (Some(l), Some(seq)) if entries.len() >= l => seq,
            _ => tx
                .query_one(&format!("SELECT COALESCE(MAX(seq), 0) FROM {t}"), &[])
                .await
                .map_err(read)?
                .get(0),
        };
        tx.commit().await.map_err(read)?;
        Ok(Updates {
            next_sync: next.max(since_seq.unwrap_or(0)).to_string(),
            entries,
        })
    }
}
