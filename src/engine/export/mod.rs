//! `ferry export`: read the profiles, diff them against the destination's
//! export state, then send only what changed: deletes, creates (upserts by
//! key), updates with clears, then group memberships (each group ensured
//! once per run). Every profile ends `ok`, `skipped` (informational, never
//! retried) or failed (`invalid`, `rejected`, `error`); only what succeeded
//! advances the state, so a failed profile is sent again next run. The state
//! is saved in one transaction after the destination answered.

pub mod diff;
pub mod input;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::connector::{
    able, ExportFields, ProfileOutcome, ProfileSink, ProfileUpdate, Record, WriteOp,
};
use crate::ctx::Ctx;
use crate::engine::interrupt::Interrupt;
use crate::engine::target::Target;
use crate::error::{failed, usage};
use crate::output::Output;

use diff::{Counts, Decision, Deletes, DiffOptions, Planned, Step};
use state::{Exported, State};

/// Where the profiles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfilesFrom {
    /// A JSON lines, JSON array or CSV file (`--input FILE`).
    File(PathBuf),
    /// The `export` section of the folder's in.json.
    Section,
    /// Any source connector (`--from TARGET`).
    Source(Target),
}

/// An export run, as the command line asked for it.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub to: Target,
    pub from: ProfilesFrom,
    pub batch_size: Option<usize>,
    pub deletes: Deletes,
    pub max_deletes: Option<u64>,
    pub full: bool,
    pub dry_run: bool,
    pub errors: Option<PathBuf>,
    pub yes: bool,
}

/// Why a profile was not sent after Ctrl-C.
const INTERRUPTED: &str = "interrupted before it was sent";
/// How many preview rows a dry run prints.
const PREVIEW_ROWS: usize = 10;
/// The longest `retryIn` a run waits for before leaving the profile to the next run.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Why a profile failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailKind {
    Rejected,
    Error,
    /// Not sent because the run was interrupted: neither reported nor
    /// counted as an error; the next run sends it.
    Interrupted,
}

/// One profile's progress through the run.
struct Track {
    p: Planned,
    dest_id: Option<String>,
    /// The record step succeeded (or there was none).
    step_ok: bool,
    /// The record step turned into a create (its record was gone).
    recreated: bool,
    failure: Option<(FailKind, String)>,
    skip: Option<String>,
    groups_now: BTreeSet<String>,
}

impl Track {
    fn fail(&mut self, outcome: &ProfileOutcome, what: &str) {
        let (kind, reason) = match outcome {
            ProfileOutcome::Rejected { reason } => (FailKind::Rejected, reason.clone()),
            ProfileOutcome::NotFound { reason } => (FailKind::Error, reason.clone()),
            ProfileOutcome::Error { reason, .. } if reason == INTERRUPTED => {
                (FailKind::Interrupted, reason.clone())
            }
            ProfileOutcome::Error { reason, .. } => (FailKind::Error, reason.clone()),
            ProfileOutcome::Skipped { reason } => {
                self.skip = Some(reason.clone());
                return;
            }
            ProfileOutcome::Ok { .. } => return,
        };
        if self.failure.is_none() {
            self.failure = Some((kind, format!("{what}: {reason}")));
        }
    }
}

