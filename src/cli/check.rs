//! `ferry check`: test the connection and the credentials of the folder's account.

use anyhow::Result;

use super::Done;
use crate::ctx::Ctx;

/// Test the connection and the credentials
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ferry -C examples/sqlite check\n  ferry check --dry-run")]
pub struct Args {
    #[command(flatten)]
    dry: super::write::DryRead,
    #[command(flatten)]
    pub recording: super::RecordArgs,
    #[command(flatten)]
    pub case: super::CaseArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let ctx = &args.dry.ctx(ctx);
    let result = async {
        let connector = ctx.connector()?;
        let report = connector.check().await?;
        Ok(Done::value(report))
    }
    .await;
    args.dry.done(result)
}
