//! One scenario harness for the SaaS connectors (hubspot, intercom, klaviyo,
//! voucherify, segment): the scenarios every vendor goes through — an export
//! that creates, updates, clears, adds to and removes from groups and
//! deletes; a 429 waited out — are run and checked here once, and each
//! vendor's test supplies only what is the vendor's: the requests each step
//! must send (wiremock mocks with their expectations) and the answers.
//!
//! A step's mocks are mounted for that step alone and verified when it
//! ends, so a request sent in the wrong run fails the test; anything not
//! mocked fails it too (the servers are strict, see [`super::mock`]).

use serde_json::Value;
use wiremock::{Mock, MockServer};

use super::{Folder, Run};

/// What a scenario needs to know of the vendor's connector.
pub struct Vendor<'a> {
    /// The connector folder (relative to the test folder) the runs use:
    /// `--to` of an export, `-C` of a single action.
    pub folder: &'a str,
    /// Canary credentials in its account: no run may print them.
    pub secrets: &'a [&'a str],
}

/// A vendor's own check of a run.
pub type Check<'a> = Box<dyn Fn(&Run) + 'a>;

/// One export run of a scenario.
pub struct Step<'a> {
    /// The input file: its name and its profiles (JSON lines).
    pub input: (&'a str, &'a str),
    /// Extra arguments: `--dry-run`, `--yes`.
    pub flags: &'a [&'a str],
    /// The requests this run must send, each mock with its expectation.
    pub requests: Vec<Mock>,
    /// Fields the run's JSON summary must have, with their values (the run
    /// must succeed); `Value::Null` checks no summary.
    pub summary: Value,
    /// What else the vendor checks of the run (a snapshot, a field).
    pub check: Option<Check<'a>>,
}

impl<'a> Step<'a> {
    /// An export of `name` holding `profiles`, expecting `requests`.
    pub fn export(name: &'a str, profiles: &'a str, requests: Vec<Mock>) -> Step<'a> {
        Step {
            input: (name, profiles),
            flags: &[],
            requests,
            summary: Value::Null,
            check: None,
        }
    }

    pub fn flags(mut self, flags: &'a [&'a str]) -> Step<'a> {
        self.flags = flags;
        self
    }

    /// The summary must have these fields with these values.
    pub fn summary(mut self, fields: Value) -> Step<'a> {
        self.summary = fields;
        self
    }

    pub fn check(mut self, check: impl Fn(&Run) + 'a) -> Step<'a> {
        self.check = Some(Box::new(check));
        self
    }
}

/// The summary fields of an export step that sends: what it created,
/// updated, deleted, added to and removed from groups, with nothing
/// rejected and no error.
pub fn counted(created: u64, updated: u64, deleted: u64, added: u64, removed: u64) -> Value {
    serde_json::json!({"created": created, "updated": updated, "deleted": deleted,
        "groupsAdded": added, "groupsRemoved": removed, "rejected": 0, "errors": 0})
}

/// Run `steps` in turn as exports into `vendor`'s folder in `f`, against
/// `server`: each step's requests mounted for it alone, its secrets hidden,
/// its summary and checks met, its requests verified when it ends.
pub async fn export_scenario(
    f: &Folder,
    server: &MockServer,
    vendor: &Vendor<'_>,
    steps: Vec<Step<'_>>,
) {
    for (i, step) in steps.into_iter().enumerate() {
        let mut guards = Vec::new();
        for mock in step.requests {
            guards.push(mock.mount_as_scoped(server).await);
        }
        let (name, profiles) = step.input;
        f.write(name, profiles);
        let mut args = vec!["export", "--to", vendor.folder, "--input", name];
        args.extend_from_slice(step.flags);
        let run = f.run(&args);
        run.hides(vendor.secrets, &format!("a secret (step {i}: {args:?})"));
        if let Value::Object(fields) = &step.summary {
            let summary = run.ok_json();
            for (field, want) in fields {
                assert_eq!(
                    &summary[field],
                    want,
                    "step {i} ({args:?}): {field} in\n{}",
                    run.render()
                );
            }
        }
        if let Some(check) = &step.check {
            check(&run);
        }
        // Verified here (a guard panics on drop unless its expectation held).
        drop(guards);
    }
}

/// A single action that meets a 429 and must wait it out: `requests` (the
/// 429s and the answer after them) are mounted, `ferry -vv ARGS` runs in
/// `vendor`'s folder on the engine's virtual clock, and the run must show the
/// 429, keep `header` masked in the debug log (`Authorization: ***`), hide
/// the secrets and succeed. Answers the run and the retry waits it asked
/// for, for the vendor to check against its headers.
pub async fn a_429_waited_out(
    f: &Folder,
    server: &MockServer,
    vendor: &Vendor<'_>,
    requests: Vec<Mock>,
    args: &[&str],
    header: &str,
) -> (Run, Vec<std::time::Duration>) {
    for mock in requests {
        mock.mount(server).await;
    }
    let mut all = vec!["-vv", "-C", vendor.folder];
    all.extend_from_slice(args);
    let (run, waits) = f.run_on_virtual_clock(&all);
    run.hides(vendor.secrets, "a secret in the -vv log");
    assert!(run.stderr.contains(header), "{}", run.render());
    assert!(run.stderr.contains("-> 429"), "{}", run.render());
    assert_eq!(run.code, 0, "{}", run.render());
    (run, waits.of("retry"))
}

