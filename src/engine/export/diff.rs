//! The export diff, pure: input profiles against the state of the last
//! successful export → one [`Planned`] step per profile (create, update with
//! clears, delete, or nothing) plus the memberships to add and remove.
//! `--dry-run` prints exactly this plan and the real run executes it, so the
//! prediction and the run cannot drift apart.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use crate::connector::{record_id, ExportFields, Record};

use super::input::{Entry, Invalid};
use super::state::Exported;

/// What to do with profiles that were exported before but are absent from
/// the (complete) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletes {
    /// Leave them in the destination.
    None,
    /// Clear their properties (all but the key) and memberships.
    Clear,
    /// Delete them from the destination.
    Delete,
}

/// What the run does to a profile's record in the destination.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create it (or update the record with its key: creates are upserts).
    Create,
    /// Set and clear fields of the record `dest_id`, found last time under `old_key`.
    Update {
        dest_id: String,
        old_key: String,
        set: Record,
        clear: Vec<String>,
    },
    Delete {
        dest_id: String,
    },
    /// The record needs nothing (memberships may still change).
    Nothing,
}

/// Why something of a profile is not sent, by design (never retried).
#[derive(Debug, Clone, PartialEq)]
pub struct Skip {
    /// In a few words that are the same for every profile it applies to,
    /// to follow a count ("with groups connector csv cannot hold"): the
    /// summary on stderr counts the skipped profiles by it.
    pub reason: String,
    pub message: String,
}

impl Skip {
    /// A destination's own answer: its words are both reason and message.
    pub fn from_destination(text: &str) -> Skip {
        Skip {
            reason: text.to_string(),
            message: text.to_string(),
        }
    }
}

/// One profile's part of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub id: String,
    /// The key value the destination looks the profile up by.
    pub key: String,
    /// Every field the destination holds once the step succeeds.
    pub fields: Record,
    pub step: Step,
    /// Groups to join and leave. A deleted profile leaves every group it
    /// was in (in a destination that holds groups): its memberships go with
    /// its record, so they count as removed, as a clear's do, but no
    /// membership call is sent for them.
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The groups recorded in the state once everything succeeds.
    pub groups: BTreeSet<String>,
    /// An informational reason something is not sent (never retried).
    pub skip: Option<Skip>,
    /// The state before the run.
    pub prev: Option<Exported>,
    /// Absent from the input and handled by `--deletes`.
    pub absent: bool,
}

impl Planned {
    /// Whether the run sends anything for it: a record step or a membership.
    pub fn sends(&self) -> bool {
        self.step != Step::Nothing || !self.add.is_empty() || !self.remove.is_empty()
    }

    /// A delete, or a clear of a profile absent from the input: what
    /// `--max-deletes` guards.
    pub fn is_destructive(&self) -> bool {
        self.absent || matches!(self.step, Step::Delete { .. })
    }

    /// Nothing to send and nothing to report.
    pub fn is_unchanged(&self) -> bool {
        self.step == Step::Nothing
            && self.add.is_empty()
            && self.remove.is_empty()
            && self.skip.is_none()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Invalid(Invalid),
    Planned(Box<Planned>),
}

impl Decision {
    pub(super) fn invalid(
        id: String,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Decision::Invalid(Invalid::new(id, reason, message))
    }
}

/// How the diff runs.
#[derive(Debug, Clone, Copy)]
pub struct DiffOptions {
    /// Resend every property and membership (clears and removals still come
    /// from the state).
    pub full: bool,
    pub deletes: Deletes,
}

/// The predicted counts of a plan; a real run where everything succeeds reports the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    pub groups_added: u64,
    pub groups_removed: u64,
    pub invalid: u64,
    pub skipped: u64,
    /// Deletes and clears, for the `--max-deletes` guard.
    pub destructive: u64,
}

impl Counts {
    /// Add the counts of another part of the run.
    pub fn add(&mut self, other: &Counts) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.groups_added += other.groups_added;
        self.groups_removed += other.groups_removed;
        self.invalid += other.invalid;
        self.skipped += other.skipped;
        self.destructive += other.destructive;
    }
}