pub async fn run(ctx: &Ctx, plan: ExportPlan) -> Result<ExitCode> {
    // Before any work: a signal while the profiles are still being read
    // stops the run cleanly (nothing sent, summary, exit 130).
    let interrupt = Interrupt::install()?;
    let started = Instant::now();
    let target = plan.to.resolve(ctx)?;
    let dest = ctx.open(&target.account)?;
    let state_path = state::path_for(&ctx.folder, &target.identity);
    // One writer at a time for the destination file and the export state,
    // held until the run returns; a dry run writes neither.
    let mut _locks = Vec::new();
    if !plan.dry_run {
        if let Some(file) = dest.written_file() {
            _locks.push(crate::lock::hold(ctx, file, "the destination", &interrupt).await?);
        }
        _locks.push(crate::lock::hold(ctx, &state_path, "the export state", &interrupt).await?);
    }
    let profiles = able(dest.as_ref(), dest.profiles(), "export profiles")?;
    let fields = profiles.export_fields().await?;
    let code = dest.spec().code;
    let entries = match &plan.from {
        ProfilesFrom::File(path) => input::read_file(path)?,
        ProfilesFrom::Section => {
            let inputs = ctx.inputs()?;
            let source = inputs.describe("export", "profiles");
            let Some(section) = inputs.section("export") else {
                return Err(usage("no profiles to export")
                    .hint("pass --input FILE (JSON lines, JSON array or CSV), --from TARGET, or add an \"export\" section to in.json")
                    .into());
            };
            input::from_section(section, &source)?
        }
        ProfilesFrom::Source(spec) => {
            spec.must_exist(&spec.canonical())?;
            let source = spec.resolve(ctx)?;
            let connector = ctx.open(&source.account)?;
            let source_pages = able(connector.as_ref(), connector.source(), "read pages")?;
            input::from_connector(source_pages, &source.account.source).await?
        }
    };
    let entries = match property_map(ctx)? {
        Some(map) => input::apply_map(entries, &map),
        None => entries,
    };
    let mut state = State::open(state_path)?;
    let before = state.load()?;
    let opts = DiffOptions {
        full: plan.full,
        deletes: plan.deletes,
    };
    let decisions = diff::plan(entries, &before, &fields, code, opts);
    let predicted = diff::count(&decisions, &fields);
    let limit = plan
        .max_deletes
        .unwrap_or_else(|| (before.len() as u64).div_ceil(10));
    let over = predicted.destructive > limit;
    ctx.out.verbose(&format!(
        "export to {} (state {}, {} profiles exported before): {} to create, {} to update, {} to delete, {} unchanged, {} memberships to add, {} to remove, {} invalid",
        target.account.source,
        state.path().display(),
        before.len(),
        predicted.created,
        predicted.updated,
        predicted.deleted,
        predicted.unchanged,
        predicted.groups_added,
        predicted.groups_removed,
        predicted.invalid
    ));

    if plan.dry_run {
        let requests = preview(profiles, &decisions, &fields);
        let mut report = json!({
            "dryRun": true,
            "destination": target.account.source,
            "state": state.path().display().to_string(),
            "predicted": counts_json(&predicted),
            "requests": requests,
        });
        if over {
            report["deletesOverLimit"] = json!(format!(
                "{} deletes or clears, more than --max-deletes {limit}: a real run asks first, or needs --yes",
                predicted.destructive
            ));
        }
        let invalid: Vec<Value> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Invalid(i) => Some(json!({"id": i.id, "message": i.message})),
                Decision::Planned(_) => None,
            })
            .collect();
        if !invalid.is_empty() {
            report["invalidProfiles"] = json!(invalid);
        }
        ctx.out.result(&report)?;
        return Ok(if predicted.invalid > 0 {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        });
    }

    if over && !plan.yes {
        confirm_deletes(ctx, predicted.destructive, limit, before.len())?;
    }

    // A remote destination gets batches of at most 100 profiles; a file
    // takes its largest batch, since each batch costs one rewrite of it.
    let batch = plan
        .batch_size
        .unwrap_or_else(|| match dest.written_file() {
            Some(_) => dest.spec().max_batch_size,
            None => dest.spec().max_batch_size.min(100),
        })
        .max(1);
    let mut invalid = Vec::new();
    let mut tracks = Vec::new();
    for d in decisions {
        match d {
            Decision::Invalid(i) => invalid.push(i),
            Decision::Planned(p) => tracks.push(Track {
                dest_id: p.prev.as_ref().map(|e| e.dest_id.clone()),
                groups_now: p
                    .prev
                    .as_ref()
                    .map(|e| e.groups.clone())
                    .unwrap_or_default(),
                skip: p.skip.clone(),
                step_ok: false,
                recreated: false,
                failure: None,
                p: *p,
            }),
        }
    }
    let mut sent = Sent::default();
    // Ctrl-C, SIGTERM, SIGHUP: the batch in flight finishes, nothing more
    // is sent, and what succeeded is saved before the run exits 130.
    let stop = Arc::new(AtomicBool::new(interrupt.is_set()));
    if interrupt.is_set() {
        ctx.out
            .warn("interrupted before anything was sent: saving the state as it was");
    }
    let watcher = {
        let (stop, out) = (Arc::clone(&stop), ctx.out.clone());
        tokio::spawn(async move {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            interrupt.wait().await;
            out.warn("interrupted: finishing the batch in flight, then saving the state; interrupt again to stop at once");
            stop.store(true, Ordering::SeqCst);
        })
    };
    let link = Link {
        batch,
        out: &ctx.out,
        stop: &stop,
    };
    execute(profiles, &fields, &mut tracks, &link, &mut sent).await;
    watcher.abort();
    let interrupted = stop.load(Ordering::SeqCst);

    // The state: what succeeded, and nothing for what failed.
    let mut changes = Vec::new();
    for t in &tracks {
        if t.p.is_unchanged() || (!t.step_ok && t.failure.is_some()) {
            continue;
        }
        match (&t.p.step, &t.dest_id) {
            (Step::Delete { .. }, _) => changes.push((t.p.id.clone(), None)),
            (_, Some(dest_id)) => {
                let groups = if fields.groups {
                    t.groups_now.clone()
                } else {
                    t.p.groups.clone()
                };
                changes.push((
                    t.p.id.clone(),
                    Some(Exported {
                        dest_id: dest_id.clone(),
                        key: t.p.key.clone(),
                        properties: t.p.fields.clone(),
                        groups,
                    }),
                ));
            }
            (_, None) => {}
        }
    }
    if !changes.is_empty() {
        state.save(&target.identity, &changes)?;
    }

    // The report.
    let mut lines = Vec::new();
    for i in &invalid {
        lines.push(json!({"id": i.id, "level": "error", "kind": "invalid", "message": i.message}));
    }
    let (mut rejected, mut errors, mut skipped, mut not_sent) = (0u64, 0u64, 0u64, 0u64);
    for t in &tracks {
        match &t.failure {
            Some((FailKind::Rejected, m)) => {
                rejected += 1;
                lines.push(
                    json!({"id": t.p.id, "level": "error", "kind": "rejected", "message": m}),
                );
            }
            Some((FailKind::Interrupted, _)) => not_sent += 1,
            Some((FailKind::Error, m)) => {
                errors += 1;
                lines.push(json!({"id": t.p.id, "level": "error", "kind": "error", "message": m}));
            }
            None => {
                if let Some(reason) = &t.skip {
                    skipped += 1;
                    lines.push(json!({"id": t.p.id, "level": "info", "kind": "skipped", "message": reason}));
                }
            }
        }
    }
    for line in &lines {
        if line["level"] == "error" {
            ctx.out.warn(&format!(
                "profile {}: {} ({})",
                line["id"].as_str().unwrap_or_default(),
                line["message"].as_str().unwrap_or_default(),
                line["kind"].as_str().unwrap_or_default()
            ));
        }
    }
    if let Some(path) = &plan.errors {
        let path = crate::config::resolve(&ctx.cwd, path);
        let mut text = String::new();
        for line in &lines {
            text.push_str(&line.to_string());
            text.push('\n');
        }
        crate::fsutil::write_bytes_atomic(&path, ctx.out.redact(&text).as_bytes())
            .with_context(|| format!("could not write the errors file {}", path.display()))?;
    }
    let unchanged = tracks.iter().filter(|t| t.p.is_unchanged()).count() as u64;
    let profiles = (invalid.len() + tracks.iter().filter(|t| !t.p.absent).count()) as u64;
    let elapsed = started.elapsed().as_secs_f64();
    let failed_count = invalid.len() as u64 + rejected + errors;
    let mut summary = json!({
        "created": sent.created,
        "updated": sent.updated,
        "deleted": sent.deleted,
        "unchanged": unchanged,
        "groupsAdded": sent.groups_added,
        "groupsRemoved": sent.groups_removed,
        "invalid": invalid.len(),
        "rejected": rejected,
        "errors": errors,
        "skipped": skipped,
        "profiles": profiles,
        "elapsedSecs": (elapsed * 1000.0).round() / 1000.0,
        "profilesPerSecond": if elapsed > 0.0 { (profiles as f64 / elapsed).round() } else { 0.0 },
        "destination": target.account.source,
        "state": state.path().display().to_string(),
    });
    if interrupted {
        summary["notSent"] = json!(not_sent);
    }
    if let Some(path) = &plan.errors {
        summary["errorsFile"] = json!(crate::config::resolve(&ctx.cwd, path).display().to_string());
    }
    ctx.out.result(&summary)?;
    if interrupted {
        return Err(crate::error::Failure::new(
            crate::error::Kind::Interrupted,
            "interrupted; what was sent is saved in the export state",
        )
        .hint("run the same command again to send the rest")
        .into());
    }
    Ok(if failed_count > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the destination acknowledged.
#[derive(Debug, Default)]
struct Sent {
    created: u64,
    updated: u64,
    deleted: u64,
    groups_added: u64,
    groups_removed: u64,
}

/// How the run sends: batch size, where to log, and the Ctrl-C flag.
struct Link<'a> {
    batch: usize,
    out: &'a Output,
    stop: &'a AtomicBool,
}

