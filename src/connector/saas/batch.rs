//! One outcome per record of a batch write, in order. A vendor's batch
//! refuses some records before anything is sent (no key, a value it cannot
//! take) and its answer names the ones it refused after; [`Slots`] keeps a
//! slot per record and merges the two, so every vendor writes only how its
//! answer names a refusal.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::{json, Value};

use crate::connector::{ProfileOutcome, Rejection, UpsertOutcome};

/// One slot per record of a batch, in the batch's order.
#[derive(Debug, Default)]
pub struct Slots {
    slots: Vec<Slot>,
}

#[derive(Debug)]
enum Slot {
    /// Refused before sending, with its outcome.
    Refused(UpsertOutcome),
    /// Sent, under its key.
    Sent(String),
}

impl Slots {
    pub fn with_capacity(n: usize) -> Slots {
        Slots {
            slots: Vec::with_capacity(n),
        }
    }

    /// The next record is refused before sending.
    pub fn refuse(&mut self, id: Option<String>, reason: impl Into<String>) {
        self.slots.push(Slot::Refused(UpsertOutcome::Rejected {
            id,
            reason: reason.into(),
        }));
    }

    /// The next record is sent, under `key`.
    pub fn send(&mut self, key: String) {
        self.slots.push(Slot::Sent(key));
    }

    /// Whether no record of the batch is sent.
    pub fn none_sent(&self) -> bool {
        !self.slots.iter().any(|s| matches!(s, Slot::Sent(_)))
    }

    /// Every key a record of the batch has, sent or refused.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Sent(key) | Slot::Refused(UpsertOutcome::Rejected { id: Some(key), .. }) => {
                Some(key.as_str())
            }
            Slot::Refused(_) => None,
        })
    }

    /// How many records sent have a key for which `named` holds (the same
    /// key sent twice counts twice).
    pub fn count_sent(&self, named: impl Fn(&str) -> bool) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Sent(key) if named(key)))
            .count()
    }

    /// The records refused before sending: `(id, reason)`, for previews.
    pub fn refusals(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Refused(UpsertOutcome::Rejected { id, reason }) => {
                Some((id.as_deref(), reason.as_str()))
            }
            _ => None,
        })
    }

    /// The rows a preview shows for the records refused before sending,
    /// each named by `key_field`, so a dry run shows every record's fate.
    pub fn refused_rows(&self, key_field: &str) -> Vec<Value> {
        self.refusals()
            .map(|(id, reason)| json!({ "refused": { key_field: id, "reason": reason } }))
            .collect()
    }

    /// Each record's refusal before sending, `None` for a record sent.
    pub fn into_refusals(self) -> impl Iterator<Item = Option<UpsertOutcome>> {
        self.slots.into_iter().map(|s| match s {
            Slot::Refused(o) => Some(o),
            Slot::Sent(_) => None,
        })
    }

    /// One outcome per record: a refused one as it was refused, a sent
    /// one as `answer` reads the vendor's answer for its key.
    pub fn merge(self, mut answer: impl FnMut(String) -> UpsertOutcome) -> Vec<UpsertOutcome> {
        self.slots
            .into_iter()
            .map(|s| match s {
                Slot::Refused(o) => o,
                Slot::Sent(key) => answer(key),
            })
            .collect()
    }

    /// [`Slots::merge`] for an answer that lists only the refusals: a sent
    /// record is written under its key unless `refused` names it.
    pub fn merge_refused(self, refused: &HashMap<String, String>) -> Vec<UpsertOutcome> {
        self.merge(|key| match refused.get(&key) {
            Some(reason) => UpsertOutcome::Rejected {
                id: Some(key),
                reason: reason.clone(),
            },
            None => UpsertOutcome::Ok { id: key },
        })
    }
}

/// The outcome of one record written on its own under `key`: a
/// [`Rejection`] is the record's refusal; any other error fails the call.
pub fn one(key: String, written: Result<String>) -> Result<UpsertOutcome> {
    match written {
        Ok(id) => Ok(UpsertOutcome::Ok { id }),
        Err(e) if e.chain().any(|c| c.is::<Rejection>()) => Ok(UpsertOutcome::Rejected {
            id: Some(key),
            reason: format!("{e:#}"),
        }),
        Err(e) => Err(e),
    }
}

/// An import outcome as an export's: written, or this profile refused.
pub fn profile_outcome(o: UpsertOutcome) -> ProfileOutcome {
    match o {
        UpsertOutcome::Ok { id } => ProfileOutcome::Ok { id },
        UpsertOutcome::Rejected { reason, .. } => ProfileOutcome::Rejected { reason },
    }
}

/// The outcomes of a call for `n` profiles that failed as a whole: each
/// profile gets the call's error.
pub fn all_failed(n: usize, e: anyhow::Error) -> impl Iterator<Item = ProfileOutcome> {
    let failed = ProfileOutcome::from_result(Err(e));
    std::iter::repeat_n(failed, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_before_and_after_sending_merge_in_order() {
        let mut slots = Slots::with_capacity(4);
        slots.send("a".into());
        slots.refuse(None, "missing email");
        slots.send("b".into());
        slots.refuse(Some("c".into()), "too large");
        assert_eq!(slots.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(slots.count_sent(|k| k == "b" || k == "c"), 1);
        let refused = HashMap::from([("b".to_string(), "invalid".to_string())]);
        assert_eq!(
            slots.merge_refused(&refused),
            [
                UpsertOutcome::Ok { id: "a".into() },
                UpsertOutcome::Rejected {
                    id: None,
                    reason: "missing email".into()
                },
                UpsertOutcome::Rejected {
                    id: Some("b".into()),
                    reason: "invalid".into()
                },
                UpsertOutcome::Rejected {
                    id: Some("c".into()),
                    reason: "too large".into()
                },
            ]
        );
    }
}
