//! The `exec` connector: any program that speaks ferry's connector
//! protocol on stdin and stdout (docs/protocol.md), with ferry's HTTP
//! engine under its `http` requests. [`code::Code`] is the connector;
//! [`peer`] runs the child and the conversation. The `js` connector is
//! this plus an embedded Node harness.

pub mod code;
mod export;
pub mod peer;
mod source;

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::HttpOptions;
use crate::connector::{Connector, Env, FieldType, Options, Role, Spec};
use crate::error::usage;
use crate::http::Policy;
use code::Code;
use peer::Launch;

/// The longest call a code connector may be given (`callTimeoutSecs`).
const MAX_CALL_SECS: u64 = 86_400;

connector_options! {
    /// The options of an `exec` account; every other key of account.json
    /// is the program's own and is handed to it in `initialize`.
    pub struct ExecOptions {
        /// The program and its arguments, run in the connector folder: ["python3", "connector.py"]
        #[option(label = "Command", kind = FieldType::Array, default = vec!["python3", "connector.py"])]
        pub command: Vec<String>,
        /// The field that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
        /// Seconds one call to the program may take before it is stopped (1 to 86400)
        #[option(label = "Call timeout", kind = FieldType::Integer, default = 60)]
        pub call_timeout_secs: Num,
        /// The engine's options (baseUrl, rateLimit, retry, timeoutSecs) for the program's http requests.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = ExecOptions;

pub fn spec() -> Spec {
    Spec {
        code: "exec",
        label: "Program (any language)",
        description: "A connector written as a program in any language, run as a child process that speaks ferry's protocol on stdin/stdout: one JSON-RPC 2.0 message a line (docs/protocol.md). ferry calls initialize (with account.json's values), then check, get, insert, patch, delete, getUpdates, upsertMany, or exportProfile/exportProfiles (export, Grouparoo-style); the program sends its HTTP requests back to ferry as `http` requests, so rate limits, retries, redaction, -v logging and --record/--replay apply. stderr is its log. Import reads through getUpdates (lastSync null, then each nextSync) and writes through upsertMany, or patch/insert record by record. Every key of account.json besides these options is the program's own.",
        roles: vec![Role::Source, Role::Destination],
        options: ExecOptions::option_specs(),
        fields: Vec::new(),
        extra_fields: true,
        capabilities: Code::CAPABILITIES,
        max_batch_size: 100,
        parallelism: 1,
        account_values: true,
        store: None,
    }
}

/// The engine policy of a code connector: ferry's defaults with the
/// account's overrides.
pub(crate) fn policy(options: &Options, http: &HttpOptions, spec: &Spec) -> Result<Policy> {
    let own: Vec<&str> = (options.values().keys())
        .filter(|k| spec.option(k).is_none())
        .map(String::as_str)
        .collect();
    let mut policy = Policy {
        source: options.source().to_string(),
        // ferry sends what the module puts in its requests: the module
        // reads its credentials from the account's own values.
        auth_hint: Some(format!(
            "the connector's code sends its own credentials, made from the values of {}{}: check them (and the .env variables they name)",
            options.source(),
            match own.as_slice() {
                [] => String::new(),
                keys => format!(" ({})", keys.join(", ")),
            }
        )),
        ..Policy::default()
    };
    http.apply_to(&mut policy)?;
    Ok(policy)
}

/// `callTimeoutSecs`, range-checked.
pub(crate) fn call_timeout(options: &Options, secs: &Num) -> Result<Duration> {
    let secs = secs.whole_in(options.at("callTimeoutSecs"), 1, MAX_CALL_SECS, "seconds")?;
    Ok(Duration::from_secs(secs))
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: ExecOptions = options.parse_part()?;
    let mut command = config.command;
    if command.first().is_none_or(String::is_empty) {
        return Err(
            usage(format!("{}: option \"command\" is empty", options.source()))
                .hint("set it to the program and its arguments: [\"python3\", \"connector.py\"]")
                .into(),
        );
    }
    let shown = crate::shell::join(&command);
    // A program given by a relative path is the folder's, wherever ferry runs.
    if command[0].contains('/') {
        command[0] = options.resolve(&command[0]).display().to_string();
    }
    // It runs beside its account.json, which is not the -C folder when an
    // import names it as --from or --to.
    let launch = Launch {
        folder: options.folder().to_path_buf(),
        name: format!("connector exec (`{shown}`)"),
        shown: shown.clone(),
        timeout: call_timeout(&options, &config.call_timeout_secs)?,
        missing_hint: format!(
            "check \"command\" in {}: its first word must be a program on PATH or a path relative to the connector folder",
            options.source()
        ),
        command,
    };
    let setup = code::Setup {
        spec: spec(),
        launch,
        file: shown,
        id_field: config.id_field,
        vet: accept_any,
    };
    Code::open(env, &options, &config.http, setup)
}

/// `exec` takes any `initialize` answer with capabilities.
fn accept_any(_: &Value) -> Result<()> {
    Ok(())
}
