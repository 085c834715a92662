//! The send phase of an export: one [`Track`] per planned profile, sent a
//! chunk ([`chunk_size`]) at a time: the chunk's deletes,
//! creates, updates and group memberships in that order, each in batches,
//! each profile's outcome kept on its track. A destination that
//! asks to retry later is waited for once (up to a minute); Ctrl-C lets the
//! batch in flight finish and marks the rest as not sent. What succeeded
//! becomes the state changes ([`state_changes`]); nothing else does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::diff::{Decision, Planned, Skip, Step};
use super::input::Invalid;
use super::report::Sent;
use super::state::{Props, Written};
use crate::connector::{
    able, ProfileChange, ProfileOutcome, ProfileSink, ProfileUpdate, Record, WholeProfileSink,
};
use crate::interrupt::Interrupt;
use crate::output::progress::Progress;
use crate::output::Output;

/// Why a profile was not sent after Ctrl-C.
const INTERRUPTED: &str = "interrupted before it was sent";
/// The longest `retryIn` a run waits for before leaving the profile to the next run.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Why a profile failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FailKind {
    Rejected,
    Error,
    /// Not sent because the run was interrupted: neither reported nor
    /// counted as an error; the next run sends it.
    Interrupted,
}

/// How a profile failed: the first failure of its run.
pub(super) struct Failed {
    pub(super) kind: FailKind,
    /// The step that failed: "create", "join group \"vip\"".
    pub(super) step: String,
    /// The step and the destination's reason.
    pub(super) message: String,
}

/// One profile's progress through the run.
pub(super) struct Track {
    pub(super) p: Planned,
    pub(super) dest_id: Option<String>,
    /// The record step succeeded (or there was none).
    pub(super) step_ok: bool,
    /// The record step turned into a create (its record was gone).
    pub(super) recreated: bool,
    pub(super) failure: Option<Failed>,
    pub(super) skip: Option<Skip>,
    pub(super) groups_now: BTreeSet<String>,
    /// The properties as the state row keeps them, written before they are
    /// sent; `None` for a profile whose row is not written (unchanged,
    /// deleted).
    pub(super) props: Option<Props>,
}

impl Track {
    /// The record step succeeded; the destination holds the record as `id`.
    fn sent_as(&mut self, id: &str) {
        self.step_ok = true;
        self.dest_id = Some(id.to_string());
    }

    fn fail(&mut self, outcome: &ProfileOutcome, what: &str) {
        let (kind, reason) = match outcome {
            ProfileOutcome::Rejected { reason } => (FailKind::Rejected, reason.clone()),
            ProfileOutcome::NotFound { reason } => (FailKind::Error, reason.clone()),
            ProfileOutcome::Error { reason, .. } if reason == INTERRUPTED => {
                (FailKind::Interrupted, reason.clone())
            }
            ProfileOutcome::Error { reason, .. } => (FailKind::Error, reason.clone()),
            ProfileOutcome::Skipped { reason } => {
                self.skip = Some(Skip::from_destination(reason));
                return;
            }
            ProfileOutcome::Ok { .. } => return,
        };
        if self.failure.is_none() {
            self.failure = Some(Failed {
                kind,
                step: what.to_string(),
                message: format!("{what}: {reason}"),
            });
        }
    }
}

