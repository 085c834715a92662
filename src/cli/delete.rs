//! `ferry delete`: delete a record by id.

use anyhow::Result;

use super::write::{self, DryRun};
use super::Done;
use crate::connector::WriteOp;
use crate::ctx::Ctx;

/// Delete a record by its id
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry delete --id cus_001\n  ferry delete --id cus_001 --dry-run"
)]
pub struct Args {
    /// The record's id [default: "delete"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    dry_run: DryRun,
    #[command(flatten)]
    pub recording: super::RecordArgs,
    #[command(flatten)]
    pub case: super::CaseArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("delete", "id", "--id ID", args.id)?;
    write::write(ctx, WriteOp::Delete { id }, args.dry_run).await
}
