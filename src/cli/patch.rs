//! `ferry patch`: change some fields of a record.

use anyhow::Result;

use super::write::{self, DryRun};
use super::Done;
use crate::connector::WriteOp;
use crate::ctx::Ctx;

/// Change some fields of a record
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry patch --id cus_001 --value '{\"name\": \"Ada L.\"}'\n  ferry patch --id cus_001 --value @changes.json --dry-run"
)]
pub struct Args {
    /// The record's id [default: "patch"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
    /// The fields to change as JSON, or @FILE [default: "patch"."value" in in.json]
    #[arg(long, value_name = "JSON|@FILE")]
    value: Option<String>,
    #[command(flatten)]
    dry_run: DryRun,
    #[command(flatten)]
    pub recording: super::RecordArgs,
    #[command(flatten)]
    pub case: super::CaseArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("patch", "id", "--id ID", args.id)?;
    let value = write::value(ctx, &inputs, "patch", args.value)?;
    write::write(ctx, WriteOp::Patch { id, value }, args.dry_run).await
}
