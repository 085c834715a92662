//! `getupdates` on a table ferry manages. The sync token is the sequence
//! number of the last change seen: every write takes the next number, so
//! changes are read in the order they were made and two changes that share
//! a timestamp are never skipped. An RFC 3339 time is accepted too, meaning
//! every change at or after it.

use anyhow::Result;
use rusqlite::params;
use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;

use super::db::Db;
use super::managed::{parse_data, Managed};
use crate::connector::{Change, ChangeType, Updates};
use crate::error::usage;

/// A `lastSync` token, read before any I/O so a bad one is refused even
/// when the database does not exist yet.
pub(super) struct Since {
    /// The token as given; none for every live record.
    token: Option<String>,
    /// The SQL filter on the changes, with `?1` for `param`.
    filter: &'static str,
    param: SqlValue,
}

impl Since {
    /// The last change's sequence number, or an RFC 3339 time meaning
    /// "every change at or after it".
    pub(super) fn parse(token: Option<&str>) -> Result<Since> {
        let (filter, param) = match token {
            None => ("deleted = 0", SqlValue::Null),
            Some(token) => match token.parse::<i64>() {
                Ok(seq) => ("seq > ?1", SqlValue::Integer(seq)),
                Err(_) => {
                    let at = chrono::DateTime::parse_from_rfc3339(token).map_err(|_| {
                        usage(format!(
                            "lastSync \"{token}\" is neither a nextSync token nor an RFC 3339 time"
                        ))
                        .hint("pass the nextSync of the previous getupdates, or a time such as 2026-01-01T00:00:00Z")
                    })?;
                    let at = at
                        .with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    ("updated_at >= ?1", SqlValue::Text(at))
                }
            },
        };
        Ok(Since {
            token: token.map(str::to_string),
            filter,
            param,
        })
    }

    /// What a read of nothing answers: the same token (or the start).
    pub(super) fn nothing(&self) -> Updates {
        Updates {
            next_sync: self.token.clone().unwrap_or_else(|| "0".into()),
            entries: Vec::new(),
        }
    }
}

impl Db {
    /// The changes after `since`, at most `limit`; nothing (and the same
    /// token) while the database or table does not exist.
    pub(super) fn updates(&self, since: &Since, limit: Option<usize>) -> Result<Updates> {
        self.with_read(since.nothing(), |conn, layout| {
            layout.updates(conn, since, limit)
        })
    }
}

impl Managed<'_> {
    /// The changes after `since` in the order they were made, at most
    /// `limit`, and the token to continue from.
    pub(super) fn changes(
        &self,
        conn: &Connection,
        since: &Since,
        limit: Option<usize>,
    ) -> Result<Updates> {
        // One read transaction: the entries and the newest sequence
        // number come from the same snapshot, so a write committed
        // between the two queries cannot move nextSync past a change
        // this answer does not hold.
        let _snapshot = conn.unchecked_transaction()?;
        let t = self.table();
        let sql = format!(
            "SELECT id, data, seq, created_seq, deleted FROM {t} WHERE {} {} ORDER BY seq LIMIT ?2",
            since.filter,
            if since.param == SqlValue::Null {
                "AND ?1 IS NULL"
            } else {
                ""
            }
        );
        let cap = limit.map_or(-1, |l| l as i64);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(params![since.param, cap])?;
        let since_seq = since.token.as_deref().and_then(|s| s.parse::<i64>().ok());
        let initial = since.token.is_none();
        let mut entries = Vec::new();
        let mut last_seq: Option<i64> = None;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let data: Option<String> = row.get(1)?;
            let seq: i64 = row.get(2)?;
            let created: i64 = row.get(3)?;
            let deleted: bool = row.get(4)?;
            last_seq = Some(seq);
            let kind = if deleted {
                ChangeType::Delete
            } else if initial {
                ChangeType::Upsert
            } else if since_seq.is_some_and(|s| created > s) {
                ChangeType::Insert
            } else if since_seq.is_some() {
                ChangeType::Update
            } else {
                ChangeType::Upsert
            };
            let value = data.map(|d| parse_data(&d)).transpose()?;
            entries.push(Change { id, kind, value });
        }
        // Stopped early: continue right after the last entry. Otherwise
        // everything up to the newest change has been seen.
        let next = match (limit, last_seq) {
            (Some(l), Some(seq)) if entries.len() >= l => seq,
            _ => conn.query_row(&format!("SELECT COALESCE(MAX(seq), 0) FROM {t}"), [], |r| {
                r.get(0)
            })?,
        };
        let next = next.max(since_seq.unwrap_or(0));
        Ok(Updates {
            next_sync: next.to_string(),
            entries,
        })
    }
}
