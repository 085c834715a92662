//! `ferry insert`: create a record and print its id and the stored record.

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::config::input::parse_value_flag;
use crate::connector::{record_id, WriteOp};
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
    /// Print the requests (or rows) that would be sent, secrets redacted, and send nothing
    #[arg(long)]
    dry_run: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let flag = args.value.map(|v| parse_value_flag(ctx, &v)).transpose()?;
    let value = inputs.require_object("insert", "value", "--value", flag)?;
    let connector = ctx.connector()?;
    if args.dry_run {
        return super::dry_run(connector.as_ref(), &WriteOp::Insert(value));
    }
    let _held = super::hold_file(ctx, connector.as_ref()).await?;
    let stored = connector.insert(value).await?;
    let id = record_id(&stored, connector.id_field());
    Ok(Done::value(json!({ "id": id, "record": stored })))
}
