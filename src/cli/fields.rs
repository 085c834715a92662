//! `ferry fields`: what the folder's destination takes — its key, its
//! required fields, the fields it knows with their types, and whether it
//! accepts others — asked of the destination itself where it can say
//! (HubSpot's contact properties, Intercom's data attributes, a Mailchimp
//! audience's merge fields, Zendesk's custom user fields), from the
//! connector's spec otherwise.

use anyhow::Result;
use serde_json::json;

use super::Done;
use crate::connector::ExportFields;
use crate::ctx::Ctx;
use crate::error::usage;

/// Show the fields the destination takes: required, known (with types), and whether others are accepted
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ferry -C audience fields\n  ferry -C crm fields --dry-run")]
pub struct Args {
    #[command(flatten)]
    dry: super::write::DryRead,
    #[command(flatten)]
    pub recording: super::RecordArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let ctx = &args.dry.ctx(ctx);
    let result = async {
        let connector = ctx.connector()?;
        let code = connector.spec().code;
        let fields = if let Some(profiles) = connector.profiles() {
            profiles.live_fields().await?
        } else if let Some(sink) = connector.sink() {
            ExportFields {
                key: connector.id_field().to_string(),
                key_from_profile_id: false,
                fields: sink.fields().await?,
                extra_fields: connector.spec().extra_fields,
            }
        } else {
            return Err(usage(format!(
                "connector {code} is not a destination: it has no fields to write"
            ))
            .hint(format!("`ferry connectors {code}` describes what it reads"))
            .into());
        };
        let required: Vec<&str> = fields
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.as_ref())
            .collect();
        Ok(Done::value(json!({
            "connector": code,
            "key": fields.key,
            "required": required,
            "extraFields": fields.extra_fields,
            "fields": fields.fields,
        })))
    }
    .await;
    args.dry.done(result)
}
