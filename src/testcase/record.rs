//! Recording a run: the `--record` / `--replay` cassette a command's HTTP
//! engines use, and after a `--record` run the cassette file and, with
//! `--save-case NAME`, the test case made of the run's arguments, input,
//! traffic and the result the command returned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::connector::Spec;
use crate::ctx::Ctx;
use crate::error::usage;
use crate::http::cassette::{Cassette, Mode};
use crate::http::redact::{is_sensitive, redact_url};
use crate::output::{Output, REDACTED};
use crate::shell;

use super::{Case, Ending, StoreCopy};

/// A run made with `--record` or `--replay` (and maybe `--save-case`).
pub struct Recording {
    /// The arguments after `ferry`, as typed.
    argv: Vec<String>,
    /// The command's name: `get`, `getupdates`, ...
    action: &'static str,
    /// With `--save-case`: its name, and the account and store as they
    /// were before the run.
    save_case: Option<(String, Before)>,
    cassette: Arc<Cassette>,
}

/// What a case keeps from before its run: the account it ran with and, for
/// a local connector, the store's content (the run may change it).
struct Before {
    /// account.json as written, secrets not yet masked.
    account: Value,
    spec: Option<Spec>,
    /// The live store file and its copy.
    store: Option<(PathBuf, StoreCopy)>,
}

/// The largest store a case keeps a copy of: a case is a file to commit.
const MAX_STORE_BYTES: usize = 10 << 20;

impl Recording {
    /// Open the cassette: `file` or `DIR/cassettes/ACTION.json`, to record
    /// into or to replay from. Its re-record command is `argv` with
    /// `--record` in place of `--replay`. With `save_case`, keep the
    /// account and the local store as they are before the run.
    pub fn start(
        ctx: &Ctx,
        argv: Vec<String>,
        action: &'static str,
        mode: Mode,
        file: Option<&Path>,
        save_case: Option<String>,
    ) -> Result<Recording> {
        let path = match file {
            Some(p) => crate::config::resolve(&ctx.cwd, p),
            None => ctx.folder.join("cassettes").join(format!("{action}.json")),
        };
        let mut again: Vec<String> = argv.iter().filter(|a| *a != "--replay").cloned().collect();
        if !again.iter().any(|a| a == "--record") {
            again.push("--record".into());
        }
        let rerecord = ctx.out.redact(&format!("ferry {}", shell::join(&again)));
        let save_case = match save_case {
            Some(name) => Some((name, before(ctx)?)),
            None => None,
        };
        let cassette = match mode {
            Mode::Record => Cassette::record(path, rerecord),
            Mode::Replay => Cassette::replay_file(path, rerecord)?,
        };
        Ok(Recording {
            argv,
            action,
            save_case,
            cassette: Arc::new(cassette),
        })
    }

    /// The cassette the command's HTTP engines record to or replay from.
    pub fn cassette(&self) -> Arc<Cassette> {
        self.cassette.clone()
    }

