//! What `insert`, `patch` and `delete` share: the `--value` input, the
//! `--dry-run` flag, and one write sent with the file's lock held.

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::config::input::{parse_value_flag, Inputs};
use crate::connector::{able, record_id, with_text_id, Connector, Record, RecordStore, WriteOp};
use crate::ctx::Ctx;

/// `--dry-run`, flattened into the `Args` of each write.
#[derive(Debug, clap::Args)]
pub struct DryRun {
    /// Print the requests (or rows) that would be sent, secrets redacted, and send nothing
    #[arg(long)]
    dry_run: bool,
}

/// `--dry-run` on a read (`get`, `check`, `getupdates`), as xh's
/// `--offline`: the connector opens with engines that send nothing.
#[derive(Debug, clap::Args)]
pub struct DryRead {
    /// Print the request that would be sent, secrets redacted, and send nothing
    #[arg(long)]
    dry_run: bool,
}

impl DryRead {
    /// The context the read runs in: `ctx`, or a copy whose connectors
    /// send nothing.
    pub fn ctx(&self, ctx: &Ctx) -> Ctx {
        let mut ctx = ctx.clone();
        ctx.offline = self.dry_run;
        ctx
    }

    /// What the command prints: the read's own result, or under
    /// `--dry-run` the request it stopped at (none for a local connector,
    /// which reads its file and sends nothing).
    pub fn done(&self, result: Result<Done>) -> Result<Done> {
        if !self.dry_run {
            return result;
        }
        let requests = match result {
            Ok(_) => Vec::new(),
            Err(e) => match e
                .chain()
                .find_map(|c| c.downcast_ref::<crate::http::Offline>())
            {
                Some(offline) => vec![offline.0.preview()],
                None => return Err(e),
            },
        };
        Ok(Done::value(json!({ "dryRun": true, "requests": requests })))
    }
}

/// The record (or fields) to write: `--value` (JSON or @FILE), else
/// `"<action>"."value"` in in.json.
pub fn value(ctx: &Ctx, inputs: &Inputs, action: &str, flag: Option<String>) -> Result<Record> {
    let flag = flag.map(|v| parse_value_flag(&ctx.cwd, &v)).transpose()?;
    inputs.require_object(action, "value", "--value", flag)
}

/// Send `op` to the account's connector and answer what the command
/// prints; under `--dry-run`, what it would send, and nothing is sent.
pub async fn write(ctx: &Ctx, op: WriteOp, dry: DryRun) -> Result<Done> {
    let connector = ctx.connector()?;
    if dry.dry_run {
        return dry_run(connector.as_ref(), &op);
    }
    let _held = hold_file(ctx, connector.as_ref()).await?;
    let records = able(connector.as_ref(), connector.records(), op.action())?;
    let result = match op {
        WriteOp::Insert(value) => {
            let stored = with_text_id(records.insert(value).await?, connector.id_field());
            let id = record_id(&stored, connector.id_field());
            json!({ "id": id, "record": stored })
        }
        WriteOp::Patch { id, value } => {
            let can_list = connector.updates().is_some();
            (records.patch(&id, value).await).map_err(|e| super::hint_ids(ctx, can_list, e))?;
            json!({ "id": id })
        }
        WriteOp::Delete { id } => {
            let can_list = connector.updates().is_some();
            (records.delete(&id).await).map_err(|e| super::hint_ids(ctx, can_list, e))?;
            json!({ "id": id })
        }
        other => anyhow::bail!("{} is not a command of its own", other.action()),
    };
    Ok(Done::value(result))
}

/// A single write to a csv or jsonl file holds the file's lock, as an
/// import or export does, so it never lands inside another run's append
/// (docs/files.md). Dropped when the command ends.
async fn hold_file(ctx: &Ctx, connector: &dyn Connector) -> Result<Option<crate::lock::Held>> {
    let Some(file) = connector.written_file() else {
        return Ok(None);
    };
    let never = crate::interrupt::Interrupt::never();
    Ok(Some(
        crate::lock::hold(ctx, file, "the file", &never).await?,
    ))
}

/// `--dry-run`: what `op` would send, secrets redacted; nothing is sent.
fn dry_run(connector: &dyn Connector, op: &WriteOp) -> Result<Done> {
    let action = format!("preview {}", op.action());
    let records = able(connector, connector.records(), &action)?;
    let requests = RecordStore::preview(records, op)?;
    Ok(Done::value(json!({ "dryRun": true, "requests": requests })))
}
