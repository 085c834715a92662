//! `ferry delete`: delete a record by id.

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::connector::WriteOp;
use crate::ctx::Ctx;

/// Delete a record by its id
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ferry delete --id cus_001\n  ferry delete --id cus_001 --dry-run"
)]
pub struct Args {
    /// The record's id [default: "delete"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
    /// Print the requests (or rows) that would be sent, secrets redacted, and send nothing
    #[arg(long)]
    dry_run: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("delete", "id", "--id ID", args.id)?;
    let connector = ctx.connector()?;
    if args.dry_run {
        return super::dry_run(connector.as_ref(), &WriteOp::Delete { id });
    }
    let _held = super::hold_file(ctx, connector.as_ref()).await?;
    connector.delete(&id).await?;
    Ok(Done::value(json!({ "id": id })))
}
