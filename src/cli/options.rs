//! `ferry options NAME`: the values an option of the folder's connector may
//! take, as the system lists them (Mailchimp's audiences for `listId`), so
//! an account can be filled in without leaving the terminal. The option
//! itself may still be missing from account.json: it is what is asked.

use anyhow::Result;
use serde_json::{json, Value};

use super::Done;
use crate::ctx::Ctx;
use crate::error::usage;

/// List the values an option may take, as the system offers them (Mailchimp's audiences for listId)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ferry -C audience options listId")]
pub struct Args {
    /// The option whose values to list, as account.json names it
    name: String,
    #[command(flatten)]
    dry: super::write::DryRead,
    #[command(flatten)]
    pub recording: super::RecordArgs,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let ctx = &args.dry.ctx(ctx);
    let name = args.name.clone();
    let result = async {
        let connector = ctx.connector_with(|account, spec| {
            let Some(option) = spec.option(&name) else {
                return Err(
                    usage(format!("connector {} has no option \"{name}\"", spec.code))
                        .hint(format!(
                            "`ferry connectors {}` lists its options",
                            spec.code
                        ))
                        .into(),
                );
            };
            // Listing an option's values needs no value for it.
            if option.required && !account.options.contains_key(&name) {
                account
                    .options
                    .insert(name.clone(), Value::String("-".into()));
            }
            Ok(())
        })?;
        let code = connector.spec().code;
        let Some(choices) = connector.option_choices(&name).await? else {
            return Err(usage(format!(
                "connector {code} cannot list the values of option \"{name}\""
            ))
            .hint(format!("`ferry connectors {code}` describes the option"))
            .into());
        };
        Ok(Done::value(json!({ "option": name, "choices": choices })))
    }
    .await;
    args.dry.done(result)
}
