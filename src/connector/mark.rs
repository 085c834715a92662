//! Where a listing ordered by a time (`updated_at`, `lastmodifieddate`)
//! stands: the time of the last record read and the ids of every record read
//! at exactly that time. The next request asks from that time on and skips
//! those ids, so records that share a time are neither skipped nor read
//! twice, whether the API's "after" is strict or not. The token, in
//! checkpoints and `nextSync`, is `TIME` or `TIME|id,id`; each connector
//! reads and writes TIME its vendor's way.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Mark<T> {
    pub at: T,
    pub seen: Vec<String>,
}

impl<T: Copy + PartialOrd> Mark<T> {
    /// `TIME` or `TIME|id,id`, with TIME read by `time`; `None` when it cannot.
    pub fn read(token: &str, time: impl FnOnce(&str) -> Option<T>) -> Option<Mark<T>> {
        let (at, ids) = token.split_once('|').unwrap_or((token, ""));
        let at = time(at.trim())?;
        let seen = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        Some(Mark { at, seen })
    }

    /// [`Mark::read`], or a usage error: `token` is not `what` ("a HubSpot
    /// position"), whose TIME is `expected` ("Unix seconds").
    pub fn read_token(
        token: &str,
        time: impl FnOnce(&str) -> Option<T>,
        what: &str,
        expected: &str,
    ) -> anyhow::Result<Mark<T>> {
        Mark::read(token, time).ok_or_else(|| {
            crate::error::usage(format!(
                "\"{token}\" is not {what}: expected {expected}, optionally followed by |ids"
            ))
            .hint("pass a date-time such as 2026-01-01T00:00:00Z, or a nextSync printed by ferry")
            .into()
        })
    }

    /// The token, with `time` standing for the mark's time.
    pub fn write(&self, time: String) -> String {
        if self.seen.is_empty() {
            time
        } else {
            format!("{time}|{}", self.seen.join(","))
        }
    }

    /// Whether the record `id` at `at` was read already.
    pub fn covers(&self, at: T, id: &str) -> bool {
        at < self.at || (at == self.at && self.seen.iter().any(|s| s == id))
    }

    /// The mark after reading the record `id` at `at`.
    pub fn advance(mark: Option<Mark<T>>, at: T, id: &str) -> Mark<T> {
        match mark {
            Some(mut m) if m.at == at => {
                m.seen.push(id.to_string());
                m
            }
            _ => Mark {
                at,
                seen: vec![id.to_string()],
            },
        }
    }
}

/// An ISO 8601 date-time, or a date (midnight UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_ties_are_remembered() {
        let m = Mark::read("7|a,b", |t| t.parse::<i64>().ok()).unwrap();
        assert_eq!((m.at, m.seen.clone()), (7, vec!["a".into(), "b".into()]));
        assert_eq!(m.write(m.at.to_string()), "7|a,b");
        assert!(m.covers(6, "z") && m.covers(7, "a") && !m.covers(7, "c") && !m.covers(8, "a"));
        let m = Mark::advance(Some(m), 7, "c");
        assert_eq!(m.seen, ["a", "b", "c"]);
        let m = Mark::advance(Some(m), 9, "d");
        assert_eq!((m.at, m.write("9".into())), (9, "9|d".to_string()));
        assert!(Mark::read("x|a", |t| t.parse::<i64>().ok()).is_none());
    }
}
