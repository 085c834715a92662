//! `ferry export`: sync profiles and their group memberships to a
//! destination, sending only what changed since the last successful run.
//! The flags become an [`ExportPlan`] here; `engine::export` runs it, and
//! its report becomes the JSON summary and the exit status here, where the
//! question before a mass delete is asked too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};

use super::prompt::Questions;
use super::Done;
use crate::ctx::Ctx;
use crate::engine::export::diff::Deletes;
use crate::engine::export::{
    DeletesOverLimit, DryRunReport, ExportPlan, ExportReport, Problem, ProblemKind, ProfilesFrom,
    RunReport,
};
use crate::engine::target::Target;
use crate::error::{failed, usage, Failure, Kind};
use crate::output::progress;
use crate::output::Verbosity;

const AFTER_HELP: &str =
    "Profiles: {\"id\", \"properties\": {...}, \"groups\": [...], \"toDelete\"?: true}
from the global --input FILE (for export it names the profiles file: JSON lines,
a JSON array, or CSV with an id column, one column per property, a groups column
split on ; or | and an optional toDelete column), from --from TARGET (any source
connector), or else from the \"export\" section of in.json.
State is kept per destination in DIR/.ferry/export-<hash>.db.

Examples:
  ferry export --to sqlite:crm.db --input profiles.jsonl
  ferry export --to crm/ --input profiles.csv --dry-run
  ferry export --to sqlite:crm.db --from jsonl:p.jsonl --deletes delete --yes
  ferry export --to sqlite:crm.db --input profiles.json --errors problems.jsonl";

/// Sync profiles and their group memberships to a destination, sending only what changed
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// The destination: a connector folder, an account file, or csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE]
    #[arg(long, value_name = "TARGET")]
    to: String,
    /// Read the profiles from a source connector (same TARGET forms as --to) instead of a file
    #[arg(long, value_name = "TARGET")]
    from: Option<String>,
    /// Profiles per destination call [default: the destination's largest batch; at most 100 for a remote one]
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// What to do with exported profiles absent from the input: leave them, clear their properties and groups, or delete them
    #[arg(long, value_enum, default_value = "none", value_name = "MODE")]
    deletes: DeletesArg,
    /// Ask (or fail without a terminal) before deleting or clearing more than N profiles [default: 10% of the exported profiles, rounded up]
    #[arg(long, value_name = "N")]
    max_deletes: Option<u64>,
    /// Resend every property and membership, not only what changed (clears and group removals still come from the state)
    #[arg(long)]
    full: bool,
    /// Send nothing: print the predicted counts and the first requests
    #[arg(long)]
    dry_run: bool,
    /// Write one JSON line per problem profile (id, level, kind, message) to FILE
    #[arg(long, value_name = "FILE")]
    errors: Option<PathBuf>,
    /// Go ahead with more deletes or clears than --max-deletes without asking
    #[arg(long, short = 'y')]
    yes: bool,
    #[command(flatten)]
    pub recording: super::RecordArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DeletesArg {
    None,
    Clear,
    Delete,
}

impl Args {
    /// The typed plan; `input` is the global `--input FILE`.
    fn plan(self, input: Option<PathBuf>, cwd: &Path) -> Result<ExportPlan> {
        let from = match (input, self.from) {
            (Some(_), Some(_)) => {
                return Err(usage("--input and --from both name the profiles")
                    .hint("pass one: --input FILE for a file, --from TARGET for a source connector")
                    .into())
            }
            (Some(file), None) => ProfilesFrom::File(file),
            (None, Some(t)) => ProfilesFrom::Source(Target::parse(&t, cwd)?),
            (None, None) => ProfilesFrom::Section,
        };
        if self.batch_size == Some(0) {
            return Err(usage("--batch-size 0 is out of range: a batch holds 1 profile or more")
                .hint("give --batch-size N with N from 1 to the destination's maxBatchSize (`ferry connectors NAME` shows it), or leave it out")
                .into());
        }
        Ok(ExportPlan {
            to: Target::parse(&self.to, cwd)?,
            from,
            batch_size: self.batch_size,
            deletes: match self.deletes {
                DeletesArg::None => Deletes::None,
                DeletesArg::Clear => Deletes::Clear,
                DeletesArg::Delete => Deletes::Delete,
            },
            max_deletes: self.max_deletes,
            full: self.full,
            dry_run: self.dry_run,
            errors: self.errors,
            yes: self.yes,
        })
    }
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let input = ctx
        .input_file
        .as_ref()
        .map(|f| crate::config::resolve(&ctx.cwd, f));
    let plan = args.plan(input, &ctx.cwd)?;
    // Memory flat however many chunks the run sends (crate::memory).
    crate::memory::return_freed_memory_soon();
    let progress = progress::for_stderr(
        ctx.stderr_tty,
        ctx.out.verbosity() == Verbosity::Quiet,
        ctx.http_stats.clone(),
    );
    let mut confirm = |over: &DeletesOverLimit| confirm_deletes(ctx, over);
    let code = match crate::engine::export::run(ctx, plan, progress.as_ref(), &mut confirm).await? {
        ExportReport::DryRun(dry) => dry_run(ctx, &dry)?,
        ExportReport::Run(run) => conclude(ctx, &run)?,
        ExportReport::Declined => {
            return Err(failed("stopped before deleting; nothing was sent")
                .hint("pass --max-deletes N or --yes, or fix the input")
                .into())
        }
    };
    Ok(Done::exit(code))
}

