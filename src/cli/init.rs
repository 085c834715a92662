//! `ferry init [DIR]`: scaffold a connector folder. Answers come from
//! `--set KEY=VALUE`, then questions on a terminal, then defaults. A terminal
//! is asked only for the required options, each shown with its description
//! and an example, checked as it is entered; one question then offers the
//! optional ones. Without a terminal nothing is ever asked and a missing
//! answer names the flag. A folder that already holds an account.json is
//! left alone unless `--force`; other existing files are kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::prompt::Questions;
use super::Done;
use crate::connector::{registry, OptionSpec, Spec};
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
    // Before any question: answers that could not be written are not asked for.
    refuse_a_connector_folder(ctx, &plan)?;
    let questions = if ctx.interactive() && !plan.yes {
        Some(Questions::start(
            &ctx.out,
            "nothing was written",
            "run it again, or answer without questions: --set KEY=VALUE for each option, --yes for the defaults",
        )?)
    } else {
        None
    };
    let code = match (&plan.connector, &questions) {
        (Some(c), _) => c.clone(),
        (None, Some(q)) => pick_connector(q)?,
        (None, None) => DEFAULT_CONNECTOR.to_string(),
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
    let answers = answers(ctx, &spec, &plan, questions.as_ref())?;
    // The questions are over: from here a Ctrl-C is no longer "nothing was written".
    drop(questions);
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
    ctx.out
        .info(&format!("next: ferry -C {} check", shown(ctx, &plan.dir)));
    Ok(Done::value(json!({
        "folder": plan.dir.display().to_string(),
        "connector": spec.code,
        "written": written,
        "kept": kept,
    })))
}

/// `dir` as the user would type it: relative to the working directory.
fn shown(ctx: &Ctx, dir: &Path) -> String {
    match dir.strip_prefix(&ctx.cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => dir.display().to_string(),
    }
}

/// A folder that already has an account.json is a connector folder: its
/// account is never replaced without `--force`, and writing the rest of a
/// scaffold around it would mix two connectors in one folder (an http
/// account with a sqlite in.json). So nothing is written, and nothing asked.
fn refuse_a_connector_folder(ctx: &Ctx, plan: &Plan) -> Result<()> {
    let account = plan.dir.join("account.json");
    if plan.force || !account.exists() {
        return Ok(());
    }
    let dir = shown(ctx, &plan.dir);
    let holds = std::fs::read_to_string(&account)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|v| v.get("connector")?.as_str().map(str::to_string));
    let what = match holds {
        Some(code) => format!("its account.json names connector \"{code}\""),
        None => "it has an account.json".to_string(),
    };
    let hint = match &plan.connector {
        Some(code) => format!(
            "pass --force to overwrite its files with a {code} connector's, or pick another folder: ferry init OTHER-DIR --connector {code}"
        ),
        None => "pass --force to overwrite its files, or pick another folder: ferry init OTHER-DIR"
            .to_string(),
    };
    Err(usage(format!(
        "nothing was written: {dir} is already a connector folder ({what})"
    ))
    .hint(hint)
    .into())
}

/// An answer for every option that needs one: `--set` first, then the
/// required options (asked on a terminal), then the optional ones, asked
/// only when the user says so at one question, else their defaults.
fn answers(
    ctx: &Ctx,
    spec: &Spec,
    plan: &Plan,
    questions: Option<&Questions>,
) -> Result<BTreeMap<String, Answer>> {
    let mut answers = BTreeMap::new();
    for (key, text) in &plan.set {
        answers.insert(key.clone(), given(spec, key, text)?);
    }
    let unset = |required: bool| {
        spec.options
            .iter()
            .filter(move |o| o.required == required && !plan.set.contains_key(o.key))
    };
    for opt in unset(true) {
        let answer = match questions {
            Some(q) => ask(ctx, q, spec, opt)?,
            None => unasked(spec, opt, plan.yes)?,
        };
        if let Some(a) = answer {
            answers.insert(opt.key.to_string(), a);
        }
    }
    let optional: Vec<&OptionSpec> = unset(false).collect();
    let keys: Vec<&str> = optional.iter().map(|o| o.key).collect();
    let advanced = match questions {
        Some(q) if !optional.is_empty() => q.answer(
            dialoguer::Confirm::new()
                .with_prompt(format!("Set optional options too ({})?", keys.join(", ")))
                .default(false)
                .interact(),
        )?,
        _ => false,
    };
    for opt in optional {
        let answer = match questions {
            Some(q) if advanced => ask(ctx, q, spec, opt)?,
            _ => unasked(spec, opt, plan.yes)?,
        };
        if let Some(a) = answer {
            answers.insert(opt.key.to_string(), a);
        }
    }
    Ok(answers)
}

