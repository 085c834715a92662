//! `ferry init [DIR]`: scaffold a connector folder. Answers come from
//! `--set KEY=VALUE`, then prompts on a terminal, then defaults; without a
//! terminal nothing is ever asked and a missing answer names the flag.
//! Existing files are kept unless `--force`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::Done;
use crate::connector::{registry, Spec};
use crate::ctx::Ctx;
use crate::error::usage;
use crate::scaffold::{self, secret_var, Answer};

/// The connector `init` scaffolds when none is named: an `http` connector
/// whose manifest drives `ferry sandbox`, so a new folder works at once.
const DEFAULT_CONNECTOR: &str = "http";

/// Scaffold a connector folder
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  ferry init my-connector                  # asks on a terminal
  ferry init crm --connector sqlite --yes  # take the defaults, ask nothing
  ferry init crm --connector csv --set path=contacts.csv")]
pub struct Args {
    /// The folder to create or fill [default: the -C folder, or the current directory]
    #[arg(value_name = "DIR")]
    folder: Option<PathBuf>,
    /// The built-in connector to scaffold (see `ferry connectors`)
    #[arg(long, value_name = "NAME")]
    connector: Option<String>,
    /// An option's value, instead of a prompt (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Overwrite files that already exist
    #[arg(long)]
    force: bool,
    /// Take the default or placeholder for every option; never prompt
    #[arg(long, short = 'y')]
    yes: bool,
}

/// What the flags ask for, before any I/O.
#[derive(Debug)]
struct Plan {
    dir: PathBuf,
    connector: Option<String>,
    set: BTreeMap<String, String>,
    force: bool,
    yes: bool,
}

impl Args {
    fn plan(self, ctx: &Ctx) -> Result<Plan> {
        let mut set = BTreeMap::new();
        for pair in self.set {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(usage(format!("--set {pair} is not KEY=VALUE"))
                    .hint("write it as --set path=customers.db")
                    .into());
            };
            set.insert(key.trim().to_string(), value.to_string());
        }
        Ok(Plan {
            dir: self.folder.map_or_else(
                || ctx.folder.clone(),
                |d| crate::config::resolve(&ctx.cwd, d),
            ),
            connector: self.connector,
            set,
            force: self.force,
            yes: self.yes,
        })
    }
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    let plan = args.plan(ctx)?;
    let ask = ctx.interactive() && !plan.yes;
    let code = match (&plan.connector, ask) {
        (Some(c), _) => c.clone(),
        (None, true) => pick_connector()?,
        (None, false) => DEFAULT_CONNECTOR.to_string(),
    };
    let spec = registry::spec(&code)?;
    for key in plan.set.keys() {
        // A code connector's account holds its module's own keys too.
        if spec.option(key).is_none() && !spec.account_values {
            return Err(usage(format!("connector {code} has no option \"{key}\""))
                .hint(format!("run `ferry connectors {code}` to see its options"))
                .into());
        }
    }
    let answers = answers(&spec, &plan, ask)?;
    let files = scaffold::plan(&spec, &answers);

    std::fs::create_dir_all(&plan.dir)
        .with_context(|| format!("could not create {}", plan.dir.display()))?;
    let mut written = Vec::new();
    let mut kept = Vec::new();
    for file in files {
        let path = plan.dir.join(file.path);
        if path.exists() && !plan.force {
            kept.push(file.path);
            continue;
        }
        if file.path == ".env" {
            // It holds the secrets the prompts asked for.
            crate::fsutil::write_private_atomic(&path, file.content.as_bytes())?;
        } else {
            crate::fsutil::write_bytes_atomic(&path, file.content.as_bytes())?;
        }
        written.push(file.path);
    }
    if !kept.is_empty() {
        ctx.out.warn(&format!(
            "kept existing {} (pass --force to overwrite)",
            kept.join(", ")
        ));
    }
    ctx.out.info(&format!(
        "next: ferry -C {} check",
        plan.dir
            .strip_prefix(&ctx.cwd)
            .unwrap_or(&plan.dir)
            .display()
    ));
    Ok(Done::value(json!({
        "folder": plan.dir.display().to_string(),
        "connector": spec.code,
        "written": written,
        "kept": kept,
    })))
}