    /// After the command, failed or not: a recording writes its cassette,
    /// and with `--save-case` the test case, which expects the run's result
    /// or, when it failed, its error; answers the case's name and file.
    /// `ended` is the command's result (an action either succeeds or fails
    /// with an error). A cassette or case that cannot be written fails a
    /// command that succeeded and is a warning after one that failed (its
    /// own error comes first).
    pub fn finish(
        self,
        ctx: &Ctx,
        ended: Result<Option<&Value>, &anyhow::Error>,
    ) -> Result<Option<(String, PathBuf)>> {
        if self.cassette.mode() != Mode::Record {
            return Ok(None);
        }
        let command = ctx
            .out
            .redact(&format!("ferry {}", shell::join(&self.argv)));
        match self.cassette.save(&command) {
            Ok(Some(path)) => ctx.out.info(&format!(
                "recorded {} HTTP exchange(s) to {}",
                self.cassette.interactions().len(),
                path.display()
            )),
            Ok(None) => {}
            Err(err) if ended.is_ok() => return Err(err),
            Err(err) => ctx.out.warn(&format!("{err:#}")),
        }
        let Some((name, before)) = &self.save_case else {
            return Ok(None);
        };
        match self.save(ctx, name, before, ended, command) {
            Ok(path) => Ok(Some((name.clone(), path))),
            Err(err) if ended.is_err() => {
                ctx.out
                    .warn(&format!("test case {name} was not saved: {err:#}"));
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// Write the case `name` of this run to `DIR/tests/NAME.json`.
    fn save(
        &self,
        ctx: &Ctx,
        name: &str,
        before: &Before,
        ended: Result<Option<&Value>, &anyhow::Error>,
        command: String,
    ) -> Result<PathBuf> {
        let mut paths = Vec::new();
        if let Some((live, copy)) = &before.store {
            paths.push((live.clone(), copy.file.clone()));
        }
        paths.push((ctx.folder.clone(), ".".to_string()));
        let ending = Ending::of(&Scrub::new(&ctx.out, paths), ended)?;
        let section = ctx.inputs()?.section(self.action).cloned();
        let mut input = serde_json::Map::new();
        if let Some(section) = section {
            input.insert(self.action.to_string(), section);
        }
        let input = redacted(&ctx.out, &Value::Object(input))
            .context("could not redact the case's input")?;
        let account = redacted(
            &ctx.out,
            &mask_account(before.spec.as_ref(), &before.account),
        )
        .context("could not redact the case's account")?;
        let args = inline_value_files(ctx, replay_args(&self.argv))?
            .iter()
            .map(|a| ctx.out.redact(a))
            .collect();
        let mut case = Case {
            ferry_case: super::VERSION,
            action: self.action.to_string(),
            args,
            account: Some(account),
            input,
            ignore: Vec::new(),
            exit: 0,
            expected: Value::Null,
            error: None,
            store: before.store.as_ref().map(|(_, copy)| copy.clone()),
            cassette: self.cassette.tape(command),
        };
        // Recording again keeps the paths the user chose not to compare.
        let path = super::dir(&ctx.folder).join(format!("{name}.json"));
        if let Ok(old) = super::load(&path, &[self.action]) {
            case.ignore = old.ignore;
        }
        case.set_ending(ending);
        super::save(&ctx.folder, name, &case)
    }
}

/// The account and the local store before a run that is saved as a case.
fn before(ctx: &Ctx) -> Result<Before> {
    let account = ctx.account()?;
    let file = match &ctx.account_file {
        Some(f) => crate::config::resolve(&ctx.cwd, f),
        None => ctx.folder.join("account.json"),
    };
    let raw = crate::config::json::read_file(&file)?;
    let spec = crate::connector::registry::spec(&account.connector).ok();
    let store = match spec.as_ref().and_then(|s| s.store) {
        Some(store) => {
            let Some(Value::String(name)) = account.options.get(store.option) else {
                return Ok(Before {
                    account: raw,
                    spec,
                    store: None,
                });
            };
            let live = crate::config::resolve(&account.folder, name);
            // Sized before it is read: a large store is refused, not copied.
            let size = std::fs::metadata(&live).map_or(0, |m| m.len());
            let bytes = if size > MAX_STORE_BYTES as u64 {
                None
            } else {
                (store.snapshot)(&live)?
            };
            let copied = bytes.as_ref().map_or(0, |b| b.len() as u64);
            if size.max(copied) > MAX_STORE_BYTES as u64 {
                return Err(usage(format!(
                    "{} is {} MiB; a test case keeps a copy of the store it runs against, at most {} MiB",
                    live.display(),
                    size.max(copied) >> 20,
                    MAX_STORE_BYTES >> 20
                ))
                .hint(format!(
                    "record the case against a smaller store: point \"{}\" in account.json at a file with the records the case needs",
                    store.option
                ))
                .into());
            }
            let file_name = live
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "store".into());
            Some((live, StoreCopy::new(file_name, bytes)?))
        }
        None => None,
    };
    Ok(Before {
        account: raw,
        spec,
        store,
    })
}

/// account.json with its literal secrets as `***`: every value (string,
/// number or boolean) of the connector's secret options and of every
/// credential-named key, at any depth, and the credentials inside any URL
/// (a password, an `api_key` query parameter). A value that is only a
/// `${NAME}` reference stays: it is not the secret, and a replay does not
/// need it.
fn mask_account(spec: Option<&Spec>, account: &Value) -> Value {
    fn walk(value: &Value, secret: bool) -> Value {
        match value {
            Value::String(s) if secret && !is_reference(s) => Value::String(REDACTED.into()),
            Value::Number(_) | Value::Bool(_) if secret => Value::String(REDACTED.into()),
            Value::String(s) if s.contains("://") => Value::String(redact_url(s)),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), walk(v, secret || is_sensitive(k))))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, secret)).collect()),
            other => other.clone(),
        }
    }
    let Value::Object(map) = account else {
        return account.clone();
    };
    Value::Object(
        map.iter()
            .map(|(k, v)| {
                let secret =
                    spec.and_then(|s| s.option(k)).is_some_and(|o| o.secret) || is_sensitive(k);
                (k.clone(), walk(v, secret))
            })
            .collect(),
    )
}

/// Whether `s` is one `${NAME}` reference and nothing else.
fn is_reference(s: &str) -> bool {
    s.strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// How a run's output and error are kept in a case: secrets masked, and
/// the paths that differ between runs (the live store or the replay's copy
/// of it, the replay's scratch folder, the connector folder) as the names
/// a case reads the same with from any clone.
pub struct Scrub<'a> {
    out: &'a Output,
    /// Each path, as text, and what it becomes; longest first.
    paths: Vec<(String, String)>,
}