/// The single actions and the import a dry run previews: what is typed.
pub struct Previews<'a> {
    /// `insert --dry-run --value VALUE`.
    pub insert: &'a str,
    /// `patch --dry-run --id ID --value VALUE`.
    pub patch: (&'a str, &'a str),
    /// `delete --dry-run --id ID`, where the vendor deletes.
    pub delete: Option<&'a str>,
    /// The JSON lines of `import --from jsonl:in.jsonl --to . --dry-run`.
    pub import: &'a str,
}

/// Dry runs of the single actions and of an import into the vendor's
/// connector in `f` (its account at the top): each hides the secrets and is
/// handed to `snap` with its action (`insert`, `patch`, `delete`, `import`),
/// for the vendor's snapshot of the requests it previews.
pub fn dry_run_previews(
    f: &Folder,
    vendor: &Vendor<'_>,
    previews: &Previews<'_>,
    snap: impl Fn(&str, &Run),
) {
    let (id, patch) = previews.patch;
    let mut runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "insert",
            vec!["insert", "--dry-run", "--value", previews.insert],
        ),
        (
            "patch",
            vec!["patch", "--dry-run", "--id", id, "--value", patch],
        ),
    ];
    if let Some(id) = previews.delete {
        runs.push(("delete", vec!["delete", "--dry-run", "--id", id]));
    }
    for (action, args) in runs {
        let run = f.run(&args);
        run.hides(vendor.secrets, &format!("a secret in the {action} preview"));
        snap(action, &run);
    }
    f.write("in.jsonl", previews.import);
    let run = f.run_line("import --from jsonl:in.jsonl --to . --dry-run");
    run.hides(vendor.secrets, "a secret in the import preview");
    snap("import", &run);
}

/// A vendor that reads by cursor or timestamp cannot start an import at an
/// offset without a checkpoint: a usage error naming the connector `code`.
pub fn an_offset_without_a_checkpoint_is_refused(f: &Folder, vendor: &Vendor<'_>, code: &str) {
    let run = f.run_line("import --from . --to jsonl:out.jsonl --offset 3");
    run.hides(vendor.secrets, "a secret");
    assert_eq!(run.code, 2, "{}", run.render());
    let message = format!("connector {code} cannot start reading at offset 3 without a checkpoint");
    assert!(run.stderr.contains(&message), "{}", run.render());
}

/// An import of all the vendor lists, two records a batch, into out.jsonl:
/// it pages to the end of the source and writes the records in order, whose
/// `field` values are `want`.
pub fn import_reads_to_the_end(f: &Folder, vendor: &Vendor<'_>, field: &str, want: &[&str]) {
    let run = f.run_line("import --from . --to jsonl:out.jsonl --batch-size 2");
    run.hides(vendor.secrets, "a secret");
    let summary = run.ok_json();
    assert_eq!(summary["written"], want.len(), "{}", run.render());
    assert_eq!(summary["endOfSource"], true);
    assert_eq!(super::jsonl_field(&f.read("out.jsonl"), field), want);
}

/// An import whose listing goes round (a cursor or next page seen before)
/// fails with `message` instead of reading forever.
pub fn an_import_stops_a_loop(f: &Folder, vendor: &Vendor<'_>, message: &str) {
    let run = f.run_line("import --from . --to jsonl:out.jsonl --batch-size 1");
    run.hides(vendor.secrets, "a secret");
    assert_eq!(run.code, 1, "{}", run.render());
    assert!(run.stderr.contains(message), "{}", run.render());
}

/// An import from in.jsonl into the vendor where some records are refused
/// (by ferry before sending, or by the vendor in a partial batch answer):
/// exit 3, `written` counted, and `rejected` records in rejects.jsonl,
/// answered in order for the vendor to check their reasons.
pub fn import_with_refusals(
    f: &Folder,
    vendor: &Vendor<'_>,
    written: u64,
    rejected: usize,
) -> Vec<Value> {
    let run = f.run_line("import --from jsonl:in.jsonl --to . --rejects rejects.jsonl");
    run.hides(vendor.secrets, "a secret");
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["written"], written, "{}", run.render());
    assert_eq!(summary["rejected"]["total"], rejected, "{}", run.render());
    let rejects: Vec<Value> = (f.read("rejects.jsonl").lines())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(rejects.len(), rejected, "{rejects:?}");
    rejects
}