/// One track per planned profile; the invalid ones are set aside.
pub(super) fn tracks(decisions: Vec<Decision>) -> (Vec<Invalid>, Vec<Track>) {
    let mut invalid = Vec::new();
    let mut tracks = Vec::with_capacity(decisions.len());
    for d in decisions {
        match d {
            Decision::Invalid(i) => invalid.push(i),
            Decision::Planned(p) => tracks.push(Track {
                props: (!p.is_unchanged() && !matches!(p.step, Step::Delete { .. }))
                    .then(|| Props::of(&p.fields)),
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
    (invalid, tracks)
}

/// The groups a run found or created (or why it could not), by name: each
/// is ensured once per run, whatever the chunk.
pub(super) type Groups = HashMap<String, std::result::Result<String, String>>;

/// How many batches a chunk of the run holds, at most. The run sends a
/// chunk (its deletes, creates, updates, then memberships), then saves its
/// state while it sends the next one; a run killed half-way keeps what it
/// sent but at most the last two chunks (ten batches at most; two for a
/// local store, whose batch is a chunk), which the next run sends again
/// (as upserts by key, so nothing is duplicated).
const CHUNK_BATCHES: usize = 5;

/// The most profiles a chunk of several batches holds: up to four chunks
/// are in hand at once (one being planned, one waiting, one sent, one
/// being saved), and a local store's batches of a thousand would
/// otherwise hold 20,000 profiles in memory.
const CHUNK_PROFILES: usize = 1_000;

/// The profiles of a chunk sent in batches of `batch`: [`CHUNK_BATCHES`]
/// batches, but not more than [`CHUNK_PROFILES`] profiles unless one batch
/// is larger.
pub(super) fn chunk_size(batch: usize) -> usize {
    batch
        .saturating_mul(CHUNK_BATCHES)
        .min(CHUNK_PROFILES.max(batch))
        .max(1)
}

/// Send what one chunk's tracks plan, in batches of `batch`: deletes,
/// creates, updates, then memberships (each group ensured once a run, in
/// `groups`), each profile's outcome kept on its track. Answers what the
/// destination acknowledged and whether a signal stopped the run.
pub(super) async fn send_all(
    dest: &dyn ProfileSink,
    tracks: &mut [Track],
    batch: usize,
    out: &Output,
    interrupt: Interrupt,
    progress: &dyn Progress,
    groups: &mut Groups,
) -> (Sent, bool) {
    let mut sent = Sent::default();
    // Ctrl-C, SIGTERM, SIGHUP: the batch in flight finishes, nothing more
    // is sent, and what succeeded is saved before the run exits 130.
    let stop = Arc::new(AtomicBool::new(interrupt.is_set()));
    if interrupt.is_set() {
        out.warn("interrupted before anything was sent: saving the state as it was");
    }
    let watcher = {
        let (stop, out) = (Arc::clone(&stop), out.clone());
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
        out,
        stop: &stop,
    };
    for t in tracks.iter_mut() {
        if t.p.step == Step::Nothing {
            t.step_ok = true;
        }
    }
    let (done, _) = settled(tracks);
    progress.start(done, Some(tracks.len() as u64));
    let show = |tracks: &[Track]| {
        let (done, failed) = settled(tracks);
        progress.update(done, failed);
    };
    if let Some(whole) = dest.whole() {
        wholes(whole, tracks, &link, &mut sent).await;
    } else {
        deletes(dest, tracks, &link, &mut sent).await;
        show(tracks);
        creates(dest, tracks, &link, &mut sent).await;
        show(tracks);
        updates(dest, tracks, &link, &mut sent).await;
        show(tracks);
        if dest.groups().is_some() {
            memberships(dest, tracks, &link, &mut sent, groups).await;
        }
    }
    show(tracks);
    progress.finish();
    watcher.abort();
    (sent, stop.load(Ordering::SeqCst))
}

/// How many tracks are settled (their record step done, or failed), and
/// how many of them failed.
fn settled(tracks: &[Track]) -> (u64, u64) {
    let done = tracks
        .iter()
        .filter(|t| t.step_ok || t.failure.is_some())
        .count();
    let failed = tracks
        .iter()
        .filter(|t| {
            matches!(
                t.failure,
                Some(Failed {
                    kind: FailKind::Rejected | FailKind::Error,
                    ..
                })
            )
        })
        .count();
    (done as u64, failed as u64)
}

/// The state changes of a run: what succeeded, and nothing for what
/// failed, so a failed profile is sent again next run. For a destination
/// that holds no memberships (`groups` false) the state keeps the input's
/// groups. The tracks give up their state rows (the last use of them).
pub(super) fn state_changes(tracks: &mut [Track], groups: bool) -> Vec<(String, Option<Written>)> {
    let mut changes = Vec::new();
    for t in tracks {
        if t.p.is_unchanged() || (!t.step_ok && t.failure.is_some()) {
            continue;
        }
        match (&t.p.step, &t.dest_id) {
            (Step::Delete { .. }, _) => changes.push((t.p.id.clone(), None)),
            (_, Some(dest_id)) => {
                let memberships = if groups {
                    std::mem::take(&mut t.groups_now)
                } else {
                    std::mem::take(&mut t.p.groups)
                };
                let properties = t.props.take().unwrap_or_else(|| Props::of(&t.p.fields));
                changes.push((
                    t.p.id.clone(),
                    Some(Written {
                        dest_id: dest_id.clone(),
                        key: t.p.key.clone(),
                        properties,
                        groups: memberships,
                    }),
                ));
            }
            (_, None) => {}
        }
    }
    changes
}

/// The hashes to write back for the tracks found unchanged: their rows
/// kept no hash, or another (what the first pass could not match).
pub(super) fn unchanged_hashes(tracks: &[Track]) -> Vec<(String, String)> {
    tracks
        .iter()
        .filter(|t| t.p.is_unchanged() && !t.p.absent)
        .map(|t| (t.p.id.clone(), super::state::hash(&t.p.fields, &t.p.groups)))
        .collect()
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

    /// [`send`] in this run's batches, minding its Ctrl-C flag.
    async fn send<T, F, Fut>(
        &self,
        items: Vec<T>,
        call: F,
        again: impl Fn(usize) -> T,
    ) -> Vec<ProfileOutcome>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<ProfileOutcome>>,
    {
        send(items, self.batch, self.out, self.stop, call, again).await
    }
}

/// The tracks whose plan `request` turns into a request, by index, with
/// their requests in the same order.
fn requests<T>(tracks: &[Track], request: impl Fn(&Planned) -> Option<T>) -> (Vec<usize>, Vec<T>) {
    tracks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| request(&t.p).map(|r| (i, r)))
        .unzip()
}

/// Deletes, by the destination id recorded last time.
async fn deletes(dest: &dyn ProfileSink, tracks: &mut [Track], link: &Link<'_>, sent: &mut Sent) {
    let request = |p: &Planned| match &p.step {
        Step::Delete { dest_id } => Some(dest_id.clone()),
        _ => None,
    };
    let (idx, ids) = requests(tracks, request);
    let again = |k: usize| request(&tracks[idx[k]].p).unwrap_or_default();
    let outcomes = link
        .send(ids, |chunk| dest.delete_profiles(chunk), again)
        .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { .. } => {
                t.step_ok = true;
                sent.deleted += 1;
                // Its memberships went with it (none are sent for it).
                sent.groups_removed += t.p.remove.len() as u64;
            }
            other => t.fail(other, "delete"),
        }
    }
}

/// The whole change of `p`, for a destination that takes it in one call.
pub(super) fn change_of(p: &Planned) -> ProfileChange {
    let (old_properties, old_groups) = match &p.prev {
        Some(e) => (e.properties.clone(), e.groups.iter().cloned().collect()),
        None => (Record::new(), Vec::new()),
    };
    let to_delete = matches!(p.step, Step::Delete { .. });
    ProfileChange {
        profile_id: p.id.clone(),
        key: p.key.clone(),
        old_properties,
        new_properties: if to_delete {
            Record::new()
        } else {
            p.fields.clone()
        },
        old_groups,
        new_groups: if to_delete {
            Vec::new()
        } else {
            p.groups.iter().cloned().collect()
        },
        to_delete,
    }
}

/// Every changed profile as one whole change (Grouparoo's `exportProfile`):
/// its record step and its memberships succeed or fail together.
async fn wholes(
    dest: &dyn WholeProfileSink,
    tracks: &mut [Track],
    link: &Link<'_>,
    sent: &mut Sent,
) {
    let (idx, changes) = requests(tracks, |p| p.sends().then(|| change_of(p)));
    let again = |k: usize| change_of(&tracks[idx[k]].p);
    let outcomes = link
        .send(changes, |chunk| dest.export_changes(chunk), again)
        .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { id } => {
                match t.p.step {
                    Step::Create => sent.created += 1,
                    Step::Update { .. } => sent.updated += 1,
                    Step::Delete { .. } => sent.deleted += 1,
                    Step::Nothing => {}
                }
                sent.groups_added += t.p.add.len() as u64;
                sent.groups_removed += t.p.remove.len() as u64;
                t.sent_as(id);
                t.groups_now = t.p.groups.clone();
            }
            other => {
                // A membership-only change leaves its record step done.
                if t.p.step != Step::Nothing {
                    t.step_ok = false;
                }
                t.fail(other, "export");
            }
        }
    }
}

