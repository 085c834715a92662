//! Finding a built-in connector by name. The list itself is the one
//! [`connectors!`](super::connectors) line in `connector/mod.rs`: adding a
//! connector is its module beside this file and its name there.

use anyhow::Result;

use crate::config::Account;
use crate::connector::{Connector, Env, Options, Spec};
use crate::error::usage;

/// How to describe and open one connector.
pub struct Entry {
    pub spec: fn() -> Spec,
    pub open: fn(&Env, Options) -> Result<Box<dyn Connector>>,
    /// Panics unless its `Config` reads an account that sets every option
    /// its spec declares (a test of each connector, derived from the list).
    #[cfg(test)]
    pub(crate) reads_its_options: fn(&str),
}

/// Every built-in connector, in the order `ferry connectors` lists them.
pub fn entries() -> &'static [Entry] {
    super::BUILTINS
}

/// Every built-in connector's spec.
pub fn specs() -> Vec<Spec> {
    entries().iter().map(|e| (e.spec)()).collect()
}

/// The spec of `code`, or an error that suggests the nearest name.
pub fn spec(code: &str) -> Result<Spec> {
    find(code, "").map(|e| (e.spec)())
}

/// Open the connector an account names, with its options validated and its
/// secrets registered for redaction.
pub fn open(env: &Env, account: &Account) -> Result<Box<dyn Connector>> {
    let entry = find(&account.connector, &format!(" in {}", account.source))?;
    let spec = (entry.spec)();
    let options = Options::new(&spec, account)?;
    env.out().add_secrets(options.secrets().iter().cloned());
    (entry.open)(env, options)
}

/// The entry for `code`; `place` (" in account.json") completes the error.
fn find(code: &str, place: &str) -> Result<&'static Entry> {
    let entries = entries();
    let codes: Vec<&'static str> = entries.iter().map(|e| (e.spec)().code).collect();
    match entries.iter().find(|e| (e.spec)().code == code) {
        Some(e) => Ok(e),
        None => {
            let hint = match nearest(code, &codes) {
                Some(n) => format!("did you mean \"{n}\"? `ferry connectors` lists them all"),
                None => format!("the built-in connectors are: {}", codes.join(", ")),
            };
            Err(usage(format!("unknown connector \"{code}\"{place}"))
                .hint(hint)
                .into())
        }
    }
}

pub use crate::config::nearest;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::{actions_of, Declared};
    use crate::http::HttpEnv;

    /// The actions a spec shows and the accessors of the opened connector
    /// come from one declaration; this holds every built-in connector to
    /// it, opened with a value for each required option (nothing is sent).
    /// A capability declared `if` a condition may be present or not; the
    /// `http` connector opens with the `ferry init` manifest.
    #[test]
    fn a_specs_actions_are_what_the_opened_connector_can_do() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(
            dir.path().join("connector.json"),
            include_str!("../../templates/http/connector.json"),
        )
        .unwrap();
        std::fs::write(dir.path().join("dataSourceApp.js"), "module.exports = {};").unwrap();
        let env = Env {
            http: HttpEnv::default(),
            folder: dir.path().to_path_buf(),
        };
        for spec in specs() {
            let code = spec.code;
            let options = spec
                .options
                .iter()
                .filter(|o| o.required)
                .map(|o| {
                    // A URL option must parse as one (postgres), and an
                    // API key end in its data center (mailchimp).
                    let v: serde_json::Value = match o.key {
                        "url" => format!("{code}://t@localhost/t").into(),
                        "apiKey" => format!("t.{code}-us1").into(),
                        _ => format!("t.{code}").into(),
                    };
                    let v = match o.kind {
                        crate::connector::FieldType::Array => serde_json::json!([v]),
                        _ => v,
                    };
                    (o.key.to_string(), v)
                })
                .collect();
            let account = Account {
                source: "account.json".into(),
                folder: dir.path().to_path_buf(),
                connector: code.into(),
                options,
                from_vars: Vec::new(),
            };
            let connector = open(&env, &account).unwrap_or_else(|e| panic!("{code}: {e:#}"));
            let opened = crate::connector::actions(connector.as_ref());
            let every: Vec<Declared> = spec
                .capabilities
                .iter()
                .map(|d| Declared { always: true, ..*d })
                .collect();
            let at_most = actions_of(&every);
            for action in spec.actions() {
                assert!(opened.contains(&action), "{code} cannot {action:?}");
            }
            for action in &opened {
                assert!(
                    at_most.contains(action),
                    "{code} does not declare {action:?}"
                );
            }
        }
    }
}
