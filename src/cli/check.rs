//! `ferry check`: test the connection and the credentials of the folder's account.

use anyhow::Result;

use super::Done;
use crate::ctx::Ctx;

/// Test the connection and the credentials
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  ferry -C examples/sqlite check")]
pub struct Args {}

pub async fn exec(_args: Args, ctx: &Ctx) -> Result<Done> {
    let connector = ctx.connector()?;
    let report = connector.check().await?;
    Ok(Done::value(report))
}