impl Link<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

async fn execute(
    dest: &dyn ProfileSink,
    fields: &ExportFields,
    tracks: &mut [Track],
    link: &Link<'_>,
    sent: &mut Sent,
) {
    let (batch, out, stop) = (link.batch, link.out, link.stop);
    for t in tracks.iter_mut() {
        if t.p.step == Step::Nothing {
            t.step_ok = true;
        }
    }
    // Deletes.
    let idx: Vec<usize> = (0..tracks.len())
        .filter(|&i| matches!(tracks[i].p.step, Step::Delete { .. }))
        .collect();
    let ids: Vec<String> = idx
        .iter()
        .map(|&i| match &tracks[i].p.step {
            Step::Delete { dest_id } => dest_id.clone(),
            _ => String::new(),
        })
        .collect();
    let outcomes = send(ids, batch, out, stop, |chunk| dest.delete_profiles(chunk)).await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { .. } => {
                t.step_ok = true;
                sent.deleted += 1;
            }
            other => t.fail(other, "delete"),
        }
    }
    // Creates (upserts by key, so a re-sent create never duplicates).
    let idx: Vec<usize> = (0..tracks.len())
        .filter(|&i| tracks[i].p.step == Step::Create)
        .collect();
    let records: Vec<Record> = idx.iter().map(|&i| tracks[i].p.fields.clone()).collect();
    let outcomes = send(records, batch, out, stop, |chunk| {
        dest.create_profiles(chunk)
    })
    .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { id } => {
                t.step_ok = true;
                t.dest_id = Some(id.clone());
                sent.created += 1;
            }
            other => t.fail(other, "create"),
        }
    }
    // Updates, by the destination id found last time, so a changed key
    // updates the record instead of creating a second one.
    let idx: Vec<usize> = (0..tracks.len())
        .filter(|&i| matches!(tracks[i].p.step, Step::Update { .. }))
        .collect();
    let updates: Vec<(String, ProfileUpdate)> = idx
        .iter()
        .map(|&i| match &tracks[i].p.step {
            Step::Update {
                dest_id,
                set,
                clear,
                ..
            } => (
                dest_id.clone(),
                ProfileUpdate {
                    set: set.clone(),
                    clear: clear.clone(),
                },
            ),
            _ => (String::new(), ProfileUpdate::default()),
        })
        .collect();
    let outcomes = send(updates, batch, out, stop, |chunk| {
        dest.update_profiles(chunk)
    })
    .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { id } => {
                t.step_ok = true;
                t.dest_id = Some(id.clone());
                sent.updated += 1;
            }
            ProfileOutcome::NotFound { .. } if !link.stopped() => relocate(dest, t, sent).await,
            other => t.fail(other, "update"),
        }
    }
    if !fields.groups {
        return;
    }
    // Memberships: each group ensured once, then members added and removed per group.
    let mut adds: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut removes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in tracks.iter().enumerate() {
        if !t.step_ok || t.dest_id.is_none() || matches!(t.p.step, Step::Delete { .. }) {
            continue;
        }
        for g in &t.p.add {
            adds.entry(g.clone()).or_default().push(i);
        }
        for g in &t.p.remove {
            removes.entry(g.clone()).or_default().push(i);
        }
    }
    let sink = able(dest, dest.groups(), "hold group memberships").map_err(|e| format!("{e:#}"));
    let mut groups: HashMap<String, std::result::Result<String, String>> = HashMap::new();
    for (adding, jobs) in [(true, adds), (false, removes)] {
        for (name, idx) in jobs {
            let group = match groups.get(&name) {
                Some(g) => g.clone(),
                None if link.stopped() => Err(INTERRUPTED.to_string()),
                None => {
                    let g = match &sink {
                        Ok(s) => s.ensure_group(&name).await.map_err(|e| format!("{e:#}")),
                        Err(reason) => Err(reason.clone()),
                    };
                    groups.insert(name.clone(), g.clone());
                    g
                }
            };
            let group = match group {
                Ok(g) => g,
                Err(reason) => {
                    for &i in &idx {
                        tracks[i].fail(
                            &ProfileOutcome::Error {
                                reason: reason.clone(),
                                retry_in: None,
                            },
                            &format!("group \"{name}\""),
                        );
                    }
                    continue;
                }
            };
            // A group id means the destination holds groups.
            let Ok(members) = &sink else { continue };
            let ids: Vec<String> = idx
                .iter()
                .map(|&i| tracks[i].dest_id.clone().unwrap_or_default())
                .collect();
            let outcomes = if adding {
                send(ids, batch, out, stop, |chunk| {
                    members.add_members(&group, chunk)
                })
                .await
            } else {
                send(ids, batch, out, stop, |chunk| {
                    members.remove_members(&group, chunk)
                })
                .await
            };
            for (&i, o) in idx.iter().zip(&outcomes) {
                let t = &mut tracks[i];
                match (o, adding) {
                    (ProfileOutcome::Ok { .. }, true) => {
                        t.groups_now.insert(name.clone());
                        sent.groups_added += 1;
                    }
                    (ProfileOutcome::Ok { .. }, false) => {
                        t.groups_now.remove(&name);
                        sent.groups_removed += 1;
                    }
                    (ProfileOutcome::Skipped { reason }, _) => {
                        // Informational: record the wish so it is not retried.
                        t.skip = Some(reason.clone());
                        if adding {
                            t.groups_now.insert(name.clone());
                        } else {
                            t.groups_now.remove(&name);
                        }
                    }
                    (other, true) => t.fail(other, &format!("join group \"{name}\"")),
                    (other, false) => t.fail(other, &format!("leave group \"{name}\"")),
                }
            }
        }
    }
}

