//! `ferry export --dry-run`: the predicted counts and the first requests a
//! run would send, in the order it sends them, as the destination's
//! preview renders them. Nothing is sent and no state is written.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::diff::{Decision, Planned, Step};
use super::report::DryRunReport;
use super::DeletesOverLimit;
use crate::connector::{ProfileSink, Record, WriteOp};

/// How many preview rows a dry run prints.
const PREVIEW_ROWS: usize = 10;

/// The dry run's report: `decisions` as a run would send them.
pub(super) fn dry_run(
    dest: &dyn ProfileSink,
    decisions: &[Decision],
    predicted: super::diff::Counts,
    over_limit: Option<DeletesOverLimit>,
    destination: String,
    state: std::path::PathBuf,
) -> DryRunReport {
    let invalid = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Invalid(i) => Some(i.clone()),
            Decision::Planned(_) => None,
        })
        .collect();
    DryRunReport {
        destination,
        state,
        requests: preview(dest, decisions),
        predicted,
        over_limit,
        invalid,
    }
}

/// The first requests the run would send, in the order it sends them.
fn preview(dest: &dyn ProfileSink, decisions: &[Decision]) -> Vec<Value> {
    let planned: Vec<&Planned> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Planned(p) => Some(p.as_ref()),
            Decision::Invalid(_) => None,
        })
        .collect();
    if let Some(whole) = dest.whole() {
        let changes: Vec<_> = planned
            .iter()
            .filter(|p| p.sends())
            .take(PREVIEW_ROWS)
            .map(|p| super::send::change_of(p))
            .collect();
        let mut rows = whole
            .preview_changes(&changes)
            .unwrap_or_else(|e| vec![json!({"action": "export", "preview": format!("{e:#}")})]);
        rows.truncate(PREVIEW_ROWS);
        return rows;
    }
    let mut ops = Vec::new();
    for p in &planned {
        if let Step::Delete { dest_id } = &p.step {
            ops.push(WriteOp::Delete {
                id: dest_id.clone(),
            });
        }
    }
    let creates: Vec<Record> = planned
        .iter()
        .filter(|p| p.step == Step::Create)
        .map(|p| p.fields.clone())
        .take(PREVIEW_ROWS)
        .collect();
    if !creates.is_empty() {
        ops.push(WriteOp::UpsertBatch(creates));
    }
    for p in &planned {
        if let Step::Update {
            dest_id,
            set,
            clear,
            ..
        } = &p.step
        {
            ops.push(WriteOp::UpdateProfile {
                id: dest_id.clone(),
                set: set.clone(),
                clear: clear.clone(),
            });
        }
    }
    if dest.groups().is_some() {
        // A created profile's destination id is not known yet: its key stands in.
        let id_of = |p: &Planned| match &p.prev {
            Some(e) => e.dest_id.clone(),
            None => p.key.clone(),
        };
        let mut adds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut removes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        // A deleted record's memberships go with it: nothing to send for them.
        for p in planned
            .iter()
            .filter(|p| !matches!(p.step, Step::Delete { .. }))
        {
            for g in &p.add {
                adds.entry(g).or_default().push(id_of(p));
            }
            for g in &p.remove {
                removes.entry(g).or_default().push(id_of(p));
            }
        }
        for (g, ids) in adds {
            ops.push(WriteOp::AddMembers {
                group: g.to_string(),
                ids,
            });
        }
        for (g, ids) in removes {
            ops.push(WriteOp::RemoveMembers {
                group: g.to_string(),
                ids,
            });
        }
    }
    let mut rows = Vec::new();
    for op in ops {
        if rows.len() >= PREVIEW_ROWS {
            break;
        }
        match dest.preview(&op) {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(json!({"action": op.action(), "preview": format!("{e:#}")})),
        }
    }
    rows.truncate(PREVIEW_ROWS);
    rows
}
