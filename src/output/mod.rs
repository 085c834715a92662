//! Every byte ferry shows the user passes through [`Output`]: the JSON result
//! on stdout (or `-o FILE`), logs and warnings on stderr. It is also the one
//! place secrets are redacted, so no command can forget to.

pub mod progress;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::error::{exit_code_for, find_failure, is_broken_pipe, Kind};

/// How much ferry says on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

#[derive(Default)]
struct State {
    secrets: Vec<String>,
    result_file: Option<PathBuf>,
    verbosity: Option<Verbosity>,
}

/// The shared writer; cheap to clone.
#[derive(Clone, Default)]
pub struct Output {
    state: Arc<RwLock<State>>,
}

/// What a redacted secret looks like everywhere.
pub const REDACTED: &str = "***";

impl Output {
    pub fn new() -> Output {
        Output::default()
    }

    /// An output for errors that happen before the context exists.
    pub fn stderr_only() -> Output {
        Output::default()
    }

    pub fn set_verbosity(&self, v: Verbosity) {
        self.write_state().verbosity = Some(v);
    }

    pub fn verbosity(&self) -> Verbosity {
        self.read_state().verbosity.unwrap_or(Verbosity::Normal)
    }

    /// Send the result to `path` (atomically) instead of stdout.
    pub fn set_result_file(&self, path: Option<PathBuf>) {
        self.write_state().result_file = path;
    }