/// A `--set KEY=VALUE`: a secret as a `${VAR}` reference with its value in
/// .env, anything else typed by the option's type (a module's own keys, which
/// have no type, as text; a secret-looking one as a secret).
fn given(spec: &Spec, key: &str, text: &str) -> Result<Answer> {
    let secret = match spec.option(key) {
        Some(opt) => opt.secret,
        None => crate::http::redact::is_sensitive(key),
    };
    if secret {
        return Ok(Answer::Secret {
            var: secret_var(spec, key),
            value: Some(text.to_string()),
        });
    }
    let Some(opt) = spec.option(key) else {
        return Ok(Answer::Value(Value::String(text.to_string())));
    };
    match scaffold::typed_value(opt.kind, text) {
        Ok(value) => Ok(Answer::Value(value)),
        Err(why) => Err(usage(format!(
            "--set {key}: option \"{key}\" of connector {} {why}",
            spec.code
        ))
        .hint(format!(
            "{}; see `ferry connectors {}`",
            opt.description, spec.code
        ))
        .into()),
    }
}

/// The answer for an option nobody was asked about: a secret as a `${VAR}`
/// reference (when required), else the default, else with `--yes` the
/// placeholder; a required option without any of them is an error that
/// names the flag.
fn unasked(spec: &Spec, opt: &OptionSpec, yes: bool) -> Result<Option<Answer>> {
    if opt.secret {
        // An optional secret (one auth style among several) is left out
        // unless given: a ${VAR} nobody sets would break every command.
        return Ok(opt.required.then(|| Answer::Secret {
            var: secret_var(spec, opt.key),
            value: None,
        }));
    }
    Ok(match (&opt.default, opt.required) {
        (Some(d), _) => Some(Answer::Value(d.clone())),
        (None, false) => None,
        (None, true) if yes && !opt.placeholder.is_empty() => {
            Some(Answer::Value(Value::String(opt.placeholder.to_string())))
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
    })
}

fn pick_connector(questions: &Questions) -> Result<String> {
    let specs = registry::specs();
    let items: Vec<String> = specs
        .iter()
        .map(|s| format!("{:<12} {}", s.code, s.label))
        .collect();
    let default = specs
        .iter()
        .position(|s| s.code == DEFAULT_CONNECTOR)
        .unwrap_or(0);
    let choice = questions.answer(
        dialoguer::Select::new()
            .with_prompt("Connector")
            .items(&items)
            .default(default)
            .interact(),
    )?;
    Ok(specs[choice].code.to_string())
}

/// What the user reads above an option's question: its description, and
/// its placeholder as an example (unless it is the default, which the
/// question shows, or a `${VAR}` reference, which says nothing).
fn describe(opt: &OptionSpec) -> String {
    let example = opt.placeholder;
    let is_default = (opt.default.as_ref()).is_some_and(|d| d.as_str() == Some(example));
    if example.is_empty() || example.starts_with("${") || is_default {
        opt.description.to_string()
    } else {
        format!("{} (e.g. {example})", opt.description)
    }
}

/// Ask for one option: its description, then the question; a secret is
/// read hidden. Every answer is checked as it is entered (a number for a
/// number, a JSON object for an object, something for a required option)
/// and asked again with the reason until it fits. An optional option left
/// empty is left out.
fn ask(ctx: &Ctx, q: &Questions, spec: &Spec, opt: &OptionSpec) -> Result<Option<Answer>> {
    ctx.out.info(&describe(opt));
    let required = opt.required;
    if opt.secret {
        let var = secret_var(spec, opt.key);
        let why = format!("a value is required (it is saved to .env as {var})");
        let value = q.answer(
            dialoguer::Password::new()
                .with_prompt(format!(
                    "{} ({}, saved to .env as {var})",
                    opt.label, opt.key
                ))
                .allow_empty_password(true)
                .validate_with(move |v: &String| {
                    if v.is_empty() && required {
                        Err(why.clone())
                    } else {
                        Ok(())
                    }
                })
                .interact(),
        )?;
        return Ok((!value.is_empty()).then_some(Answer::Secret {
            var,
            value: Some(value),
        }));
    }
    let kind = opt.kind;
    let mut input = dialoguer::Input::<String>::new()
        .with_prompt(format!("{} ({})", opt.label, opt.key))
        .allow_empty(true)
        .validate_with(move |text: &String| -> std::result::Result<(), String> {
            if !text.is_empty() {
                scaffold::typed_value(kind, text).map(|_| ())
            } else if required {
                Err("a value is required".to_string())
            } else {
                Ok(())
            }
        });
    let default = opt.default.as_ref().map(|d| match d {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    if let Some(d) = &default {
        input = input.default(d.clone());
    }
    let text = q.answer(input.interact_text())?;
    if text.is_empty() {
        return Ok(None);
    }
    if default.as_ref() == Some(&text) {
        return Ok(opt.default.clone().map(Answer::Value));
    }
    // Checked by the validator above, so this cannot fail.
    let value = scaffold::typed_value(kind, &text).map_err(usage)?;
    Ok(Some(Answer::Value(value)))
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
