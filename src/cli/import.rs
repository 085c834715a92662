//! `ferry import`: flags to an [`ImportPlan`], then the import engine; its
//! report becomes the JSON summary, the resume command and the exit status
//! here, and the question whether to resume a stopped run is asked here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};

use super::Done;
use crate::ctx::Ctx;
use crate::engine::import::{Ending, ImportPlan, ImportReport, RunReport, Start, Stopped};
use crate::engine::target::Target;
use crate::error::{find_failure, Failure, Kind};
use crate::output::progress;
use crate::output::Verbosity;
use crate::range::At;

/// The largest `--offset`: a million billion records.
const MAX_OFFSET: u64 = 1_000_000_000_000_000;

const EXAMPLES: &str = "Examples:
  ferry import --from jsonl:customers.jsonl --to sqlite:ferry.db
  ferry import --from csv:old.csv --to ./crm --map map.json --id-field email
  ferry import --from sqlite:crm.db#people --to jsonl:p.jsonl --batch-size 500
  ferry import --from jsonl:customers.jsonl --to sqlite:ferry.db --resume

TARGET is a connector folder, an account file, or csv:PATH, jsonl:PATH,
sqlite:PATH[#TABLE]. A map file names each destination field's source:
  {\"email\": \"mail\", \"city\": \"/address/city\", \"notes\": null,
   \"origin\": {\"const\": \"import\"}}
(a field, a JSON pointer, null to drop it, or a constant; other fields pass
through by name).

Exit status: 0 done, 1 stopped (resume it), 2 bad usage, 3 done with rejects,
130 interrupted.";

/// Copy every record of a source into a destination, resumably
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Where to read records: a connector folder, an account file, or csv:PATH, jsonl:PATH, sqlite:PATH[#TABLE]
    #[arg(long, value_name = "TARGET")]
    from: String,
    /// Where to write them (same forms as --from), e.g. --to sqlite:ferry.db#customers
    #[arg(long, value_name = "TARGET")]
    to: String,
    /// Records per batch, e.g. --batch-size 500 [default: the destination's maximum]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_size: Option<u64>,
    /// Skip the first N records of the source, e.g. --offset 10000
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    offset: Option<u64>,
    /// Continue from the checkpoint of an earlier run of the same import
    #[arg(long)]
    resume: bool,
    /// Stop after reading N records, e.g. --limit 100
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// A JSON file naming each destination field's source, e.g. --map map.json
    #[arg(long, value_name = "FILE")]
    map: Option<PathBuf>,
    /// The source field or JSON pointer that becomes the destination's id, e.g. --id-field email or /ids/crm
    #[arg(long, value_name = "PATH")]
    id_field: Option<String>,
    /// Where to write rejected records as JSON lines [default: .ferry/rejects-HASH.jsonl in the folder]
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// The checkpoint file [default: .ferry/import-HASH.json in the folder, named for the two targets]
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Batches written at once, e.g. --concurrency 4 [default: the destination's parallelism]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: Option<u64>,
    /// Show what the first batch would send and what validation would reject; write nothing
    #[arg(long)]
    dry_run: bool,
    /// When a run stops on a terminal, resume once more without asking
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    pub recording: super::RecordArgs,
}

/// The most batches `--concurrency` may write at once.
const MAX_CONCURRENCY: u64 = 256;

impl Args {
    /// The typed plan; relative paths resolve against `cwd`. No I/O.
    pub fn plan(self, cwd: &Path) -> Result<ImportPlan> {
        let mut flags: Vec<(String, Option<String>)> = vec![
            ("--from".into(), Some(self.from.clone())),
            ("--to".into(), Some(self.to.clone())),
        ];
        let mut flag = |name: &str, value: Option<String>| flags.push((name.into(), value));
        let path_str = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        if let Some(n) = self.batch_size {
            flag("--batch-size", Some(n.to_string()));
        }
        if let Some(n) = self.limit {
            flag("--limit", Some(n.to_string()));
        }
        if let Some(m) = path_str(&self.map) {
            flag("--map", Some(m));
        }
        if let Some(i) = &self.id_field {
            flag("--id-field", Some(i.clone()));
        }
        if let Some(r) = path_str(&self.rejects) {
            flag("--rejects", Some(r));
        }
        if let Some(s) = path_str(&self.state) {
            flag("--state", Some(s));
        }
        if let Some(c) = self.concurrency {
            flag("--concurrency", Some(c.to_string()));
        }
        if let Some(n) = self.offset {
            // Offsets are added to; far beyond any source, and no overflow.
            crate::range::int(n, At::flag("--offset"), 0, MAX_OFFSET, "records")?;
        }
        let start = match (self.offset, self.resume) {
            (Some(n), _) => Start::Offset(n),
            (None, true) => Start::Resume,
            (None, false) => Start::Beginning,
        };
        if let Some(c) = self.concurrency {
            // A semaphore refuses more than a few billion permits; far
            // fewer batches in flight already swamp any destination.
            crate::range::int(c, At::flag("--concurrency"), 1, MAX_CONCURRENCY, "batches")?;
        }
        let resolve = |p: Option<PathBuf>| p.map(|p| crate::config::resolve(cwd, p));
        let to_usize = |n: Option<u64>| n.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        Ok(ImportPlan {
            from_target: Target::parse(&self.from, cwd)?,
            to_target: Target::parse(&self.to, cwd)?,
            from: self.from,
            to: self.to,
            batch_size: to_usize(self.batch_size),
            start,
            limit: self.limit,
            map: resolve(self.map),
            id_field: self.id_field.filter(|s| !s.is_empty()),
            rejects: resolve(self.rejects),
            state: resolve(self.state),
            concurrency: to_usize(self.concurrency),
            dry_run: self.dry_run,
            yes: self.yes,
            flags,
        })
    }
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let plan = args.plan(&ctx.cwd)?;
    let progress = progress::for_stderr(
        ctx.stderr_tty,
        ctx.out.verbosity() == Verbosity::Quiet,
        ctx.http_stats.clone(),
    );
    let mut confirm = |stopped: &Stopped<'_>| ask_resume(&plan, ctx, stopped);
    let code = match crate::engine::import::run(&plan, ctx, progress.as_ref(), &mut confirm).await?
    {
        ImportReport::DryRun(dry) => {
            ctx.out.result(&json!({
                "dryRun": true,
                "read": dry.read,
                "requests": dry.requests,
                "rejected": dry.rejected,
                "warnings": dry.warnings,
            }))?;
            ExitCode::SUCCESS
        }
        ImportReport::Run(run) => conclude(&plan, ctx, *run)?,
    };
    Ok(Done::exit(code))
}

/// On a terminal: say what failed and ask whether to try again now.
fn ask_resume(plan: &ImportPlan, ctx: &Ctx, stopped: &Stopped<'_>) -> Result<bool> {
    if !ctx.interactive() {
        return Ok(false);
    }
    ctx.out
        .warn(&format!("the import stopped: {:#}", stopped.error));
    if plan.yes {
        ctx.out.info("resuming once more (--yes)");
        return Ok(true);
    }
    // A prompt that cannot be answered (closed terminal, Ctrl-C) is a no:
    // the run then stops with the resume command, the cursor shown again
    // (a Ctrl-C in the prompt's raw mode may leave it hidden).
    let resume = dialoguer::Confirm::new()
        .with_prompt(format!("Resume now from offset {}?", stopped.offset))
        .default(true)
        .interact()
        .unwrap_or(false);
    let _ = dialoguer::console::Term::stderr().show_cursor();
    Ok(resume)
}

/// Print the run's one JSON summary on stdout and pick the exit status:
/// 0 done, 3 done with rejects; an interrupted or stopped run is an error
/// that names the exact resume command.
fn conclude(plan: &ImportPlan, ctx: &Ctx, run: RunReport) -> Result<ExitCode> {
    let status = match run.ending {
        Ending::Done => "done",
        Ending::Interrupted => "interrupted",
        Ending::Failed(_) => "stopped",
    };
    ctx.out.result(&summary(&run, status))?;
    super::say_rate_limit_waits(ctx, run.elapsed);
    let offset = run.checkpoint.position.offset;
    let resume = resume_command(
        plan,
        ctx,
        plan.limit.map(|l| l.saturating_sub(run.counts.read)),
    );
    match run.ending {
        Ending::Done => Ok(ExitCode::from(if run.counts.rejected > 0 { 3 } else { 0 })),
        Ending::Interrupted => Err(Failure::new(
            Kind::Interrupted,
            format!(
                "import interrupted; the checkpoint is saved at offset {offset} in {}",
                run.state.display()
            ),
        )
        .hint(format!("resume with: {resume}"))
        .into()),
        Ending::Failed(err) => {
            let cause = find_failure(&err);
            let kind = match cause.map(|f| f.kind) {
                Some(Kind::Usage) => Kind::Usage,
                _ => Kind::Failed,
            };
            // Refused before reading anything (an offset a cursor source
            // cannot start at): resuming would be refused the same way.
            if kind == Kind::Usage && run.counts.read == 0 {
                let stop = Failure::new(kind, format!("import could not start at offset {offset}"))
                    .hint(
                        cause.and_then(|f| f.hint.clone()).unwrap_or_else(|| {
                            "fix the cause and run the import again".to_string()
                        }),
                    );
                return Err(err.context(stop));
            }
            let stop = Failure::new(
                kind,
                format!(
                    "import stopped at offset {offset}; the checkpoint is saved in {}",
                    run.state.display()
                ),
            )
            .hint(match cause.and_then(|f| f.hint.as_deref()) {
                // The cause knows what to fix (a locked or full database...).
                Some(fix) => format!("{fix}; then resume with: {resume}"),
                None => format!("fix the cause, then resume with: {resume}"),
            });
            Err(err.context(stop))
        }
    }
}

/// The one JSON summary of a run.
fn summary(run: &RunReport, status: &str) -> Value {
    let counts = &run.counts;
    let elapsed = run.elapsed.as_secs_f64();
    let per_sec = if elapsed > 0.0 {
        counts.read as f64 / elapsed
    } else {
        0.0
    };
    json!({
        "status": status,
        "read": counts.read,
        "written": counts.written,
        "rejected": { "total": counts.rejected, "byReason": counts.rejected_by_reason },
        "warnings": { "total": counts.warnings, "byReason": counts.warnings_by_reason },
        "failed": counts.failed,
        "batches": counts.batches,
        "elapsedSecs": (elapsed * 1000.0).round() / 1000.0,
        "recordsPerSec": per_sec.round(),
        "offset": run.checkpoint.position.offset,
        "endOfSource": run.checkpoint.finished,
        "checkpoint": run.state.display().to_string(),
        "rejects": run.rejects.as_ref().map(|p| p.display().to_string()),
    })
}

/// The exact command that continues this import from its checkpoint.
pub fn resume_command(plan: &ImportPlan, ctx: &Ctx, limit_left: Option<u64>) -> String {
    let mut words: Vec<String> = vec!["ferry".into()];
    if ctx.folder != ctx.cwd {
        words.push("-C".into());
        words.push(crate::shell::quote_owned(&ctx.folder.display().to_string()));
    }
    words.push("import".into());
    for (flag, value) in &plan.flags {
        match flag.as_str() {
            "--offset" | "--resume" | "--dry-run" | "--yes" => continue,
            "--limit" => {
                if let Some(left) = limit_left {
                    words.push("--limit".into());
                    words.push(left.to_string());
                }
                continue;
            }
            _ => {}
        }
        words.push(flag.clone());
        if let Some(v) = value {
            words.push(crate::shell::quote_owned(v));
        }
    }
    words.push("--resume".into());
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn plan(args: &[&str]) -> Result<ImportPlan> {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all)?;
        cli.args.plan(Path::new("/here"))
    }

    #[test]
    fn a_minimal_plan_starts_at_the_beginning_with_defaults() {
        let p = plan(&["--from", "jsonl:a.jsonl", "--to", "sqlite:b.db#t"]).unwrap();
        assert_eq!(p.start, Start::Beginning);
        assert_eq!(p.batch_size, None);
        assert_eq!(p.concurrency, None);
        assert!(!p.dry_run);
        assert_eq!(
            p.to_target,
            Target::Shorthand {
                connector: "sqlite",
                path: PathBuf::from("/here/b.db"),
                table: Some("t".into())
            }
        );
    }

    #[test]
    fn every_flag_lands_in_the_plan() {
        let p = plan(&[
            "--from",
            "csv:a.csv",
            "--to",
            "dest",
            "--batch-size",
            "50",
            "--offset",
            "7",
            "--limit",
            "100",
            "--map",
            "m.json",
            "--id-field",
            "/ids/crm",
            "--rejects",
            "/tmp/r.jsonl",
            "--state",
            "cp.json",
            "--concurrency",
            "3",
            "--dry-run",
            "--yes",
        ])
        .unwrap();
        assert_eq!(p.start, Start::Offset(7));
        assert_eq!(p.batch_size, Some(50));
        assert_eq!(p.limit, Some(100));
        assert_eq!(p.map, Some(PathBuf::from("/here/m.json")));
        assert_eq!(p.id_field.as_deref(), Some("/ids/crm"));
        assert_eq!(p.rejects, Some(PathBuf::from("/tmp/r.jsonl")));
        assert_eq!(p.state, Some(PathBuf::from("/here/cp.json")));
        assert_eq!(p.concurrency, Some(3));
        assert!(p.dry_run && p.yes);
        assert_eq!(p.to_target, Target::Account(PathBuf::from("/here/dest")));
        // The resume command repeats the flags as typed.
        let typed: Vec<&str> = p.flags.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            typed,
            [
                "--from",
                "--to",
                "--batch-size",
                "--limit",
                "--map",
                "--id-field",
                "--rejects",
                "--state",
                "--concurrency"
            ]
        );
    }

    #[test]
    fn resume_is_a_start_and_conflicts_with_offset() {
        let p = plan(&["--from", "jsonl:a", "--to", "jsonl:b", "--resume"]).unwrap();
        assert_eq!(p.start, Start::Resume);
        assert!(
            plan(&["--from", "jsonl:a", "--to", "jsonl:b", "--resume", "--offset", "3"]).is_err()
        );
    }

    #[test]
    fn zero_sizes_and_bad_targets_are_refused_before_any_io() {
        assert!(plan(&["--from", "jsonl:a", "--to", "jsonl:b", "--batch-size", "0"]).is_err());
        assert!(plan(&["--from", "jsonl:a", "--to", "jsonl:b", "--concurrency", "0"]).is_err());
        assert!(plan(&["--from", "jsonl:a", "--to", "jsonl:b", "--limit", "0"]).is_err());
        assert!(plan(&["--from", "jsnl:a", "--to", "jsonl:b"]).is_err());
        assert!(plan(&["--to", "jsonl:b"]).is_err());
    }
}
