//! The sync token of a file connector's `getupdates`, and the read that
//! answers it: files sync by position, anchored on the id of the last
//! record read.

use anyhow::Result;

use super::store::Store;
use super::Format;
use crate::connector::{id_text, BadId, Change, ChangeType, Updates};
use crate::error::{failed, usage};

/// A file connector's sync token: how many records were read, and the id of
/// the last one (`"3:c3"`), so records deleted before it do not shift the
/// next call past new ones. A bare number (`"3"`) is a position alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SyncToken {
    position: u64,
    id: Option<String>,
}

impl SyncToken {
    pub(super) fn parse(token: &str) -> Option<SyncToken> {
        let (position, id) = match token.split_once(':') {
            Some((p, id)) if !id.is_empty() => (p, Some(id.to_string())),
            Some(_) => return None,
            None => (token, None),
        };
        Some(SyncToken {
            position: position.parse().ok()?,
            id,
        })
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(f, "{}:{id}", self.position),
            None => write!(f, "{}", self.position),
        }
    }
}

impl SyncToken {
    /// The token `since` names (none: from the start), or why it is not
    /// one; checked before any I/O.
    pub(super) fn of(since: Option<&str>, path: &std::path::Path) -> Result<SyncToken> {
        match since {
            None => Ok(SyncToken::default()),
            Some(token) => SyncToken::parse(token).ok_or_else(|| {
                usage(format!(
                    "lastSync \"{token}\" is not a position in {}",
                    path.display()
                ))
                .hint("file connectors sync by position: pass the nextSync of the previous getupdates, or no lastSync for every record")
                .into()
            }),
        }
    }
}

impl<F: Format> Store<F> {
    /// The records after `token`, at most `limit` of them, each an upsert.
    pub(super) fn updates(&self, token: SyncToken, limit: Option<usize>) -> Result<Updates> {
        // Where to start: right after the anchor record, wherever it is
        // now (a delete before it moves it up). When it is gone, start
        // over: sending records twice is safe, skipping one is not.
        let start = match &token.id {
            None => token.position,
            Some(anchor) => {
                let mut found = 0u64;
                for (i, record) in self.records(0)?.enumerate() {
                    if self.id_of(&record?).as_deref() == Some(anchor.as_str()) {
                        found = i as u64 + 1;
                        break;
                    }
                }
                found
            }
        };
        let mut entries = Vec::new();
        let mut position = 0u64;
        let mut last = None;
        for record in self.records(0)? {
            let record = record?;
            position += 1;
            if position <= start {
                last = self.id_of(&record);
                continue;
            }
            let id = id_text(record.get(&self.id_field)).map_err(|bad| {
                let why = match bad {
                    BadId::Missing => format!("has no {}", self.id_field),
                    bad => format!("is unusable: {}", bad.reason(&self.id_field)),
                };
                failed(format!(
                    "record {position} of {} {why}",
                    self.path.display()
                ))
                .hint(format!(
                    "fix line {position} of the file: give it \"{}\" as a string or a whole number",
                    self.id_field
                ))
            })?;
            last = Some(id.clone());
            entries.push(Change {
                id,
                kind: ChangeType::Upsert,
                value: Some(record),
            });
            if limit.is_some_and(|l| entries.len() >= l) {
                break;
            }
        }
        let next = if position >= start {
            SyncToken { position, id: last }
        } else {
            // A bare position past the end (the file shrank): keep it.
            token
        };
        Ok(Updates {
            next_sync: next.to_string(),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_tokens() {
        assert_eq!(SyncToken::parse("0"), Some(SyncToken::default()));
        let t = SyncToken::parse("3:cus:3").unwrap();
        assert_eq!((t.position, t.id.as_deref()), (3, Some("cus:3")));
        assert_eq!(t.to_string(), "3:cus:3");
        assert_eq!(SyncToken::parse("3:"), None);
        assert_eq!(SyncToken::parse("-1"), None);
        assert_eq!(SyncToken::parse("2026-01-01T00:00:00Z"), None);
    }
}