/// The record exported last time is gone from the destination: look it up
/// by its old key, then by its new key, and update what is found; create it
/// only when neither exists.
async fn relocate(dest: &dyn ProfileSink, t: &mut Track, sent: &mut Sent) {
    let old_key = match &t.p.step {
        Step::Update { old_key, .. } => old_key.clone(),
        _ => return,
    };
    let clear = match &t.p.step {
        Step::Update { clear, .. } => clear.clone(),
        _ => Vec::new(),
    };
    let mut found = None;
    let new_key = t.p.key.clone();
    for key in [old_key.as_str(), new_key.as_str()] {
        match dest.find_profile(key).await {
            Ok(Some(id)) => {
                found = Some(id);
                break;
            }
            Ok(None) => {}
            Err(e) => {
                t.fail(&ProfileOutcome::from_result(Err(e)), "find");
                return;
            }
        }
    }
    let outcome = match found {
        Some(id) => {
            let update = ProfileUpdate {
                set: t.p.fields.clone(),
                clear,
            };
            ProfileOutcome::from_result(dest.update_profile(&id, update).await)
        }
        None => {
            t.recreated = true;
            ProfileOutcome::from_result(dest.create_profile(t.p.fields.clone()).await)
        }
    };
    match outcome {
        ProfileOutcome::Ok { id } => {
            t.step_ok = true;
            if t.recreated {
                sent.created += 1;
            } else {
                sent.updated += 1;
            }
            if t.dest_id.as_deref() != Some(id.as_str()) {
                // Another record: its memberships are not the ones recorded,
                // so every group is joined again.
                t.groups_now.clear();
                t.p.add = t.p.groups.iter().cloned().collect();
                t.p.remove.clear();
            }
            t.dest_id = Some(id);
        }
        other => t.fail(&other, "update"),
    }
}

