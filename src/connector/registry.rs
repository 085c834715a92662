//! The one list of built-in connectors. Adding a connector is one line here
//! and one module beside this file.

use anyhow::Result;

use crate::config::Account;
use crate::connector::{Connector, Env, Options, Spec};
use crate::error::usage;

/// How to describe and open one connector.
pub struct Entry {
    pub spec: fn() -> Spec,
    pub open: fn(&Env, Options) -> Result<Box<dyn Connector>>,
}

/// Every built-in connector, in the order `ferry connectors` lists them.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            spec: super::sqlite::spec,
            open: super::sqlite::open,
        },
        Entry {
            spec: super::csv::spec,
            open: super::csv::open,
        },
        Entry {
            spec: super::jsonl::spec,
            open: super::jsonl::open,
        },
        Entry {
            spec: super::http::spec,
            open: super::http::open,
        },
        Entry {
            spec: super::segment::spec,
            open: super::segment::open,
        },
        Entry {
            spec: super::voucherify::spec,
            open: super::voucherify::open,
        },
        Entry {
            spec: super::hubspot::spec,
            open: super::hubspot::open,
        },
        Entry {
            spec: super::intercom::spec,
            open: super::intercom::open,
        },
        Entry {
            spec: super::klaviyo::spec,
            open: super::klaviyo::open,
        },
    ]
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
fn find(code: &str, place: &str) -> Result<Entry> {
    let entries = entries();
    let codes: Vec<&'static str> = entries.iter().map(|e| (e.spec)().code).collect();
    match entries.into_iter().find(|e| (e.spec)().code == code) {
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
    use crate::http::HttpEnv;

    /// The actions a spec shows and the accessors of the opened connector
    /// come from one declaration; this holds them to it for the connectors
    /// that open without a server.
    #[test]
    fn a_specs_actions_are_what_the_opened_connector_can_do() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let env = Env {
            http: HttpEnv::default(),
            folder: dir.path().to_path_buf(),
        };
        for (code, path) in [("sqlite", "t.db"), ("csv", "t.csv"), ("jsonl", "t.jsonl")] {
            let mut options = serde_json::Map::new();
            options.insert("path".into(), path.into());
            let account = Account {
                source: "account.json".into(),
                folder: dir.path().to_path_buf(),
                connector: code.into(),
                options,
            };
            let connector = open(&env, &account).expect("open");
            assert_eq!(
                crate::connector::actions(connector.as_ref()),
                spec(code).unwrap().actions(),
                "{code}"
            );
        }
    }
}
