//! What an import needs before its first batch, opened once per run: both
//! connectors (checked for the capabilities an import uses), the batch
//! size and concurrency, the map and the validator, the checkpoint and
//! rejects paths, and whether records can pass through as JSON text.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::ImportPlan;
use crate::connector::{Action, Connector};
use crate::ctx::Ctx;
use crate::engine::checkpoint;
use crate::engine::mapping::{Mapping, Source, Validator};
use crate::error::usage;

/// What the pipeline needs, opened once per run (its attempts share it).
pub(super) struct Setup {
    pub(super) source: Arc<dyn Connector>,
    pub(super) dest: Arc<dyn Connector>,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) mapping: Arc<Mapping>,
    pub(super) validator: Arc<Validator>,
    pub(super) batch_size: usize,
    pub(super) concurrency: usize,
    pub(super) state: PathBuf,
    pub(super) rejects: PathBuf,
    /// Records pass through as the source's JSON text
    /// ([`crate::connector::raw`]).
    pub(super) raw: bool,
    /// How many values set to null this invocation has named so far.
    pub(super) warned: std::sync::atomic::AtomicUsize,
}

/// Values set to null named one by one on stderr, unless `-v` names all.
const WARN_LINES: usize = 20;

/// Name the records whose values validation set to null: every one with
/// `-v`, else the first [`WARN_LINES`] of the invocation and then one line
/// saying the others are only counted (a migration with a bad field in
/// every record would otherwise bury the progress and the summary).
pub(super) fn show_warnings(setup: &Setup, ctx: &Ctx, lines: &[String]) {
    use std::sync::atomic::Ordering;
    let all = ctx.out.verbosity() >= crate::output::Verbosity::Verbose;
    for line in lines {
        let n = setup.warned.fetch_add(1, Ordering::Relaxed);
        if all || n < WARN_LINES {
            ctx.out.warn(line);
        } else if n == WARN_LINES {
            ctx.out.warn(&format!(
                "more values were set to null than the {WARN_LINES} named above; the summary counts every one under warnings.byReason, and -v names each record"
            ));
        }
    }
}

/// Open both connectors and work out sizes, paths, the map and the fields.
pub(super) async fn setup(plan: &ImportPlan, ctx: &Ctx) -> Result<Setup> {
    plan.from_target.must_exist(&plan.from)?;
    let source: Arc<dyn Connector> = Arc::from(plan.from_target.open(ctx, &plan.from)?);
    let dest: Arc<dyn Connector> = Arc::from(plan.to_target.open(ctx, &plan.to)?);
    if !source.spec().can(Action::ReadPage) {
        let code = source.spec().code;
        return Err(crate::error::unsupported(code, "be an import source (read pages)").into());
    }
    if !dest.spec().can(Action::UpsertBatch) {
        let code = dest.spec().code;
        return Err(
            crate::error::unsupported(code, "be an import destination (batch upsert)").into(),
        );
    }
    let from = plan.from_target.canonical();
    let to = plan.to_target.canonical();
    let max = dest.spec().max_batch_size.max(1);
    let batch_size = match plan.batch_size {
        Some(n) if n > max => {
            return Err(usage(format!(
                "--batch-size {n} is more than connector {} accepts at once ({max})",
                dest.spec().code
            ))
            .hint(format!("pass --batch-size {max} or less"))
            .into())
        }
        Some(n) => n,
        None => max,
    };
    let concurrency = plan.concurrency.unwrap_or(dest.spec().parallelism).max(1);
    let id_field = dest.id_field().to_string();
    let entries = match &plan.map {
        Some(file) => Mapping::parse_map(crate::config::json::read_file(file)?, file)?,
        None => Vec::new(),
    };
    let mapping = Mapping {
        entries,
        id_from: plan.id_field.as_deref().map(Source::path),
        id_field: id_field.clone(),
    };
    let fields = dest.fields().await?;
    let validator = Validator::new(&id_field, fields);
    let state = plan
        .state
        .clone()
        .unwrap_or_else(|| checkpoint::default_path(&ctx.folder, &from, &to));
    let rejects = plan
        .rejects
        .clone()
        .unwrap_or_else(|| checkpoint::default_rejects_path(&ctx.folder, &from, &to));
    // Passing records through unparsed is worth it only when both ends
    // speak JSON text natively and nothing would change a record.
    let raw = mapping.is_identity()
        && validator.checks_only_a_text_id()
        && source.reads_raw()
        && dest.writes_raw();
    ctx.out.verbose(&format!(
        "import {} -> {}: batches of {batch_size}, {concurrency} at once, checkpoint {}{}",
        plan.from,
        plan.to,
        state.display(),
        if raw {
            "; records pass through as JSON text"
        } else {
            ""
        }
    ));
    Ok(Setup {
        source,
        dest,
        from,
        to,
        mapping: Arc::new(mapping),
        validator: Arc::new(validator),
        batch_size,
        concurrency,
        state,
        rejects,
        raw,
        warned: Default::default(),
    })
}