/// Send `items` in batches of `size`; a profile the destination asks to
/// retry later is sent once more after the wait (up to a minute), so a
/// rate limit costs time, not the profile. One outcome per item, in order.
async fn send<T, F, Fut>(
    items: Vec<T>,
    size: usize,
    out: &Output,
    stop: &AtomicBool,
    call: F,
) -> Vec<ProfileOutcome>
where
    T: Clone,
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<ProfileOutcome>>,
{
    let mut all = Vec::with_capacity(items.len());
    for chunk in items.chunks(size) {
        if stop.load(Ordering::SeqCst) {
            all.extend(chunk.iter().map(|_| ProfileOutcome::Error {
                reason: INTERRUPTED.into(),
                retry_in: None,
            }));
            continue;
        }
        let mut outcomes = fit(call(chunk.to_vec()).await, chunk.len());
        let again: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, ProfileOutcome::Error { retry_in: Some(d), .. } if *d <= MAX_RETRY_WAIT))
            .map(|(i, _)| i)
            .collect();
        if !again.is_empty() {
            let wait = again
                .iter()
                .filter_map(|&i| match &outcomes[i] {
                    ProfileOutcome::Error { retry_in, .. } => *retry_in,
                    _ => None,
                })
                .max()
                .unwrap_or_default();
            out.info(&format!(
                "the destination asked to retry {} profile(s) in {:.1}s; waiting",
                again.len(),
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
            let retry: Vec<T> = again.iter().map(|&i| chunk[i].clone()).collect();
            let second = fit(call(retry).await, again.len());
            for (&i, o) in again.iter().zip(second) {
                outcomes[i] = o;
            }
        }
        all.extend(outcomes);
    }
    all
}

