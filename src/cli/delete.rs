//! `ferry delete`: delete a record by id.

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::ctx::Ctx;

/// Delete a record by its id
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  ferry delete --id cus_001")]
pub struct Args {
    /// The record's id [default: "delete"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<ExitCode> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("delete", "id", "--id ID", args.id)?;
    let connector = ctx.connector()?;
    connector.delete(&id).await?;
    ctx.out.result(&json!({ "id": id }))?;
    Ok(ExitCode::SUCCESS)
}
