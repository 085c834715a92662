//! The `js` connector: a SyncPenguin-style JavaScript data source module
//! (`module.exports = { async init(account), get(id), insert(value),
//! patch(id, value), delete(id), getUpdates(lastSync) }`), run unchanged by
//! ferry's Node harness (`harness.js`, embedded in the binary). The harness
//! speaks the `exec` connector's protocol, so this is the `exec` connector
//! with a Node command line: one mechanism, not two.

use anyhow::Result;
use serde_json::Value;

use super::exec::call_timeout;
use super::exec::code::Code;
use super::exec::peer::Launch;
use crate::connector::options::{connector_options, Described, Num};
use crate::connector::saas::HttpOptions;
use crate::connector::{Connector, Env, FieldType, Options, Role, Spec};
use crate::error::usage;

/// The harness, passed to `node -e`.
const HARNESS: &str = include_str!("harness.js");

/// The oldest Node the harness runs on (global `fetch`, `Response`).
const MIN_NODE: u64 = 18;

/// Where to install Node from, for the errors that need it.
const INSTALL_NODE: &str = "install Node.js 18 or newer (Debian/Ubuntu: apt install nodejs; or https://nodejs.org), or set FERRY_NODE to the node program to use";

connector_options! {
    /// The options of a `js` account; every other key of account.json is
    /// the module's own (an API token, a workspace) and reaches its `init`.
    pub struct JsOptions {
        /// The data source module, relative to account.json: CommonJS (.js, .cjs) or an ES module (.mjs)
        #[option(label = "Module", default = "dataSourceApp.js")]
        pub module: String,
        /// The field that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
        /// Seconds one call to the module may take before it is stopped (1 to 86400)
        #[option(label = "Call timeout", kind = FieldType::Integer, default = 60)]
        pub call_timeout_secs: Num,
        /// The engine's options; baseUrl is also the base of this.httpClient's paths.
        #[option(flatten)]
        #[serde(flatten)]
        pub http: HttpOptions,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = JsOptions;

pub fn spec() -> Spec {
    Spec {
        code: "js",
        label: "JavaScript module",
        description: "A SyncPenguin-style data source module run by Node (18 or newer): module.exports = { async init(account), async get(id), async insert(value), async patch(id, value), async delete(id), async getUpdates(lastSync) }, plus optional check() ({success, message}), upsertMany(values) (one {id} or {error} per value), and Grouparoo's exportProfile(profile) or exportProfiles(profiles) for ferry export (each profile {profileId, oldProfileProperties, newProfileProperties, oldGroups, newGroups, toDelete}; answer {success, retryIn?} or, for the batch, errors [{profileId, message, errorLevel: info (skipped) | error (retried)}]). init receives account.json's values; this.httpClient (setHeader, get, post, put, patch, delete; paths under baseUrl; answers the parsed JSON, rejects with .status and .body) and global fetch send through ferry's HTTP engine, so rate limits, retries, redaction, -v logging and --record/--replay apply. getUpdates answers {nextSync, entries: [{id, type, value}]} (\"entires\" is read too). Import reads through getUpdates (lastSync null, then each nextSync) and writes through upsertMany, or patch/insert record by record. The module may require its own node_modules. FERRY_NODE names the node program.",
        roles: vec![Role::Source, Role::Destination],
        options: JsOptions::option_specs(),
        fields: Vec::new(),
        extra_fields: true,
        capabilities: Code::CAPABILITIES,
        max_batch_size: 100,
        parallelism: 1,
        account_values: true,
        store: None,
    }
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: JsOptions = options.parse_part()?;
    let module = options.resolve(&config.module);
    if !module.is_file() {
        return Err(usage(format!(
            "connector js: no module at {} ({})",
            config.module,
            module.display()
        ))
        .hint(format!(
            "write it, or set \"module\" in {} to the module's file; `ferry init DIR --connector js` writes a sample",
            options.source()
        ))
        .into());
    }
    let node = std::env::var("FERRY_NODE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "node".to_string());
    let launch = Launch {
        shown: node.clone(),
        command: vec![
            node,
            "--input-type=commonjs".into(),
            "-e".into(),
            HARNESS.into(),
            module.display().to_string(),
        ],
        folder: options.folder().to_path_buf(),
        name: format!("connector js ({})", config.module),
        timeout: call_timeout(&options, &config.call_timeout_secs)?,
        missing_hint: INSTALL_NODE.to_string(),
    };
    let setup = super::exec::code::Setup {
        spec: spec(),
        launch,
        file: config.module,
        id_field: config.id_field,
        vet: node_is_new_enough,
    };
    Code::open(env, &options, &config.http, setup)
}

/// The harness reports the Node version it runs on; older than
/// [`MIN_NODE`] lacks what it needs.
fn node_is_new_enough(init: &Value) -> Result<()> {
    let version = init.get("node").and_then(Value::as_str).unwrap_or("");
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u64>().ok());
    match major {
        Some(m) if m >= MIN_NODE => Ok(()),
        _ => Err(usage(format!(
            "connector js needs Node.js {MIN_NODE} or newer; this node is {}",
            if version.is_empty() {
                "unknown"
            } else {
                version
            }
        ))
        .hint(INSTALL_NODE)
        .into()),
    }
}