/// Exactly `n` outcomes: a destination that answers fewer leaves the rest failed.
fn fit(mut outcomes: Vec<ProfileOutcome>, n: usize) -> Vec<ProfileOutcome> {
    let got = outcomes.len();
    outcomes.truncate(n);
    while outcomes.len() < n {
        outcomes.push(ProfileOutcome::Error {
            reason: format!("the destination answered {got} outcomes for {n} profiles"),
            retry_in: None,
        });
    }
    outcomes
}

/// The `export.map` of the folder's in.json (never the `--input` file,
/// which for export holds the profiles): property name → destination field,
/// or null to leave the property out.
fn property_map(ctx: &Ctx) -> Result<Option<BTreeMap<String, Option<String>>>> {
    let inputs = crate::config::Inputs::load(&ctx.cwd, &ctx.out, &ctx.folder, None)?;
    let Some(Value::Object(section)) = inputs.section("export") else {
        return Ok(None);
    };
    let Some(map) = section.get("map") else {
        return Ok(None);
    };
    let where_ = inputs.describe("export", "map");
    let Value::Object(map) = map else {
        return Err(usage(format!("{where_} must be an object"))
            .hint("write it as {\"map\": {\"mail\": \"email\", \"internalNote\": null}}")
            .into());
    };
    let mut out = BTreeMap::new();
    for (from, to) in map {
        let to = match to {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Null => None,
            _ => {
                return Err(usage(format!(
                    "\"{from}\" in {where_} must name a destination field or be null"
                ))
                .into())
            }
        };
        out.insert(from.clone(), to);
    }
    Ok(Some(out))
}

