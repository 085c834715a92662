//! `ferry getupdates`: the records changed since a sync token, and the token
//! that continues after them.

use anyhow::Result;

use super::Done;
use crate::connector::{able, with_text_id};
use crate::ctx::Ctx;

/// List the records changed since the last sync (every record without one)
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry getupdates\n  ferry getupdates --last-sync 42 --limit 100\n  ferry getupdates | jq -r .nextSync"
)]
pub struct Args {
    /// The nextSync of the previous call [default: "getupdates"."lastSync" in in.json; none: every record]
    #[arg(long, value_name = "TOKEN")]
    last_sync: Option<String>,
    /// Stop after N entries; nextSync then points right after the last one
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
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
    let since = inputs.string("getupdates", "lastSync", args.last_sync.clone())?;
    let connector = ctx.connector()?;
    let feed = able(connector.as_ref(), connector.updates(), "getupdates")?;
    let mut updates = feed
        .get_updates(since.as_deref(), args.limit.map(|l| l as usize))
        .await?;
    // Ids are printed as text, whatever type the API gave (docs/config.md).
    for entry in &mut updates.entries {
        entry.value = entry
            .value
            .take()
            .map(|record| with_text_id(record, connector.id_field()));
    }
    ctx.out
        .verbose(&format!("{} entries", updates.entries.len()));
    Ok(Done::value(serde_json::to_value(&updates)?))
}