    /// Register secret values; from now on they are shown as `***` in
    /// every form they take on the way out (see [`encoded_forms`]).
    /// Very short values are ignored: masking "1" would garble every number.
    pub fn add_secrets<I: IntoIterator<Item = String>>(&self, secrets: I) {
        let mut state = self.write_state();
        for secret in secrets {
            if secret.len() < 4 {
                continue;
            }
            for s in encoded_forms(&secret) {
                if !state.secrets.contains(&s) {
                    state.secrets.push(s);
                }
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        state.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Replace every registered secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let state = self.read_state();
        let mut text = text.to_string();
        for s in &state.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), REDACTED);
            }
        }
        text
    }

    /// Print the command's result: pretty JSON on stdout, or into the `-o` file.
    pub fn result(&self, value: &Value) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(value).context("could not render the result")?;
        text.push('\n');
        let text = self.redact(&text);
        let file = self.read_state().result_file.clone();
        match file {
            Some(path) => crate::fsutil::write_bytes_atomic(&path, text.as_bytes())
                .with_context(|| format!("could not write the result to {}", path.display())),
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(text.as_bytes())?;
                stdout.flush()?;
                Ok(())
            }
        }
    }

    /// A line for the user that is not the result (shown unless `-q`).
    pub fn info(&self, msg: &str) {
        if self.verbosity() >= Verbosity::Normal {
            self.eprint(msg);
        }
    }

    /// A warning (shown unless `-q`).
    pub fn warn(&self, msg: &str) {
        if self.verbosity() >= Verbosity::Normal {
            self.eprint(&format!("warning: {msg}"));
        }
    }

    /// A log line shown with `-v`.
    pub fn verbose(&self, msg: &str) {
        if self.verbosity() >= Verbosity::Verbose {
            self.eprint(msg);
        }
    }

    /// A log line shown with `-vv`.
    pub fn debug(&self, msg: &str) {
        if self.verbosity() >= Verbosity::Debug {
            self.eprint(msg);
        }
    }

    /// Raw text for stdout that is not a JSON result (clap's help, the sandbox banner).
    pub fn stdout_text(&self, text: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(self.redact(text).as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Raw text for stderr, always shown (clap's usage errors).
    pub fn stderr_text(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(self.redact(text).as_bytes());
    }

    fn eprint(&self, msg: &str) {
        let mut line = self.redact(msg);
        line.push('\n');
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line.as_bytes());
    }

    fn read_state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// The characters RFC 3986 leaves unreserved: every other one is
/// percent-encoded in a path segment or a query component.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What the WHATWG URL parser percent-encodes in a path it is given raw.
const URL_PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Every spelling of `secret` that may reach an output: as it is; percent-
/// encoded as a path segment or query value (a space as `%20` or `+`, hex in
/// either case, `/` kept or not); JSON-escaped (with `/` as `\/` too), as a
/// JSON file or a vendor's echo shows it.
fn encoded_forms(secret: &str) -> Vec<String> {
    let percent = percent_encoding::utf8_percent_encode(secret, UNRESERVED).to_string();
    // What `url` makes of a path it is handed as is: `/` and `+` kept.
    let path = percent_encoding::utf8_percent_encode(secret, URL_PATH).to_string();
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = serde_json::to_string(secret).unwrap_or_default();
    let json = json[1..json.len().saturating_sub(1).max(1)].to_string();
    let mut forms = vec![
        secret.to_string(),
        percent.clone(),
        lower_hex(&percent),
        form.clone(),
        lower_hex(&form),
        path,
        json.replace('/', "\\/"),
        json,
    ];
    forms.sort();
    forms.dedup();
    forms.retain(|f| f.len() >= 4);
    forms
}

/// `text` with the hex digits of its `%XX` escapes in lower case.
fn lower_hex(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// Print an error chain once, with its hint, and return its exit status.
pub fn report_error(out: &Output, err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    let mut text = format!("error: {err}\n");
    for cause in err.chain().skip(1) {
        text.push_str(&format!("  caused by: {cause}\n"));
    }
    let failure = find_failure(err);
    let hint = match failure.and_then(|f| f.hint.as_deref()) {
        Some(hint) => hint,
        None => fallback_hint(err, failure.map(|f| f.kind)),
    };
    text.push_str(&format!("hint: {hint}\n"));
    out.stderr_text(&text);
    exit_code_for(err)
}

/// The next step for an error whose code gave none, by what kind of error
/// it is: every error ends with a `hint:` line.
fn fallback_hint(err: &anyhow::Error, kind: Option<Kind>) -> &'static str {
    let io = err
        .chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    match (kind, io) {
        (_, Some(std::io::ErrorKind::NotFound)) => "check the path: it is relative to the current directory, or to the connector folder for paths in account.json",
        (_, Some(std::io::ErrorKind::PermissionDenied)) => "check the permissions of the file and its folder",
        (Some(Kind::Usage), _) => "fix what the message names and run the command again; add --help to a command to see its options",
        (Some(Kind::Unsupported), _) => "`ferry connectors NAME` lists the actions a connector has",
        (Some(Kind::NotFound), _) => "check the id, and the folder (-C DIR) the command ran in",
        (Some(Kind::Interrupted), _) => "run the same command again to go on",
        (Some(Kind::Failed), _) | (None, _) => "run it again with -v to see each step and request (-vv adds headers and bodies)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_a_hint_gets_one_by_its_kind() {
        let missing = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound))
            .context("could not read x.json");
        assert!(fallback_hint(&missing, None).starts_with("check the path"));
        let usage: anyhow::Error = crate::error::usage("bad").into();
        assert!(fallback_hint(&usage, Some(Kind::Usage)).contains("--help"));
        let plain = anyhow::anyhow!("something broke");
        assert!(fallback_hint(&plain, None).contains("-v"));
        let gone: anyhow::Error = crate::error::not_found("no record x").into();
        assert!(fallback_hint(&gone, Some(Kind::NotFound)).contains("check the id"));
    }

    #[test]
    fn every_encoded_form_of_a_secret_is_masked() {
        let out = Output::new();
        out.add_secrets(["A+b/c== \"q\"".to_string()]);
        for shown in [
            "A+b/c== \"q\"",
            "A%2Bb%2Fc%3D%3D%20%22q%22",
            "A%2bb%2fc%3d%3d%20%22q%22",
            "A%2Bb%2Fc%3D%3D+%22q%22",
            "A+b/c==%20%22q%22",
            "A+b/c== \\\"q\\\"",
            "A+b\\/c== \\\"q\\\"",
        ] {
            assert_eq!(out.redact(&format!("<{shown}>")), "<***>", "{shown}");
        }
    }
}
