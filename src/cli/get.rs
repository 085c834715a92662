//! `ferry get`: print one record by id.

use anyhow::Result;
use serde_json::Value;

use super::Done;
use crate::connector::{able, with_text_id};
use crate::ctx::Ctx;

/// Print one record by its id
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry get --id cus_001\n  ferry -C examples/sqlite get | jq .email"
)]
pub struct Args {
    /// The record's id [default: "get"."id" in in.json]
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    dry: super::write::DryRead,
    #[command(flatten)]
    pub recording: super::RecordArgs,
    #[command(flatten)]
    pub case: super::CaseArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let ctx = &args.dry.ctx(ctx);
    let result = read(&args, ctx).await;
    args.dry.done(result)
}

async fn read(args: &Args, ctx: &Ctx) -> Result<Done> {
    let inputs = ctx.inputs()?;
    let id = inputs.require_string("get", "id", "--id ID", args.id.clone())?;
    let connector = ctx.connector()?;
    let lookup = able(connector.as_ref(), connector.lookup(), "get")?;
    let record = (lookup.get(&id).await)
        .map_err(|e| super::hint_ids(ctx, connector.updates().is_some(), e))?;
    // Ids are printed as text, whatever type the API gave (docs/config.md).
    let record = with_text_id(record, connector.id_field());
    Ok(Done::value(Value::Object(record)))
}
