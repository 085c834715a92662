//! The sandbox's customers. Record `n` (1-based) is generated from its index
//! on demand, so a million records cost nothing up front; only changes
//! (inserts, patches, deletes) are stored. Every change gets a sequence
//! number after the generated ones, which is what `updated_since` reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

pub type Record = Map<String, Value>;

const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "John",
    "Sophie",
    "Tim",
    "Katherine",
    "Linus",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Backus",
    "Wilson",
    "Berners-Lee",
    "Johnson",
    "Torvalds",
];
const PLANS: &[&str] = &["free", "pro", "team"];

/// The id of generated record `n`.
pub fn id_of(n: u64) -> String {
    format!("cus_{n:07}")
}

fn index_of(id: &str) -> Option<u64> {
    id.strip_prefix("cus_")?.parse().ok()
}

/// Generated record `n`, a pure function of `n`.
pub fn generate(n: u64) -> Record {
    let first = FIRST[(n % FIRST.len() as u64) as usize];
    let last = LAST[((n / FIRST.len() as u64) % LAST.len() as u64) as usize];
    let created = 1_767_225_600 + n as i64 * 60; // 2026-01-01 plus a minute per record
    let created = chrono::DateTime::from_timestamp(created, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let value = json!({
        "id": id_of(n),
        "email": format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase()),
        "name": format!("{first} {last}"),
        "plan": PLANS[(n % 3) as usize],
        "created_at": created,
        "seq": n,
    });
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A stored change: the record as it is now (`None` once deleted) and the
/// sequence number of the change.
#[derive(Debug, Clone)]
struct Change {
    seq: u64,
    record: Option<Record>,
}

/// One entry of an `updated_since` listing.
pub enum Entry {
    Live(Record),
    Deleted { id: String, seq: u64 },
}

impl Entry {
    pub fn to_json(&self) -> Value {
        match self {
            Entry::Live(r) => Value::Object(r.clone()),
            Entry::Deleted { id, seq } => json!({ "id": id, "deleted": true, "seq": seq }),
        }
    }
}

/// The customers: `generated` records plus every change since.
pub struct Store {
    generated: u64,
    /// Changes by record index.
    changes: HashMap<u64, Change>,
    /// Change sequence numbers to record index, for `updated_since`.
    by_seq: BTreeMap<u64, u64>,
    /// Generated records that were deleted (for offset arithmetic).
    deleted_generated: BTreeSet<u64>,
    /// Records created after start that still exist.
    inserted_live: BTreeSet<u64>,
    next_index: u64,
    next_seq: u64,
}

pub enum WriteError {
    NotFound(String),
    Invalid(String),
    Conflict(String),
}

impl Store {
    pub fn new(generated: u64) -> Store {
        Store {
            generated,
            changes: HashMap::new(),
            by_seq: BTreeMap::new(),
            deleted_generated: BTreeSet::new(),
            inserted_live: BTreeSet::new(),
            next_index: generated + 1,
            next_seq: generated + 1,
        }
    }

    /// The last sequence number handed out.
    pub fn current_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn total(&self) -> u64 {
        self.generated - self.deleted_generated.len() as u64 + self.inserted_live.len() as u64
    }

    fn index_for(&self, id: &str) -> Option<u64> {
        let n = index_of(id)?;
        (n >= 1 && n < self.next_index && id_of(n) == id).then_some(n)
    }

    fn at(&self, n: u64) -> Option<Record> {
        match self.changes.get(&n) {
            Some(c) => c.record.clone(),
            None if n >= 1 && n <= self.generated => Some(generate(n)),
            None => None,
        }
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        self.at(self.index_for(id)?)
    }

    fn record_change(&mut self, n: u64, record: Option<Record>) -> Option<Record> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let record = record.map(|mut r| {
            r.insert("seq".into(), json!(seq));
            r
        });
        if let Some(old) = self.changes.insert(
            n,
            Change {
                seq,
                record: record.clone(),
            },
        ) {
            self.by_seq.remove(&old.seq);
        }
        self.by_seq.insert(seq, n);
        let live = record.is_some();
        if n <= self.generated {
            if live {
                self.deleted_generated.remove(&n);
            } else {
                self.deleted_generated.insert(n);
            }
        } else if live {
            self.inserted_live.insert(n);
        } else {
            self.inserted_live.remove(&n);
        }
        record
    }

    /// Create a record; it needs an email, and gets an id when it has none.
    pub fn insert(&mut self, mut record: Record) -> Result<Record, WriteError> {
        require_email(&record)?;
        let n = match record.get("id") {
            None | Some(Value::Null) => {
                let n = self.next_index;
                self.next_index += 1;
                n
            }
            Some(Value::String(id)) => match self.index_for(id) {
                Some(n) if self.at(n).is_some() => {
                    return Err(WriteError::Conflict(format!(
                        "customer {id} already exists"
                    )))
                }
                Some(n) => n,
                None => {
                    return Err(WriteError::Invalid(
                        "id must look like cus_0000123; leave it out to get a new one".into(),
                    ))
                }
            },
            Some(_) => return Err(WriteError::Invalid("id must be a string".into())),
        };
        record.insert("id".into(), json!(id_of(n)));
        Ok(self.record_change(n, Some(record)).unwrap_or_default())
    }

    /// Merge `fields` into a record (a JSON merge patch: null removes the field).
    pub fn patch(&mut self, id: &str, fields: Record) -> Result<Record, WriteError> {
        let n = self.index_for(id).ok_or_else(|| not_found(id))?;
        let mut record = self.at(n).ok_or_else(|| not_found(id))?;
        for (k, v) in fields {
            if k == "id" || k == "seq" {
                continue;
            }
            if v.is_null() {
                record.shift_remove(&k);
            } else {
                record.insert(k, v);
            }
        }
        require_email(&record)?;
        Ok(self.record_change(n, Some(record)).unwrap_or_default())
    }

    /// The live customers whose email is `email`, in id order. A generated
    /// customer's email ends with its number (`ada.lovelace17@example.com`),
    /// so it is found without generating the others; changed customers
    /// (few) are scanned.
    pub fn find_by_email(&self, email: &str) -> Vec<Record> {
        let mut found: BTreeMap<u64, Record> = self
            .changes
            .iter()
            .filter_map(|(n, c)| c.record.as_ref().map(|r| (*n, r)))
            .filter(|(_, r)| r.get("email").and_then(Value::as_str) == Some(email))
            .map(|(n, r)| (n, r.clone()))
            .collect();
        let local = email.split('@').next().unwrap_or("");
        let digits = local.len() - local.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if let Ok(n) = local[local.len() - digits..].parse::<u64>() {
            if n >= 1 && n <= self.generated && !self.changes.contains_key(&n) {
                let r = generate(n);
                if r.get("email").and_then(Value::as_str) == Some(email) {
                    found.insert(n, r);
                }
            }
        }
        found.into_values().collect()
    }

    pub fn delete(&mut self, id: &str) -> Result<(), WriteError> {
        let n = self.index_for(id).ok_or_else(|| not_found(id))?;
        self.at(n).ok_or_else(|| not_found(id))?;
        self.record_change(n, None);
        Ok(())
    }

    /// Create or replace by id: `Ok(true)` when created.
    pub fn upsert(&mut self, record: Record) -> Result<(String, bool), WriteError> {
        let Some(Value::String(id)) = record.get("id").cloned() else {
            return Err(WriteError::Invalid("id is required".into()));
        };
        require_email(&record)?;
        let n = match self.index_for(&id) {
            Some(n) => n,
            None if index_of(&id).is_some_and(|n| n >= self.next_index && id_of(n) == id) => {
                let n = index_of(&id).unwrap_or(self.next_index);
                self.next_index = n + 1;
                n
            }
            None => return Err(WriteError::Invalid("id must look like cus_0000123".into())),
        };
        let created = self.at(n).is_none();
        self.record_change(n, Some(record));
        Ok((id, created))
    }

    /// Up to `limit` live records from record index `start` on, and the index
    /// after the last one when there are more.
    pub fn page_from_index(&self, start: u64, limit: usize) -> (Vec<Record>, Option<u64>) {
        let start = start.max(1);
        let generated = (start..=self.generated).filter(|n| !self.deleted_generated.contains(n));
        let inserted = self
            .inserted_live
            .range(start.max(self.generated + 1)..)
            .copied();
        let mut it = generated.chain(inserted);
        let mut out = Vec::new();
        for n in it.by_ref() {
            if let Some(r) = self.at(n) {
                out.push(r);
                if out.len() == limit {
                    break;
                }
            }
        }
        let next = match out.last() {
            Some(r) if out.len() == limit => {
                let last = r
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(index_of)
                    .unwrap_or(0);
                it.next().map(|_| last + 1)
            }
            _ => None,
        };
        (out, next)
    }

    /// The record index of the `offset`-th live record (0-based).
    pub fn index_at_offset(&self, offset: u64) -> u64 {
        let mut n = offset + 1;
        for &d in &self.deleted_generated {
            if d <= n {
                n += 1;
            } else {
                break;
            }
        }
        if n <= self.generated {
            return n;
        }
        let live_generated = self.generated - self.deleted_generated.len() as u64;
        let j = offset.saturating_sub(live_generated) as usize;
        self.inserted_live
            .iter()
            .nth(j)
            .copied()
            .unwrap_or(self.next_index)
    }

    /// Changes after sequence `since`, in order, up to `limit`, deletions
    /// included; and whether more follow.
    pub fn changes_since(&self, since: u64, limit: usize) -> (Vec<(u64, Entry)>, bool) {
        let generated = (since + 1..=self.generated)
            .filter(|n| !self.changes.contains_key(n))
            .map(|n| (n, n));
        let changed = self
            .by_seq
            .range((since + 1).max(self.generated + 1)..)
            .map(|(&s, &n)| (s, n));
        let mut it = generated.chain(changed);
        let mut out = Vec::new();
        for (seq, n) in it.by_ref() {
            let entry = match self.at(n) {
                Some(r) => Entry::Live(r),
                None => Entry::Deleted { id: id_of(n), seq },
            };
            out.push((seq, entry));
            if out.len() == limit {
                break;
            }
        }
        let more = out.len() == limit && it.next().is_some();
        (out, more)
    }
}