/// An answer for every option that needs one.
fn answers(spec: &Spec, plan: &Plan, ask: bool) -> Result<BTreeMap<String, Answer>> {
    let mut answers = BTreeMap::new();
    for opt in &spec.options {
        let given = plan.set.get(opt.key).cloned();
        if opt.secret {
            // An optional secret (one auth style among several) is left out
            // unless given: a ${VAR} nobody sets would break every command.
            if given.is_none() && !opt.required {
                continue;
            }
            let var = secret_var(spec, opt.key);
            let value = match given {
                Some(v) => Some(v),
                None if ask => Some(prompt_secret(opt.label, &var)?),
                None => None,
            };
            answers.insert(opt.key.to_string(), Answer::Secret { var, value });
            continue;
        }
        let value = match given {
            Some(v) => Some(Value::String(v)),
            None if ask => prompt_value(opt)?,
            None => match (&opt.default, opt.required) {
                (Some(d), _) => Some(d.clone()),
                (None, false) => None,
                (None, true) if plan.yes && !opt.placeholder.is_empty() => {
                    Some(Value::String(opt.placeholder.to_string()))
                }
                (None, true) => {
                    return Err(usage(format!(
                        "option \"{}\" of connector {} needs a value",
                        opt.key, spec.code
                    ))
                    .hint(format!(
                        "pass --set {}=VALUE, or --yes to write the placeholder",
                        opt.key
                    ))
                    .into())
                }
            },
        };
        if let Some(v) = value {
            answers.insert(opt.key.to_string(), Answer::Value(v));
        }
    }
    // The module's own keys (a code connector's): a secret-looking one as
    // a ${VAR} in account.json with its value in .env, as options are.
    for (key, value) in plan.set.iter().filter(|(k, _)| spec.option(k).is_none()) {
        let answer = if crate::http::redact::is_sensitive(key) {
            Answer::Secret {
                var: secret_var(spec, key),
                value: Some(value.clone()),
            }
        } else {
            Answer::Value(Value::String(value.clone()))
        };
        answers.insert(key.clone(), answer);
    }
    Ok(answers)
}

fn pick_connector() -> Result<String> {
    let specs = registry::specs();
    let items: Vec<String> = specs
        .iter()
        .map(|s| format!("{:<12} {}", s.code, s.label))
        .collect();
    let default = specs
        .iter()
        .position(|s| s.code == DEFAULT_CONNECTOR)
        .unwrap_or(0);
    let choice = dialoguer::Select::new()
        .with_prompt("Connector")
        .items(&items)
        .default(default)
        .interact()
        .context("could not read the answer")?;
    Ok(specs[choice].code.to_string())
}

fn prompt_value(opt: &crate::connector::OptionSpec) -> Result<Option<Value>> {
    let initial = match &opt.default {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => opt.placeholder.to_string(),
    };
    let answer: String = dialoguer::Input::new()
        .with_prompt(format!("{} ({})", opt.label, opt.key))
        .with_initial_text(initial)
        .allow_empty(!opt.required)
        .interact_text()
        .context("could not read the answer")?;
    Ok((!answer.is_empty()).then_some(Value::String(answer)))
}

fn prompt_secret(label: &str, var: &str) -> Result<String> {
    dialoguer::Password::new()
        .with_prompt(format!("{label} (saved to .env as {var})"))
        .allow_empty_password(true)
        .interact()
        .context("could not read the answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_pairs_must_have_an_equals_sign() {
        let ctx = Ctx::from_process().unwrap();
        let args = Args {
            folder: None,
            connector: None,
            set: vec!["path".into()],
            force: false,
            yes: false,
        };
        let err = args.plan(&ctx).unwrap_err();
        assert!(err.to_string().contains("is not KEY=VALUE"), "{err}");
    }
}