/// Creates: upserts by key, so a re-sent create never duplicates.
async fn creates(dest: &dyn ProfileSink, tracks: &mut [Track], link: &Link<'_>, sent: &mut Sent) {
    // The record goes to the destination as it is: the state row keeps
    // the properties written before (`Track::props`).
    let (idx, records): (Vec<usize>, Vec<Record>) = tracks
        .iter_mut()
        .enumerate()
        .filter(|(_, t)| t.p.step == Step::Create)
        .map(|(i, t)| match t.props {
            Some(_) => (i, std::mem::take(&mut t.p.fields)),
            None => (i, t.p.fields.clone()),
        })
        .unzip();
    // A record asked for again is read back from the state row's text.
    let again = |k: usize| {
        let t = &tracks[idx[k]];
        t.props
            .as_ref()
            .map(Props::record)
            .unwrap_or_else(|| t.p.fields.clone())
    };
    let outcomes = link
        .send(records, |chunk| dest.create_profiles(chunk), again)
        .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { id } => {
                t.sent_as(id);
                sent.created += 1;
            }
            other => t.fail(other, "create"),
        }
    }
}

/// Updates, by the destination id found last time, so a changed key
/// updates the record instead of creating a second one.
async fn updates(dest: &dyn ProfileSink, tracks: &mut [Track], link: &Link<'_>, sent: &mut Sent) {
    let request = |p: &Planned| match &p.step {
        Step::Update {
            dest_id,
            set,
            clear,
            ..
        } => Some((
            dest_id.clone(),
            ProfileUpdate {
                set: set.clone(),
                clear: clear.clone(),
            },
        )),
        _ => None,
    };
    let (idx, updates) = requests(tracks, request);
    let again = |k: usize| request(&tracks[idx[k]].p).unwrap_or_default();
    let outcomes = link
        .send(updates, |chunk| dest.update_profiles(chunk), again)
        .await;
    for (&i, o) in idx.iter().zip(&outcomes) {
        let t = &mut tracks[i];
        match o {
            ProfileOutcome::Ok { id } => {
                t.sent_as(id);
                sent.updated += 1;
            }
            ProfileOutcome::NotFound { .. } if !link.stopped() => relocate(dest, t, sent).await,
            other => t.fail(other, "update"),
        }
    }
}