/// Diff `entries` against `state` for a destination declaring `dest`;
/// `groups` is whether it holds group memberships (its
/// [`GroupSink`](crate::connector::GroupSink) capability): without it,
/// memberships are skipped with a reason.
pub fn plan(
    entries: Vec<Entry>,
    state: &BTreeMap<String, Exported>,
    dest: &ExportFields,
    groups: bool,
    connector: &str,
    opts: DiffOptions,
) -> Vec<Decision> {
    let mut seen = HashSet::new();
    // key -> the profile that holds it in this run: two profiles with one
    // key would silently merge into one destination record.
    let mut keys: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for entry in entries {
        let profile = match entry {
            Ok(p) => p,
            Err(invalid) => {
                out.push(Decision::Invalid(invalid));
                continue;
            }
        };
        if !seen.insert(profile.id.clone()) {
            out.push(Decision::invalid(
                profile.id,
                "listed more than once",
                "the profile appears more than once in the input; only the first is exported",
            ));
            continue;
        }
        let prev = state.get(&profile.id).cloned();
        if profile.to_delete {
            out.push(Decision::Planned(Box::new(match prev {
                Some(p) => Planned {
                    id: profile.id,
                    key: p.key.clone(),
                    fields: Record::new(),
                    step: Step::Delete {
                        dest_id: p.dest_id.clone(),
                    },
                    add: Vec::new(),
                    remove: left_with_the_record(&p, groups),
                    groups: BTreeSet::new(),
                    skip: None,
                    prev: Some(p),
                    absent: false,
                },
                None => Planned {
                    id: profile.id,
                    key: String::new(),
                    fields: Record::new(),
                    step: Step::Nothing,
                    add: Vec::new(),
                    remove: Vec::new(),
                    groups: BTreeSet::new(),
                    skip: Some(Skip {
                        reason: "marked toDelete but never exported here".into(),
                        message: "marked toDelete but never exported to this destination: nothing to delete"
                            .into(),
                    }),
                    prev: None,
                    absent: false,
                },
            })));
            continue;
        }
        let mut fields = profile.properties;
        if dest.key_from_profile_id && !fields.contains_key(&dest.key) {
            fields.insert(dest.key.clone(), Value::String(profile.id.clone()));
        }
        if let Err((reason, message)) = validate(&fields, dest) {
            out.push(Decision::invalid(profile.id, reason, message));
            continue;
        }
        let Some(key) = record_id(&fields, &dest.key) else {
            out.push(Decision::invalid(
                profile.id,
                format!("without \"{}\"", dest.key),
                format!(
                    "the profile has no \"{}\", the key the destination looks profiles up by",
                    dest.key
                ),
            ));
            continue;
        };
        if let Some(other) = keys.get(&key) {
            let message = format!(
                "profile {other} has the same {} \"{key}\"; a destination record holds one profile",
                dest.key
            );
            let reason = format!("with the same \"{}\" as another profile", dest.key);
            out.push(Decision::invalid(profile.id, reason, message));
            continue;
        }
        keys.insert(key.clone(), profile.id.clone());
        let step = match &prev {
            None => Step::Create,
            Some(p) => {
                let set: Record = fields
                    .iter()
                    .filter(|(k, v)| opts.full || p.properties.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let clear: Vec<String> = p
                    .properties
                    .keys()
                    .filter(|k| !fields.contains_key(*k))
                    .cloned()
                    .collect();
                if set.is_empty() && clear.is_empty() {
                    Step::Nothing
                } else {
                    Step::Update {
                        dest_id: p.dest_id.clone(),
                        old_key: p.key.clone(),
                        set,
                        clear,
                    }
                }
            }
        };
        let before = prev.as_ref().map(|p| p.groups.clone()).unwrap_or_default();
        let (add, remove, skip) =
            memberships(&before, &profile.groups, groups, connector, opts.full);
        out.push(Decision::Planned(Box::new(Planned {
            id: profile.id,
            key,
            fields,
            step,
            add,
            remove,
            groups: profile.groups,
            skip,
            prev,
            absent: false,
        })));
    }
    if opts.deletes != Deletes::None {
        for (id, p) in state.iter().filter(|(id, _)| !seen.contains(*id)) {
            if let Some(planned) = absent(id, p, dest, groups, opts.deletes) {
                out.push(Decision::Planned(Box::new(planned)));
            }
        }
    }
    out
}

/// Groups to add and remove, or the reason they are skipped.
fn memberships(
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
    groups: bool,
    connector: &str,
    full: bool,
) -> (Vec<String>, Vec<String>, Option<Skip>) {
    let add: Vec<String> = after
        .iter()
        .filter(|g| full || !before.contains(*g))
        .cloned()
        .collect();
    let remove: Vec<String> = before.difference(after).cloned().collect();
    if groups || (add.is_empty() && remove.is_empty()) {
        return (add, remove, None);
    }
    let names = |v: &[String]| v.join(", ");
    let mut what = Vec::new();
    if !add.is_empty() {
        what.push(format!("joined {}", names(&add)));
    }
    if !remove.is_empty() {
        what.push(format!("left {}", names(&remove)));
    }
    let skip = Skip {
        reason: format!("with groups connector {connector} cannot hold"),
        message: format!(
            "connector {connector} cannot hold group memberships; not exported: {}",
            what.join("; ")
        ),
    };
    (Vec::new(), Vec::new(), Some(skip))
}

/// The step for a profile in the state but not in the input.
pub(super) fn absent(
    id: &str,
    p: &Exported,
    dest: &ExportFields,
    groups: bool,
    deletes: Deletes,
) -> Option<Planned> {
    let base = Planned {
        id: id.to_string(),
        key: p.key.clone(),
        fields: Record::new(),
        step: Step::Nothing,
        add: Vec::new(),
        remove: Vec::new(),
        groups: BTreeSet::new(),
        skip: None,
        prev: Some(p.clone()),
        absent: true,
    };
    match deletes {
        Deletes::None => None,
        Deletes::Delete => Some(Planned {
            step: Step::Delete {
                dest_id: p.dest_id.clone(),
            },
            remove: left_with_the_record(p, groups),
            ..base
        }),
        Deletes::Clear => {
            let clear: Vec<String> = p
                .properties
                .keys()
                .filter(|k| **k != dest.key)
                .cloned()
                .collect();
            let remove: Vec<String> = if groups {
                p.groups.iter().cloned().collect()
            } else {
                Vec::new()
            };
            if clear.is_empty() && remove.is_empty() {
                return None;
            }
            let fields: Record = p
                .properties
                .iter()
                .filter(|(k, _)| **k == dest.key)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let step = if clear.is_empty() {
                Step::Nothing
            } else {
                Step::Update {
                    dest_id: p.dest_id.clone(),
                    old_key: p.key.clone(),
                    set: Record::new(),
                    clear,
                }
            };
            Some(Planned {
                fields,
                step,
                remove,
                ..base
            })
        }
    }
}

/// The memberships a deleted record takes with it: every group it was in,
/// for a destination that holds groups (none for one that does not).
fn left_with_the_record(p: &Exported, groups: bool) -> Vec<String> {
    if groups {
        p.groups.iter().cloned().collect()
    } else {
        Vec::new()
    }
}

/// Unknown fields (when the destination takes no extras), wrong types and
/// missing required fields: `Err` with the reason and the message.
pub(super) fn validate(fields: &Record, dest: &ExportFields) -> Result<(), (String, String)> {
    for (name, value) in fields {
        match dest.fields.iter().find(|f| f.name == name.as_str()) {
            Some(f) if !f.kind.accepts(value) => {
                return Err((
                    format!("with a \"{name}\" of the wrong type"),
                    format!(
                        "property \"{name}\" must be {:?}, got {}",
                        f.kind,
                        crate::config::input::kind_of(value)
                    )
                    .to_lowercase(),
                ))
            }
            None if !dest.extra_fields && *name != dest.key => {
                return Err((
                    format!("with \"{name}\", a field the destination does not have"),
                    format!("the destination has no field \"{name}\" and takes no extra fields"),
                ))
            }
            _ => {}
        }
    }
    for f in dest.fields.iter().filter(|f| f.required) {
        if fields.get(f.name.as_ref()).is_none_or(Value::is_null) {
            return Err((
                format!("without \"{}\"", f.name),
                format!(
                    "the profile has no \"{}\", which the destination requires",
                    f.name
                ),
            ));
        }
    }
    Ok(())
}

/// The profiles the plan deletes or clears, in input order (the absent
/// ones last, as the diff plans them).
pub fn destructive(decisions: &[Decision]) -> Vec<super::Doomed> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Planned(p) if p.is_destructive() => Some(super::Doomed {
                id: p.id.clone(),
                key: p.key.clone(),
                delete: matches!(p.step, Step::Delete { .. }),
            }),
            _ => None,
        })
        .collect()
}

