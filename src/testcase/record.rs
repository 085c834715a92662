//! Recording a run: the `--record` / `--replay` cassette a command's HTTP
//! engines use, and after a `--record` run the cassette file and, with
//! `--save-case NAME`, the test case made of the run's arguments, input,
//! traffic and the result the command returned.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::http::cassette::{Cassette, Mode};
use crate::output::Output;
use crate::shell;

use super::Case;

/// A run made with `--record` or `--replay` (and maybe `--save-case`).
pub struct Recording {
    /// The arguments after `ferry`, as typed.
    argv: Vec<String>,
    /// The command's name: `get`, `getupdates`, ...
    action: &'static str,
    save_case: Option<String>,
    cassette: Arc<Cassette>,
}

impl Recording {
    /// Open the cassette: `file` or `DIR/cassettes/ACTION.json`, to record
    /// into or to replay from. Its re-record command is `argv` with
    /// `--record` in place of `--replay`.
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
    /// and with `--save-case` the test case. `ran` says the command returned
    /// without an error; `result` is what it returned when it exited 0.
    /// A cassette that cannot be written fails a command that succeeded and
    /// is a warning after one that failed (its own error comes first).
    pub fn finish(self, ctx: &Ctx, ran: bool, result: Option<&Value>) -> Result<()> {
        if self.cassette.mode() != Mode::Record {
            return Ok(());
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
            Err(err) if ran => return Err(err),
            Err(err) => ctx.out.warn(&format!("{err:#}")),
        }
        let Some(case_name) = &self.save_case else {
            return Ok(());
        };
        let Some(result) = result else {
            ctx.out.warn(&format!(
                "test case {case_name} was not saved: the command did not succeed"
            ));
            return Ok(());
        };
        let section = ctx.inputs()?.section(self.action).cloned();
        let mut input = serde_json::Map::new();
        if let Some(section) = section {
            input.insert(self.action.to_string(), section);
        }
        let input = redacted(&ctx.out, &Value::Object(input))
            .context("could not redact the case's input")?;
        let expected = redacted(&ctx.out, result).context("could not redact the case's result")?;
        let case = Case::new(
            self.action,
            inline_value_files(ctx, replay_args(&self.argv))?,
            input,
            expected,
            self.cassette.tape(command),
        );
        let path = super::save(&ctx.folder, case_name, &case)?;
        ctx.out.info(&format!(
            "saved test case {case_name} to {}",
            path.display()
        ));
        Ok(())
    }
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
