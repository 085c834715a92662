//! `ferry connectors [NAME]`: list the built-in connectors, or print one's
//! spec in full (options, fields, actions, limits).

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::connector::registry;
use crate::ctx::Ctx;

/// List the built-in connectors, or show one in full
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ferry connectors\n  ferry connectors sqlite")]
pub struct Args {
    /// The connector to show in full
    name: Option<String>,
}

pub async fn exec(args: Args, _ctx: &Ctx) -> Result<Done> {
    let result = match args.name {
        Some(name) => {
            let spec = registry::spec(&name)?;
            let mut value = serde_json::to_value(&spec)?;
            // The declarative connector's manifest is documented from the
            // table that sits beside its schema.
            if spec.code == "http" {
                value["manifest"] = crate::connector::http::manifest_docs();
            }
            value
        }
        None => json!(registry::specs()
            .iter()
            .map(|s| json!({
                "code": s.code,
                "label": s.label,
                "roles": s.roles,
                "description": s.description,
            }))
            .collect::<Vec<_>>()),
    };
    Ok(Done::value(result))
}