/// Stop before a mass delete unless the user agrees.
fn confirm_deletes(ctx: &Ctx, count: u64, limit: u64, exported: usize) -> Result<()> {
    let what = format!(
        "this run would delete or clear {count} profiles, more than --max-deletes {limit} ({exported} profiles exported so far)"
    );
    if !ctx.interactive() {
        return Err(failed(format!("{what}; stopped, nothing was sent"))
            .hint("check that the input is complete; pass --yes to go ahead, or --max-deletes N to raise the limit (preview with --dry-run)")
            .into());
    }
    let go = dialoguer::Confirm::new()
        .with_prompt(format!("{what}. Go ahead?"))
        .default(false)
        .interact()
        .context("could not read the answer")?;
    if go {
        Ok(())
    } else {
        Err(failed("stopped before deleting; nothing was sent")
            .hint("pass --max-deletes N or --yes, or fix the input")
            .into())
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "created": c.created,
        "updated": c.updated,
        "deleted": c.deleted,
        "unchanged": c.unchanged,
        "groupsAdded": c.groups_added,
        "groupsRemoved": c.groups_removed,
        "invalid": c.invalid,
        "skipped": c.skipped,
    })
}

/// The first requests the run would send, in the order it sends them.
fn preview(dest: &dyn ProfileSink, decisions: &[Decision], fields: &ExportFields) -> Vec<Value> {
    let planned: Vec<&Planned> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Planned(p) => Some(p.as_ref()),
            Decision::Invalid(_) => None,
        })
        .collect();
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
    if fields.groups {
        // A created profile's destination id is not known yet: its key stands in.
        let id_of = |p: &Planned| match &p.prev {
            Some(e) => e.dest_id.clone(),
            None => p.key.clone(),
        };
        let mut adds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut removes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for p in &planned {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_retry_in_answer_is_waited_for_and_sent_once_more() {
        let calls = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let outcomes = send(
            vec!["a", "b"],
            10,
            &Output::new(),
            &stop,
            |items: Vec<&str>| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    items
                        .iter()
                        .map(|i| match (n, *i) {
                            (0, "b") => ProfileOutcome::Error {
                                reason: "slow down".into(),
                                retry_in: Some(Duration::from_millis(5)),
                            },
                            _ => ProfileOutcome::Ok { id: i.to_string() },
                        })
                        .collect()
                }
            },
        )
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(
            outcomes,
            vec![
                ProfileOutcome::Ok { id: "a".into() },
                ProfileOutcome::Ok { id: "b".into() }
            ]
        );
    }

    #[test]
    fn short_answers_leave_the_rest_failed() {
        let got = fit(vec![ProfileOutcome::Ok { id: "a".into() }], 2);
        assert!(
            matches!(&got[1], ProfileOutcome::Error { reason, .. } if reason.contains("1 outcomes for 2"))
        );
    }
}