impl<'a> Scrub<'a> {
    pub fn new(out: &'a Output, paths: Vec<(PathBuf, String)>) -> Scrub<'a> {
        let mut paths: Vec<(String, String)> = paths
            .into_iter()
            .map(|(p, to)| (p.display().to_string(), to))
            .filter(|(p, _)| p.len() > 1)
            .collect();
        paths.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        Scrub { out, paths }
    }

    /// `text` scrubbed. A path is replaced only where it ends a name (not
    /// followed by a letter, digit, `_` or `-`), so a short folder such as
    /// `/w` leaves `https://x.com/wiki` alone.
    pub fn text(&self, text: &str) -> String {
        let mut text = self.out.redact(text);
        for (from, to) in &self.paths {
            text = replace_whole(&text, from, to);
        }
        text
    }

    /// [`Scrub::text`] of a JSON value.
    pub fn value(&self, value: &Value) -> Result<Value> {
        Ok(serde_json::from_str(&self.text(&value.to_string()))?)
    }
}

/// `text` with each `from` that is not followed by a name character as `to`.
fn replace_whole(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let after = &rest[at + from.len()..];
        let whole = !after
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
        out.push_str(&rest[..at]);
        out.push_str(if whole { to } else { from });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `value` with the secrets `out` knows masked, as it was printed.
pub fn redacted(out: &Output, value: &Value) -> Result<Value> {
    Ok(serde_json::from_str(&out.redact(&value.to_string()))?)
}

/// Global flags with a value that say how a run was made, not what it does.
const DROP_WITH_VALUE: &[&str] = &[
    "-C",
    "--dir",
    "-o",
    "--output",
    "--input",
    "--account",
    "--cassette",
    "--save-case",
];
/// Global switches of the same kind.
const DROP_SWITCHES: &[&str] = &["--record", "--replay", "-q", "--quiet", "--verbose"];

/// `argv` (without the program name) reduced to what the action needs to be
/// run again: the subcommand and its own flags.
pub fn replay_args(argv: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        if DROP_SWITCHES.contains(&a.as_str()) || is_verbose_cluster(a) {
            continue;
        }
        if DROP_WITH_VALUE.contains(&a.as_str()) {
            it.next();
            continue;
        }
        let attached = DROP_WITH_VALUE.iter().any(|f| {
            (f.starts_with("--") && a.starts_with(&format!("{f}=")))
                || (!f.starts_with("--") && a.len() > 2 && a.starts_with(f))
        });
        if attached {
            continue;
        }
        kept.push(a.clone());
    }
    kept
}

/// `-v`, `-vv`, ...
fn is_verbose_cluster(a: &str) -> bool {
    a.len() >= 2 && a.starts_with('-') && a[1..].chars().all(|c| c == 'v')
}

/// `--value @FILE` read into the arguments, so a case does not depend on
/// a file outside its own (secrets redacted like the rest of the case).
fn inline_value_files(ctx: &Ctx, args: Vec<String>) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(args.len());
    let mut after_value = false;
    for a in args {
        let (prefix, file) = match a.strip_prefix("--value=@") {
            Some(f) => ("--value=", Some(f.to_string())),
            None if after_value => ("", a.strip_prefix('@').map(str::to_string)),
            None => ("", None),
        };
        after_value = a == "--value";
        match file {
            Some(f) => {
                let path = crate::config::resolve(&ctx.cwd, &f);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                out.push(format!("{prefix}{}", ctx.out.redact(text.trim_end())));
            }
            None => out.push(a),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_keeps_only_references_to_its_secrets() {
        let account = serde_json::json!({
            "connector": "x",
            "token": "${TOKEN}",
            "apiKey": "sk_${TAIL}",
            "pin": 4242,
            "clientSecret": 4242,
            "login": {"password": "p", "user": "u"},
            "baseUrl": "https://u:pw@api.example/v1?api_key=k&x=1",
        });
        assert_eq!(
            mask_account(None, &account),
            serde_json::json!({
                "connector": "x",
                "token": "${TOKEN}",
                "apiKey": "***",
                "pin": 4242,
                "clientSecret": "***",
                "login": {"password": "***", "user": "u"},
                "baseUrl": "https://u:***@api.example/v1?api_key=***&x=1",
            })
        );
    }

    #[test]
    fn a_path_is_scrubbed_only_where_a_name_ends() {
        let out = Output::new();
        let scrub = Scrub::new(
            &out,
            vec![
                (PathBuf::from("/w"), ".".into()),
                (PathBuf::from("/w/s/a.db"), "a.db".into()),
            ],
        );
        assert_eq!(
            scrub.text("see https://x.com/wiki, /w/s/a.db#t and /w/in.json"),
            "see https://x.com/wiki, a.db#t and ./in.json"
        );
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replay_args_keep_only_the_action_and_its_flags() {
        let argv = strings(&[
            "-C",
            "conn",
            "-vv",
            "get",
            "--id",
            "c_1",
            "--record",
            "--save-case",
            "g",
            "-o=x",
            "--cassette=c.json",
            "-Cdir",
            "--input",
            "in.json",
        ]);
        assert_eq!(replay_args(&argv), strings(&["get", "--id", "c_1"]));
    }
}