/// How many of the profiles a mass delete would delete or clear are named
/// before the question.
const NAMED_DELETES: usize = 10;

/// Stop before a mass delete unless the user agrees on a terminal: the
/// first profiles it would delete or clear are listed, and the answer is
/// typed (y or the count, then Enter), so a key pressed by habit, or typed
/// ahead for another program, never deletes anything.
fn confirm_deletes(ctx: &Ctx, over: &DeletesOverLimit) -> Result<bool> {
    let what = format!(
        "this run would delete or clear {} profiles, more than --max-deletes {} ({} profiles exported so far)",
        over.count, over.limit, over.exported
    );
    ctx.out.warn(&format!("{what}:"));
    for doomed in over.profiles.iter().take(NAMED_DELETES) {
        let action = if doomed.delete { "delete" } else { "clear" };
        if doomed.key.is_empty() || doomed.key == doomed.id {
            ctx.out.info(&format!("  {action} {}", doomed.id));
        } else {
            ctx.out
                .info(&format!("  {action} {} ({})", doomed.id, doomed.key));
        }
    }
    let unnamed = over.count.saturating_sub(NAMED_DELETES as u64);
    if unnamed > 0 {
        ctx.out.info(&format!("  and {unnamed} more"));
    }
    if !ctx.interactive() {
        return Err(failed(format!(
            "stopped before deleting or clearing {} profiles; nothing was sent",
            over.count
        ))
        .hint("check that the input is complete; pass --yes to go ahead, or --max-deletes N to raise the limit (preview with --dry-run)")
        .into());
    }
    let questions = Questions::start(
        &ctx.out,
        "stopped before deleting; nothing was sent",
        "run the same command again to answer, or pass --yes to go ahead without asking",
    )?;
    let count = over.count.to_string();
    let answer: String = questions.answer(
        dialoguer::Input::new()
            .with_prompt(format!(
                "Delete or clear these {count} profiles? Type y or {count}, then Enter, to go ahead; anything else stops"
            ))
            .allow_empty(true)
            .interact_text(),
    )?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes" || answer == count)
}

/// The problem profiles counted by reason, one line per outcome: invalid
/// (fix the input), failed (sent again next run) and skipped (by design,
/// never retried), each ending with where every profile is listed, and
/// each with the kind of its first problem (a skip is no warning).
fn summary_by_reason(run: &RunReport) -> Vec<(ProblemKind, String)> {
    /// How many reasons a line names; the rest are counted together.
    const REASONS: usize = 5;
    let listed = match &run.errors_file {
        Some(path) => format!("see {}", path.display()),
        None => "pass --errors FILE to list each one".to_string(),
    };
    let title = |kind: ProblemKind, n: usize| {
        let profiles = if n == 1 { "profile" } else { "profiles" };
        match kind {
            ProblemKind::Invalid => format!("{n} invalid {profiles} not exported"),
            ProblemKind::Skipped => format!("skipped {n} {profiles} (by design, not retried)"),
            _ => format!("{n} {profiles} failed (sent again next run)"),
        }
    };
    let outcomes: [&[ProblemKind]; 3] = [
        &[ProblemKind::Invalid],
        &[ProblemKind::Rejected, ProblemKind::Error],
        &[ProblemKind::Skipped],
    ];
    let mut lines = Vec::new();
    for kinds in outcomes {
        // Reasons in order of first appearance, then the most frequent first.
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for p in run.problems.iter().filter(|p| kinds.contains(&p.kind)) {
            match counts.iter_mut().find(|(r, _)| *r == p.reason) {
                Some((_, n)) => *n += 1,
                None => counts.push((&p.reason, 1)),
            }
        }
        if counts.is_empty() {
            continue;
        }
        counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let total: usize = counts.iter().map(|(_, n)| n).sum();
        let mut parts: Vec<String> = (counts.iter().take(REASONS))
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        if counts.len() > REASONS {
            let rest: usize = counts[REASONS..].iter().map(|(_, n)| n).sum();
            parts.push(format!(
                "{rest} for {} other reasons",
                counts.len() - REASONS
            ));
        }
        let line = format!("{}: {}; {listed}", title(kinds[0], total), parts.join(", "));
        lines.push((kinds[0], line));
    }
    lines
}