/// What the plan predicts; memberships count only for a destination that
/// holds them (`groups`).
pub fn count(decisions: &[Decision], groups: bool) -> Counts {
    let mut c = Counts::default();
    for d in decisions {
        let p = match d {
            Decision::Invalid(_) => {
                c.invalid += 1;
                continue;
            }
            Decision::Planned(p) => p,
        };
        match &p.step {
            Step::Create => c.created += 1,
            Step::Update { .. } => c.updated += 1,
            Step::Delete { .. } => c.deleted += 1,
            Step::Nothing => {}
        }
        if p.is_destructive() {
            c.destructive += 1;
        }
        if groups {
            c.groups_added += p.add.len() as u64;
            c.groups_removed += p.remove.len() as u64;
        }
        if p.skip.is_some() {
            c.skipped += 1;
        }
        if p.is_unchanged() {
            c.unchanged += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::super::input::Profile;
    use super::*;
    use serde_json::json;

    fn dest() -> ExportFields {
        ExportFields {
            key: "email".into(),
            key_from_profile_id: false,
            fields: Vec::new(),
            extra_fields: true,
        }
    }

    fn profile(id: &str, props: Value, groups: &[&str]) -> Entry {
        Ok(Profile {
            id: id.into(),
            properties: props.as_object().cloned().unwrap_or_default(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            to_delete: false,
        })
    }

    fn exported(key: &str, props: Value, groups: &[&str]) -> Exported {
        Exported {
            dest_id: format!("d-{key}"),
            key: key.into(),
            properties: props.as_object().cloned().unwrap_or_default(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    const OPTS: DiffOptions = DiffOptions {
        full: false,
        deletes: Deletes::None,
    };

    /// Plans against a destination that holds groups, with connector "t".
    fn planned(
        entries: Vec<Entry>,
        state: &BTreeMap<String, Exported>,
        opts: DiffOptions,
    ) -> Vec<Decision> {
        plan(entries, state, &dest(), true, "t", opts)
    }

    fn one(decisions: Vec<Decision>) -> Planned {
        match decisions.into_iter().next() {
            Some(Decision::Planned(p)) => *p,
            other => panic!("expected one planned profile, got {other:?}"),
        }
    }

    #[test]
    fn a_new_profile_is_created_with_its_groups() {
        let d = planned(
            vec![profile("p1", json!({"email": "a@x"}), &["vip"])],
            &BTreeMap::new(),
            OPTS,
        );
        let p = one(d);
        assert_eq!(p.step, Step::Create);
        assert_eq!(p.add, ["vip"]);
        assert_eq!(p.key, "a@x");
    }

    #[test]
    fn an_unchanged_profile_sends_nothing() {
        let state = BTreeMap::from([(
            "p1".to_string(),
            exported("a@x", json!({"email": "a@x", "n": 1}), &["vip"]),
        )]);
        let d = planned(
            vec![profile("p1", json!({"n": 1, "email": "a@x"}), &["vip"])],
            &state,
            OPTS,
        );
        let p = one(d.clone());
        assert!(p.is_unchanged(), "{p:?}");
        assert_eq!(count(&d, true).unchanged, 1);
    }

    #[test]
    fn changed_and_removed_properties_update_and_clear() {
        let state = BTreeMap::from([(
            "p1".to_string(),
            exported("a@x", json!({"email": "a@x", "n": 1, "city": "Oslo"}), &[]),
        )]);
        let p = one(planned(
            vec![profile("p1", json!({"email": "a@x", "n": 2}), &[])],
            &state,
            OPTS,
        ));
        assert_eq!(
            p.step,
            Step::Update {
                dest_id: "d-a@x".into(),
                old_key: "a@x".into(),
                set: json!({"n": 2}).as_object().cloned().unwrap(),
                clear: vec!["city".into()]
            }
        );
    }

    #[test]
    fn a_changed_key_updates_the_record_found_under_the_old_one() {
        let state = BTreeMap::from([(
            "p1".to_string(),
            exported("a@x", json!({"email": "a@x"}), &[]),
        )]);
        let p = one(planned(
            vec![profile("p1", json!({"email": "b@x"}), &[])],
            &state,
            OPTS,
        ));
        match p.step {
            Step::Update {
                dest_id,
                old_key,
                set,
                ..
            } => {
                assert_eq!((dest_id.as_str(), old_key.as_str()), ("d-a@x", "a@x"));
                assert_eq!(set.get("email"), Some(&json!("b@x")));
            }
            other => panic!("expected an update, got {other:?}"),
        }
        assert_eq!(p.key, "b@x");
    }

    #[test]
    fn groups_joined_and_left_become_adds_and_removes() {
        let state = BTreeMap::from([(
            "p1".to_string(),
            exported("a@x", json!({"email": "a@x"}), &["a", "b"]),
        )]);
        let p = one(planned(
            vec![profile("p1", json!({"email": "a@x"}), &["b", "c"])],
            &state,
            OPTS,
        ));
        assert_eq!(p.step, Step::Nothing);
        assert_eq!(
            (p.add, p.remove),
            (vec!["c".to_string()], vec!["a".to_string()])
        );
    }

    #[test]
    fn a_destination_without_groups_skips_memberships_with_a_reason() {
        let p = one(plan(
            vec![profile("p1", json!({"email": "a@x"}), &["vip"])],
            &BTreeMap::new(),
            &dest(),
            false,
            "csv",
            OPTS,
        ));
        assert_eq!(p.step, Step::Create);
        assert!(p.add.is_empty());
        let skip = p.skip.unwrap();
        assert!(skip
            .message
            .contains("connector csv cannot hold group memberships"));
        assert_eq!(skip.reason, "with groups connector csv cannot hold");
    }

    #[test]
    fn missing_key_is_invalid_and_duplicates_are_refused() {
        let d = planned(
            vec![
                profile("p1", json!({"name": "Ada"}), &[]),
                profile("p2", json!({"email": "b@x"}), &[]),
                profile("p2", json!({"email": "c@x"}), &[]),
            ],
            &BTreeMap::new(),
            OPTS,
        );
        let c = count(&d, true);
        assert_eq!((c.invalid, c.created), (2, 1));
    }

    #[test]
    fn two_profiles_with_one_key_are_not_merged() {
        let d = planned(
            vec![
                profile("p1", json!({"email": "a@x"}), &[]),
                profile("p2", json!({"email": "a@x"}), &[]),
            ],
            &BTreeMap::new(),
            OPTS,
        );
        match &d[1] {
            Decision::Invalid(i) => assert!(
                i.message.contains("profile p1 has the same email"),
                "{}",
                i.message
            ),
            other => panic!("expected the second profile invalid, got {other:?}"),
        }
    }

    #[test]
    fn absent_profiles_follow_the_deletes_mode() {
        let state = BTreeMap::from([(
            "gone".to_string(),
            exported("g@x", json!({"email": "g@x", "n": 1}), &["vip"]),
        )]);
        let none = planned(vec![], &state, OPTS);
        assert!(none.is_empty());
        let clear = one(planned(
            vec![],
            &state,
            DiffOptions {
                full: false,
                deletes: Deletes::Clear,
            },
        ));
        assert!(
            matches!(&clear.step, Step::Update { clear, .. } if clear == &vec!["n".to_string()])
        );
        assert_eq!(clear.remove, ["vip"]);
        let delete = planned(
            vec![],
            &state,
            DiffOptions {
                full: false,
                deletes: Deletes::Delete,
            },
        );
        let c = count(&delete, true);
        assert_eq!((c.deleted, c.destructive), (1, 1));
        // The memberships go with the record: removed either way.
        assert_eq!(c.groups_removed, 1);
        let cleared = planned(
            vec![],
            &state,
            DiffOptions {
                full: false,
                deletes: Deletes::Clear,
            },
        );
        assert_eq!(count(&cleared, true).groups_removed, c.groups_removed);
        // A destination without groups had none to remove.
        let plain = plan(
            vec![],
            &state,
            &dest(),
            false,
            "csv",
            DiffOptions {
                full: false,
                deletes: Deletes::Delete,
            },
        );
        assert_eq!(count(&plain, false).groups_removed, 0);
    }

    #[test]
    fn full_resends_everything_known() {
        let state = BTreeMap::from([(
            "p1".to_string(),
            exported("a@x", json!({"email": "a@x"}), &["vip"]),
        )]);
        let p = one(planned(
            vec![profile("p1", json!({"email": "a@x"}), &["vip"])],
            &state,
            DiffOptions {
                full: true,
                deletes: Deletes::None,
            },
        ));
        assert!(matches!(p.step, Step::Update { .. }));
        assert_eq!(p.add, ["vip"]);
    }
}
