//! `ferry patch`: change some fields of a record.

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::config::input::parse_value_flag;
use crate::connector::WriteOp;
use crate::ctx::Ctx;

/// Change some fields of a record
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  ferry patch --id cus_001 --value '{\"name\": \"Ada L.\"}'")]
pub struct Args {
    /// The record's id [default: "patch"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
    /// The fields to change as JSON, or @FILE [default: "patch"."value" in in.json]
    #[arg(long, value_name = "JSON|@FILE")]
    value: Option<String>,
    /// Print the requests (or rows) that would be sent, secrets redacted, and send nothing
    #[arg(long)]
    dry_run: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("patch", "id", "--id ID", args.id)?;
    let flag = args.value.map(|v| parse_value_flag(ctx, &v)).transpose()?;
    let value = inputs.require_object("patch", "value", "--value", flag)?;
    let connector = ctx.connector()?;
    if args.dry_run {
        return super::dry_run(connector.as_ref(), &WriteOp::Patch { id, value });
    }
    let _held = super::hold_file(ctx, connector.as_ref()).await?;
    connector.patch(&id, value).await?;
    Ok(Done::value(json!({ "id": id })))
}