/// The dry run's JSON; exit 3 when some profiles are invalid.
fn dry_run(ctx: &Ctx, dry: &DryRunReport) -> Result<ExitCode> {
    let p = &dry.predicted;
    let mut report = json!({
        "dryRun": true,
        "destination": dry.destination,
        "state": dry.state.display().to_string(),
        "predicted": {
            "created": p.created,
            "updated": p.updated,
            "deleted": p.deleted,
            "unchanged": p.unchanged,
            "groupsAdded": p.groups_added,
            "groupsRemoved": p.groups_removed,
            "invalid": p.invalid,
            "skipped": p.skipped,
        },
        "requests": dry.requests,
    });
    if let Some(over) = &dry.over_limit {
        report["deletesOverLimit"] = json!(format!(
            "{} deletes or clears, more than --max-deletes {}: a real run asks first, or needs --yes",
            over.count, over.limit
        ));
    }
    if !dry.invalid.is_empty() {
        let invalid: Vec<Value> = dry
            .invalid
            .iter()
            .map(|i| json!({"id": i.id, "message": i.message}))
            .collect();
        report["invalidProfiles"] = json!(invalid);
    }
    ctx.out.result(&report)?;
    Ok(ExitCode::from(if p.invalid > 0 { 3 } else { 0 }))
}

/// How many failed profiles are named one by one on stderr; the summary
/// by reason counts them all.
const NAMED_PROBLEMS: usize = 10;

/// Name the first failed profiles on stderr, summarise every problem
/// profile by reason, print the summary, and pick the exit status: 0, 3
/// when some profiles failed, 130 (an error) when interrupted.
fn conclude(ctx: &Ctx, run: &RunReport) -> Result<ExitCode> {
    let failed: Vec<&Problem> = (run.problems.iter())
        .filter(|p| p.kind != ProblemKind::Skipped)
        .collect();
    for p in failed.iter().take(NAMED_PROBLEMS) {
        ctx.out.warn(&format!(
            "profile {}: {} ({})",
            p.id,
            p.message,
            p.kind.as_str()
        ));
    }
    for (kind, line) in summary_by_reason(run) {
        if kind == ProblemKind::Skipped {
            ctx.out.info(&line);
        } else {
            ctx.out.warn(&line);
        }
    }
    let elapsed = run.elapsed.as_secs_f64();
    let sent = &run.sent;
    let mut summary = json!({
        "created": sent.created,
        "updated": sent.updated,
        "deleted": sent.deleted,
        "unchanged": run.unchanged,
        "groupsAdded": sent.groups_added,
        "groupsRemoved": sent.groups_removed,
        "invalid": run.invalid,
        "rejected": run.rejected,
        "errors": run.errors,
        "skipped": run.skipped,
        "profiles": run.profiles,
        "elapsedSecs": (elapsed * 1000.0).round() / 1000.0,
        "profilesPerSecond": if elapsed > 0.0 { (run.profiles as f64 / elapsed).round() } else { 0.0 },
        "destination": run.destination,
        "state": run.state.display().to_string(),
    });
    if let Some(not_sent) = run.not_sent {
        summary["notSent"] = json!(not_sent);
    }
    if let Some(path) = &run.errors_file {
        summary["errorsFile"] = json!(path.display().to_string());
    }
    ctx.out.result(&summary)?;
    super::say_rate_limit_waits(ctx, run.elapsed);
    if run.not_sent.is_some() {
        return Err(Failure::new(
            Kind::Interrupted,
            "interrupted; what was sent is saved in the export state",
        )
        .hint("run the same command again to send the rest")
        .into());
    }
    Ok(ExitCode::from(if run.failed() > 0 { 3 } else { 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        T::try_parse_from(std::iter::once("export").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_become_a_plan() {
        let plan = parse(&[
            "--to",
            "sqlite:crm.db#c",
            "--deletes",
            "clear",
            "--max-deletes",
            "5",
        ])
        .plan(Some("p.csv".into()), Path::new("/w"))
        .unwrap();
        assert_eq!(plan.from, ProfilesFrom::File("p.csv".into()));
        assert_eq!(plan.deletes, Deletes::Clear);
        assert_eq!(plan.max_deletes, Some(5));
        let plan = parse(&["--to", "crm", "--from", "jsonl:p.jsonl"])
            .plan(None, Path::new("/w"))
            .unwrap();
        assert!(matches!(plan.from, ProfilesFrom::Source(_)));
        assert_eq!(
            parse(&["--to", "crm"])
                .plan(None, Path::new("/w"))
                .unwrap()
                .from,
            ProfilesFrom::Section
        );
    }

    #[test]
    fn input_and_from_together_are_refused() {
        let err = parse(&["--to", "crm", "--from", "csv:a.csv"])
            .plan(Some("p.jsonl".into()), Path::new("/w"))
            .unwrap_err();
        assert!(err.to_string().contains("both name the profiles"), "{err}");
    }
}