/// Memberships: each group ensured once a run (`groups` keeps what was
/// found), then members added and removed per group, for the profiles
/// whose record step succeeded.
async fn memberships(
    dest: &dyn ProfileSink,
    tracks: &mut [Track],
    link: &Link<'_>,
    sent: &mut Sent,
    groups: &mut Groups,
) {
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
            let id = |i: usize| tracks[i].dest_id.clone().unwrap_or_default();
            let ids: Vec<String> = idx.iter().map(|&i| id(i)).collect();
            let again = |k: usize| id(idx[k]);
            let outcomes = if adding {
                link.send(ids, |chunk| members.add_members(&group, chunk), again)
                    .await
            } else {
                link.send(ids, |chunk| members.remove_members(&group, chunk), again)
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
                        t.skip = Some(Skip::from_destination(reason));
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
/// The items go to the destination as they are; `again(k)` builds item
/// `k` anew for the retry, so no batch is copied in case one comes.
async fn send<T, F, Fut>(
    items: Vec<T>,
    size: usize,
    out: &Output,
    stop: &AtomicBool,
    call: F,
    again: impl Fn(usize) -> T,
) -> Vec<ProfileOutcome>
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<ProfileOutcome>>,
{
    let mut all = Vec::with_capacity(items.len());
    let mut items = items.into_iter();
    loop {
        let base = all.len();
        let chunk: Vec<T> = items.by_ref().take(size.max(1)).collect();
        let n = chunk.len();
        if n == 0 {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            all.extend((0..n).map(|_| ProfileOutcome::Error {
                reason: INTERRUPTED.into(),
                retry_in: None,
            }));
            continue;
        }
        let mut outcomes = fit(call(chunk).await, n);
        let later: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, ProfileOutcome::Error { retry_in: Some(d), .. } if *d <= MAX_RETRY_WAIT))
            .map(|(i, _)| i)
            .collect();
        if !later.is_empty() {
            let wait = later
                .iter()
                .filter_map(|&i| match &outcomes[i] {
                    ProfileOutcome::Error { retry_in, .. } => *retry_in,
                    _ => None,
                })
                .max()
                .unwrap_or_default();
            out.info(&format!(
                "the destination asked to retry {} profile(s) in {:.1}s; waiting",
                later.len(),
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
            let retry: Vec<T> = later.iter().map(|&i| again(base + i)).collect();
            let second = fit(call(retry).await, later.len());
            for (&i, o) in later.iter().zip(second) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_retry_in_answer_is_waited_for_and_sent_once_more() {
        let calls = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let items = ["a", "b"];
        let outcomes = send(
            items.to_vec(),
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
            |k| items[k],
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

    /// The retry of an item in a later batch is built from its place in
    /// the whole list (`again(k)`), not in its batch.
    #[tokio::test]
    async fn a_retry_in_a_later_batch_sends_that_item_again() {
        let sent = std::sync::Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let items = ["a", "b", "c", "d", "e"];
        let outcomes = send(
            items.iter().map(|i| i.to_string()).collect(),
            2,
            &Output::new(),
            &stop,
            |batch: Vec<String>| {
                let first = !sent.lock().unwrap().contains(&"d".to_string());
                sent.lock().unwrap().extend(batch.clone());
                async move {
                    batch
                        .iter()
                        .map(|i| match (first, i.as_str()) {
                            (true, "d") => ProfileOutcome::Error {
                                reason: "slow down".into(),
                                retry_in: Some(Duration::from_millis(1)),
                            },
                            _ => ProfileOutcome::Ok { id: i.clone() },
                        })
                        .collect()
                }
            },
            |k| items[k].to_string(),
        )
        .await;
        assert_eq!(*sent.lock().unwrap(), ["a", "b", "c", "d", "d", "e"]);
        assert_eq!(
            outcomes,
            items
                .iter()
                .map(|i| ProfileOutcome::Ok { id: i.to_string() })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_chunk_is_five_batches_of_at_most_a_thousand_profiles_or_one_batch() {
        assert_eq!(chunk_size(1), 5);
        assert_eq!(chunk_size(100), 500);
        assert_eq!(chunk_size(250), 1_000);
        assert_eq!(chunk_size(1_000), 1_000);
        assert_eq!(chunk_size(5_000), 5_000);
        assert_eq!(chunk_size(0), 1);
    }

    #[test]
    fn short_answers_leave_the_rest_failed() {
        let got = fit(vec![ProfileOutcome::Ok { id: "a".into() }], 2);
        assert!(
            matches!(&got[1], ProfileOutcome::Error { reason, .. } if reason.contains("1 outcomes for 2"))
        );
    }
}
