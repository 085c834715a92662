//! `ferry connectors [NAME]`: list the built-in connectors, or print one's
//! spec in full (options, fields, actions, limits). On a terminal it is a
//! table for people; piped, or with `--json`, JSON for programs (as `ls` and
//! `cargo` choose by whether stdout is a terminal).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{json, Value};

use super::Done;
use crate::connector::{registry, Spec};
use crate::ctx::Ctx;

/// List the built-in connectors, or show one in full
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  ferry connectors\n  ferry connectors sqlite\n  ferry connectors --json | jq -r '.[].code'"
)]
pub struct Args {
    /// The connector to show in full
    name: Option<String>,
    /// Print JSON even on a terminal (it is the output when piped)
    #[arg(long)]
    json: bool,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let table = ctx.stdout_tty && !args.json;
    match args.name {
        Some(name) => {
            let spec = registry::spec(&name)?;
            if table {
                ctx.out.stdout_text(&spec_text(&spec))?;
                return Ok(Done::exit(ExitCode::SUCCESS));
            }
            let mut value = serde_json::to_value(&spec)?;
            // The declarative connector's manifest is documented from the
            // table that sits beside its schema.
            if spec.code == "http" {
                value["manifest"] = crate::connector::http::manifest_docs();
            }
            Ok(Done::value(value))
        }
        None => {
            let specs = registry::specs();
            if table {
                ctx.out.stdout_text(&list_text(&specs))?;
                return Ok(Done::exit(ExitCode::SUCCESS));
            }
            Ok(Done::value(json!(specs
                .iter()
                .map(|s| json!({
                    "code": s.code,
                    "label": s.label,
                    "roles": s.roles,
                    "description": s.description,
                }))
                .collect::<Vec<_>>())))
        }
    }
}

/// "source, destination".
fn roles(spec: &Spec) -> String {
    words(&serde_json::to_value(&spec.roles).unwrap_or(Value::Null))
}

/// The strings of a JSON array, joined with commas.
fn words(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// One line a connector: its name, roles and what it is.
fn list_text(specs: &[Spec]) -> String {
    let width = specs.iter().map(|s| s.code.len()).max().unwrap_or(4).max(4);
    let role_width = specs
        .iter()
        .map(|s| roles(s).len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<width$}  {:<role_width$}  DESCRIPTION\n",
        "NAME", "ROLES"
    );
    for s in specs {
        let _ = writeln!(
            out,
            "{:<width$}  {:<role_width$}  {}",
            s.code,
            roles(s),
            s.label
        );
    }
    out.push_str("\n`ferry connectors NAME` shows one in full; `--json` prints JSON.\n");
    out
}

/// One connector for people: what it is, what it does, its options.
fn spec_text(spec: &Spec) -> String {
    let actions = words(&serde_json::to_value(spec.actions()).unwrap_or(Value::Null));
    let mut out = format!("{} ({})\n\n{}\n\n", spec.code, spec.label, spec.description);
    let _ = writeln!(out, "roles:     {}", roles(spec));
    let _ = writeln!(out, "actions:   {actions}");
    let _ = writeln!(
        out,
        "batches:   up to {} records, {} at a time",
        spec.max_batch_size, spec.parallelism
    );
    if !spec.options.is_empty() {
        out.push_str("\noptions (account.json):\n");
        let width = spec.options.iter().map(|o| o.key.len()).max().unwrap_or(0);
        for o in &spec.options {
            let mut notes = Vec::new();
            if o.required {
                notes.push("required".to_string());
            }
            if o.secret {
                notes.push("secret".to_string());
            }
            if let Some(d) = &o.default {
                notes.push(format!("default {d}"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!(" ({})", notes.join(", "))
            };
            let _ = writeln!(out, "  {:<width$}  {}{notes}", o.key, o.description);
        }
    }
    if !spec.fields.is_empty() {
        out.push_str("\nfields:\n");
        let width = spec.fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &spec.fields {
            let kind = serde_json::to_value(f.kind).unwrap_or(Value::Null);
            let _ = writeln!(out, "  {:<width$}  {}", f.name, kind.as_str().unwrap_or(""));
        }
    }
    out.push_str("\n`--json` prints the whole spec as JSON.\n");
    out
}