fn not_found(id: &str) -> WriteError {
    WriteError::NotFound(format!("customer {id} not found"))
}

fn require_email(record: &Record) -> Result<(), WriteError> {
    match record.get("email") {
        Some(Value::String(s)) if s.contains('@') => Ok(()),
        Some(_) => Err(WriteError::Invalid("email must be an email address".into())),
        None => Err(WriteError::Invalid("email is required".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Record {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn generated_records_are_deterministic_and_lazy() {
        let s = Store::new(1_000_000);
        assert_eq!(s.total(), 1_000_000);
        assert_eq!(s.get("cus_0999999"), Some(generate(999_999)));
        assert_eq!(s.get("cus_1000001"), None);
        assert_eq!(generate(7), generate(7));
        let (page, next) = s.page_from_index(s.index_at_offset(999_998), 5);
        assert_eq!(page.len(), 2);
        assert_eq!(next, None);
    }

    #[test]
    fn changes_move_records_in_offsets_and_updates() {
        let mut s = Store::new(5);
        s.delete("cus_0000002").ok().unwrap();
        let created = s
            .insert(rec(json!({"email": "new@example.com"})))
            .ok()
            .unwrap();
        assert_eq!(created["id"], "cus_0000006");
        assert_eq!(s.total(), 5);
        let (page, next) = s.page_from_index(s.index_at_offset(1), 10);
        let ids: Vec<_> = page
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            ids,
            ["cus_0000003", "cus_0000004", "cus_0000005", "cus_0000006"]
        );
        assert_eq!(next, None);
        let (changes, more) = s.changes_since(4, 10);
        assert!(!more);
        let seqs: Vec<u64> = changes.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [5, 6, 7]);
        assert!(matches!(&changes[1].1, Entry::Deleted { id, .. } if id == "cus_0000002"));
        assert!(matches!(
            s.patch("cus_0000002", Record::new()),
            Err(WriteError::NotFound(_))
        ));
    }
}
