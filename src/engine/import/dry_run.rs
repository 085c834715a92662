//! `ferry import --dry-run`: read the first batch as a run would (from the
//! same start, through the same map and validation) and answer what the
//! destination would receive and what would be rejected. Nothing is
//! written, not even a checkpoint.

use std::sync::Arc;

use anyhow::Result;

use super::batch::read_batch;
use super::report::DryRunReport;
use super::setup::{show_warnings, Setup};
use super::{ImportPlan, Start};
use crate::connector::raw::PlainIds;
use crate::connector::{Position, WriteOp};
use crate::ctx::Ctx;
use crate::engine::checkpoint::Checkpoint;
use crate::engine::read_ahead::PageReader;
use crate::error::usage;

/// `--dry-run`: the first batch as the destination would receive it, and
/// what validation would reject. Nothing is written, not even a checkpoint.
pub(super) async fn dry_run(plan: &ImportPlan, setup: &Setup, ctx: &Ctx) -> Result<DryRunReport> {
    let mut reader = PageReader::new(Arc::clone(&setup.source), false);
    let mut pos = match plan.start {
        Start::Resume => match Checkpoint::load(&setup.state)? {
            Some(cp) => {
                let (from, skip) = cp.resume_from();
                reader = reader.skipping_before(skip);
                from
            }
            None => {
                return Err(usage(format!(
                    "there is no checkpoint to resume at {}",
                    setup.state.display()
                ))
                .into())
            }
        },
        Start::Offset(n) => Position::at_offset(n),
        Start::Beginning => Position::start(),
    };
    let mut left = plan.limit.unwrap_or(u64::MAX);
    let batch = read_batch(
        &mut reader,
        &mut pos,
        setup.batch_size,
        &mut left,
        &setup.mapping,
        &setup.validator,
        &PlainIds::new(&setup.mapping.id_field),
    )
    .await?;
    show_warnings(setup, ctx, &batch.warned);
    let requests = setup
        .dest
        .preview(&WriteOp::UpsertBatch(batch.records.into_records()?))?;
    Ok(DryRunReport {
        read: batch.counts.read,
        requests,
        rejected: batch.rejects,
        warnings: batch.counts.warnings_by_reason,
    })
}
