//! `ferry insert`: create a record and print its id and the stored record.

use anyhow::Result;

use super::write::{self, DryRun};
use super::Done;
use crate::connector::WriteOp;
use crate::ctx::Ctx;

/// Create a record
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry insert --value '{\"email\": \"ada@example.com\", \"name\": \"Ada\"}'\n  ferry insert --value @customer.json\n  ferry insert --value '{\"email\": \"ada@example.com\"}' --dry-run"
)]
pub struct Args {
    /// The record as JSON, or @FILE to read it from a file [default: "insert"."value" in in.json]
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
    let value = write::value(ctx, &ctx.inputs()?, "insert", args.value)?;
    write::write(ctx, WriteOp::Insert(value), args.dry_run).await
}
