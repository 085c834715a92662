//! What `ferry init` writes: the files of a new connector folder, planned
//! from a connector's spec and the answers for its options. Planning is pure
//! (no I/O), so the CLI can list, prompt and refuse to overwrite around it.
//! The fixed texts live in `templates/` and are embedded in the binary.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::connector::{Action, FieldType, Spec};

const GITIGNORE: &str = include_str!("../templates/gitignore");
const README: &str = include_str!("../templates/README.md");
/// The `http` connector's manifest and inputs: they drive `ferry sandbox`, so
/// a new folder works at once against a local API.
const HTTP_MANIFEST: &str = include_str!("../templates/http/connector.json");
const HTTP_INPUTS: &str = include_str!("../templates/http/in.json");
/// The code connectors' samples, against the same local API.
const JS_MODULE: &str = include_str!("../templates/js/dataSourceApp.js");
const PY_CONNECTOR: &str = include_str!("../templates/exec/connector.py");
const PY_HELPER: &str = include_str!("../templates/exec/ferry_connector.py");
/// Where `ferry sandbox --port 8787` listens, the http template's default.
pub const SANDBOX_URL: &str = "http://127.0.0.1:8787";

/// One file to write, relative to the new folder.
#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: &'static str,
    pub content: String,
}

/// The value given for one option.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Written into account.json as is.
    Value(Value),
    /// A secret: account.json holds `${VAR}`; the value, when known, goes to `.env`.
    Secret { var: String, value: Option<String> },
}

/// The environment variable a secret option is read from: `VOUCHERIFY_SECRET_KEY`.
pub fn secret_var(spec: &Spec, key: &str) -> String {
    let mut var = spec.code.to_ascii_uppercase().replace('-', "_");
    var.push('_');
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            var.push('_');
        }
        var.push(if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        });
    }
    var
}

/// The value of an answer typed as text (at a prompt, or `--set KEY=VALUE`)
/// for an option of type `kind`, as account.json holds it: a typed `30` for
/// a number is the number 30, `{"rps": 5}` for an object the object, since
/// the connector refuses the string "30" when it opens the account. `Any`
/// takes JSON when the text is JSON, the text otherwise. `Err` says what
/// the text must be, to follow the option's name.
pub fn typed_value(kind: FieldType, text: &str) -> Result<Value, String> {
    let json = || serde_json::from_str::<Value>(text.trim());
    match kind {
        FieldType::String | FieldType::Date | FieldType::Datetime => {
            Ok(Value::String(text.to_string()))
        }
        FieldType::Any => Ok(json().unwrap_or_else(|_| Value::String(text.to_string()))),
        FieldType::Integer => match json() {
            Ok(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
            _ => Err(format!(
                "must be a whole number, such as 30; got \"{text}\""
            )),
        },
        FieldType::Number => match json() {
            Ok(Value::Number(n)) => Ok(Value::Number(n)),
            _ => Err(format!("must be a number, such as 2.5; got \"{text}\"")),
        },
        FieldType::Boolean => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("must be true or false; got \"{text}\"")),
        },
        FieldType::Object => match json() {
            Ok(Value::Object(o)) => Ok(Value::Object(o)),
            Ok(other) => Err(format!(
                "must be a JSON object, such as {{\"key\": \"value\"}}; got {}",
                crate::config::input::kind_of(&other)
            )),
            Err(e) => Err(format!(
                "must be a JSON object, such as {{\"key\": \"value\"}}; {e}"
            )),
        },
        FieldType::Array => match json() {
            Ok(Value::Array(a)) => Ok(Value::Array(a)),
            Ok(other) => Err(format!(
                "must be a JSON array, such as [\"a\", \"b\"]; got {}",
                crate::config::input::kind_of(&other)
            )),
            Err(e) => Err(format!("must be a JSON array, such as [\"a\", \"b\"]; {e}")),
        },
    }
}

/// The files of a connector folder for `spec` with these answers.
pub fn plan(spec: &Spec, answers: &BTreeMap<String, Answer>) -> Vec<File> {
    let mut account = Map::new();
    account.insert("connector".into(), json!(spec.code));
    let mut env_example =
        String::from("# Values for the ${VARIABLES} in account.json. Copy to .env.\n");
    let mut env = String::new();
    // The spec's options in their order, then a code connector's own keys.
    let keys = spec.options.iter().map(|o| o.key).chain(
        answers
            .keys()
            .map(String::as_str)
            .filter(|k| spec.option(k).is_none()),
    );
    for key in keys {
        match answers.get(key) {
            Some(Answer::Value(v)) => {
                account.insert(key.into(), v.clone());
            }
            Some(Answer::Secret { var, value }) => {
                account.insert(key.into(), json!(format!("${{{var}}}")));
                env_example.push_str(&format!("{var}=\n"));
                if let Some(value) = value {
                    env.push_str(&format!("{var}={}\n", dotenv_value(value)));
                }
            }
            None => {}
        }
    }
    let sample = samples(spec.code);
    if !sample.is_empty() && !account.contains_key("baseUrl") {
        account.insert("baseUrl".into(), json!(SANDBOX_URL));
    }
    let inputs = if spec.code == "http" || !sample.is_empty() {
        HTTP_INPUTS.to_string()
    } else {
        pretty(&inputs(spec))
    };
    let mut files = vec![
        File {
            path: "account.json",
            content: pretty(&Value::Object(account)),
        },
        File {
            path: "in.json",
            content: inputs,
        },
        File {
            path: ".env.example",
            content: env_example,
        },
        File {
            path: ".gitignore",
            content: GITIGNORE.to_string(),
        },
        File {
            path: "README.md",
            content: readme(spec),
        },
    ];
    if spec.code == "http" {
        files.push(File {
            path: "connector.json",
            content: HTTP_MANIFEST.to_string(),
        });
    }
    files.extend(sample);
    if !env.is_empty() {
        files.push(File {
            path: ".env",
            content: env,
        });
    }
    files
}

/// The code a code connector's folder starts with: a working sample
/// against `ferry sandbox` (what `syncpeng init -d` writes for a module,
/// and its Python counterpart with the protocol helper).
fn samples(code: &str) -> Vec<File> {
    let file = |path, content: &str| File {
        path,
        content: content.to_string(),
    };
    match code {
        "js" => vec![file("dataSourceApp.js", JS_MODULE)],
        "exec" => vec![
            file("connector.py", PY_CONNECTOR),
            file("ferry_connector.py", PY_HELPER),
        ],
        _ => Vec::new(),
    }
}

/// A value as `.env` reads it back unchanged (config/env.rs has the
/// dialect): as it is when nothing in it means something to the reader,
/// else single-quoted, else double-quoted with escapes. A line break is
/// escaped, so a value can never add a line (a variable) of its own.
fn dotenv_value(value: &str) -> String {
    let special = |c: char| matches!(c, '\n' | '\r');
    let plain = !value.contains(special)
        && value.trim() == value
        && !value.starts_with(['"', '\''])
        && crate::config::env::parse_dotenv(&format!("X={value}"), ".env")
            .is_ok_and(|vars| vars.get("X").map(String::as_str) == Some(value));
    if plain {
        value.to_string()
    } else if !value.contains('\'') && !value.contains(special) {
        format!("'{value}'")
    } else {
        let mut out = String::from("\"");
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    s
}

/// An example record from the spec's declared fields.
fn example_record(spec: &Spec) -> Map<String, Value> {
    let mut record = Map::new();
    for field in &spec.fields {
        if let Some(example) = field.example.and_then(|t| serde_json::from_str(t).ok()) {
            record.insert(field.name.to_string(), example);
            continue;
        }
        let value = match (field.name.as_ref(), field.kind) {
            ("id", _) => json!("example-1"),
            (name, FieldType::String) if name.contains("email") => json!("ada@example.com"),
            (_, FieldType::String) => json!("Ada Lovelace"),
            (_, FieldType::Number | FieldType::Integer) => json!(1),
            (_, FieldType::Boolean) => json!(true),
            (_, FieldType::Date) => json!("1815-12-10"),
            (_, FieldType::Datetime) => json!("2026-01-01T00:00:00Z"),
            (_, FieldType::Object) => json!({}),
            (_, FieldType::Array) => json!([]),
            (_, FieldType::Any) => json!("value"),
        };
        record.insert(field.name.to_string(), value);
    }
    if spec.extra_fields && record.len() < 2 {
        record.insert("email".into(), json!("ada@example.com"));
        record.insert("name".into(), json!("Ada Lovelace"));
    }
    record
}

/// The change in.json's patch makes: the first field the spec gives an
/// example for, other than its ids and emails (a connector's own notion of
/// a sensible change), or a name.
fn patch_example(spec: &Spec) -> Value {
    let declared = spec.fields.iter().find_map(|f| {
        let plain = f.name != "id" && !f.name.contains("email");
        let example = f.example.filter(|_| plain)?;
        Some(json!({ f.name.as_ref(): serde_json::from_str::<Value>(example).ok()? }))
    });
    declared.unwrap_or_else(|| json!({ "name": "Ada King" }))
}

/// in.json with one example section per action the connector supports.
fn inputs(spec: &Spec) -> Value {
    let record = example_record(spec);
    let id = record
        .get("id")
        .cloned()
        .unwrap_or_else(|| json!("example-1"));
    let mut sections = Map::new();
    for action in &spec.actions() {
        let section = match action {
            Action::Get => json!({ "id": id }),
            Action::Insert => json!({ "value": record }),
            Action::Patch => json!({ "id": id, "value": patch_example(spec) }),
            Action::Delete => json!({ "id": id }),
            Action::GetUpdates => json!({}),
            _ => continue,
        };
        let name = serde_json::to_value(action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        sections.insert(name, section);
    }
    Value::Object(sections)
}

/// What a code connector's README adds after the examples: how to test it
/// offline, and for `exec` the protocol in a nutshell for other languages.
fn after(code: &str) -> String {
    match code {
        "js" => OFFLINE.to_string(),
        "exec" => format!("{OFFLINE}{PROTOCOL}"),
        _ => String::new(),
    }
}

const OFFLINE: &str = r#"
Record what the API answered, then test offline (the sandbox stopped):

```sh
ferry --record --save-case get-one get
ferry test
```
"#;

const PROTOCOL: &str = r#"
## The protocol, for other languages

`ferry` runs the program (`command` in account.json) in this folder and
talks JSON-RPC 2.0 with it, one message a line: requests on its stdin,
answers on its stdout; stderr is its log. ferry asks one thing at a time;
while it waits, the program may ask ferry to send an HTTP request for it
(so ferry's rate limits, retries, redaction and cassettes apply):

```text
-> {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"account":{...},"folder":"..."}}
<- {"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"capabilities":["get","insert","getUpdates"]}}
-> {"jsonrpc":"2.0","id":2,"method":"get","params":{"id":"cus_0000001"}}
<- {"jsonrpc":"2.0","id":"a","method":"http","params":{"method":"GET","url":"http://127.0.0.1:8787/customers/cus_0000001","headers":{}}}
-> {"jsonrpc":"2.0","id":"a","result":{"status":200,"headers":{...},"body":"{\"id\":\"cus_0000001\",...}"}}
<- {"jsonrpc":"2.0","id":2,"result":{"id":"cus_0000001","email":"..."}}
```

A failed call answers `{"error": {"code": -32000, "message": "...", "data":
{"kind": "not_found"}}}` (kinds: config, auth, not_found, rate_limited,
transient, invalid_record, skipped). When ferry closes stdin, exit. The
whole protocol is in ferry's documentation, docs/protocol.md in its
repository.
"#;

fn readme(spec: &Spec) -> String {
    let options: String = spec
        .options
        .iter()
        .map(|o| {
            let default = o
                .default
                .as_ref()
                .map(|d| format!("`{d}`"))
                .unwrap_or_default();
            format!(
                "| `{}` | {} | {} | {} | {} |\n",
                o.key,
                if o.required { "yes" } else { "no" },
                if o.secret { "yes" } else { "no" },
                default,
                o.description
            )
        })
        .collect();
    let actions: Vec<String> = spec
        .actions()
        .iter()
        .filter_map(|a| serde_json::to_value(a).ok())
        .filter_map(|v| v.as_str().map(|s| format!("`{s}`")))
        .collect();
    let mut examples = vec!["ferry check".to_string()];
    for (action, line) in [
        (
            Action::Insert,
            "ferry insert             # in.json's \"insert\" value",
        ),
        (
            Action::Get,
            "ferry get                # the id in in.json's \"get\"",
        ),
        (
            Action::Patch,
            "ferry patch              # in.json's \"patch\" id and value",
        ),
        (
            Action::GetUpdates,
            "ferry getupdates         # every record, then pass --last-sync",
        ),
        (
            Action::Delete,
            "ferry delete             # in.json's \"delete\" id",
        ),
    ] {
        if spec.can(action) {
            examples.push(line.to_string());
        }
    }
    let before = if spec.code == "js" || spec.code == "exec" {
        let file = if spec.code == "js" {
            "`dataSourceApp.js`"
        } else {
            "`connector.py` (with `ferry_connector.py`, which speaks ferry's protocol)"
        };
        format!(
            "{file} is the connector. It starts out as a sample for the local\nAPI: run `ferry sandbox --port 8787` in another terminal ({SANDBOX_URL}),\nthen:\n\n"
        )
    } else if spec.code == "http" {
        format!(
            "`connector.json` describes the API. It starts out describing the local sample\nAPI: run `ferry sandbox --port 8787` in another terminal ({SANDBOX_URL}),\nthen:\n\n"
        )
    } else {
        String::new()
    };
    README
        .replace("{{label}}", spec.label)
        .replace("{{code}}", spec.code)
        .replace("{{description}}", spec.description)
        .replace("{{options}}", &options)
        .replace("{{actions}}", &actions.join(", "))
        .replace("{{examples}}", &examples.join("\n"))
        .replace("{{before}}", &before)
        .replace("{{after}}", &after(spec.code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::registry;

    #[test]
    fn dotenv_values_read_back_unchanged() {
        for value in [
            "plain",
            "  spaced ",
            "\"quoted\"",
            "a#b",
            "a #b",
            "#x",
            "it's \"both\"",
            "a\nX=1",
            "back\\slash 'and' \"quote\"\r",
            "",
        ] {
            let line = format!("X={}\n", dotenv_value(value));
            let vars = crate::config::env::parse_dotenv(&line, ".env").unwrap();
            assert_eq!(vars["X"], value, "{line}");
        }
    }

    #[test]
    fn random_dotenv_values_read_back_unchanged_and_add_no_line() {
        use rand::{Rng, SeedableRng};
        const ALPHABET: &[char] = &[
            'a', 'Z', '0', ' ', '\t', '#', '"', '\'', '\\', '=', '$', '{', '}', 'n', '\n', '\r',
            'é', '\u{feff}',
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        for _ in 0..20_000 {
            let len = rng.random_range(0..12);
            let value: String = (0..len)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect();
            let line = format!("X={}\n", dotenv_value(&value));
            let vars = crate::config::env::parse_dotenv(&line, ".env")
                .unwrap_or_else(|e| panic!("{value:?} as {line:?}: {e}"));
            assert_eq!(vars.len(), 1, "{value:?} as {line:?}");
            assert_eq!(vars["X"], value, "{line:?}");
        }
    }

    #[test]
    fn typed_answers_follow_the_option_type() {
        assert_eq!(typed_value(FieldType::Integer, "30"), Ok(json!(30)));
        assert_eq!(typed_value(FieldType::Number, " 2.5 "), Ok(json!(2.5)));
        assert_eq!(
            typed_value(FieldType::Object, r#"{"rps": 5}"#),
            Ok(json!({"rps": 5}))
        );
        assert_eq!(typed_value(FieldType::Array, "[1]"), Ok(json!([1])));
        assert_eq!(typed_value(FieldType::Boolean, "true"), Ok(json!(true)));
        assert_eq!(typed_value(FieldType::String, "30"), Ok(json!("30")));
        assert_eq!(typed_value(FieldType::Any, "30"), Ok(json!(30)));
        assert_eq!(typed_value(FieldType::Any, "abc"), Ok(json!("abc")));
        for (kind, text, says) in [
            (FieldType::Integer, "2.5", "whole number"),
            (FieldType::Integer, "ten", "whole number"),
            (FieldType::Number, "fast", "a number"),
            (FieldType::Boolean, "yes", "true or false"),
            (FieldType::Object, "5", "got a number"),
            (FieldType::Object, "{rps: 5}", "JSON object"),
            (FieldType::Array, "a, b", "JSON array"),
        ] {
            let err = typed_value(kind, text).unwrap_err();
            assert!(err.contains(says), "{kind:?} {text}: {err}");
        }
    }

    #[test]
    fn secret_variables_are_upper_snake_case() {
        let spec = registry::spec("sqlite").unwrap();
        assert_eq!(secret_var(&spec, "secretKey"), "SQLITE_SECRET_KEY");
        assert_eq!(secret_var(&spec, "token"), "SQLITE_TOKEN");
    }

    #[test]
    fn every_connector_plans_json_that_parses() {
        for spec in registry::specs() {
            let answers = BTreeMap::new();
            for file in plan(&spec, &answers) {
                if file.path.ends_with(".json") {
                    let parsed: Result<Value, _> = serde_json::from_str(&file.content);
                    assert!(parsed.is_ok(), "{} of {}", file.path, spec.code);
                }
            }
        }
    }

    #[test]
    fn secrets_become_references_and_dotenv_lines() {
        let spec = registry::spec("sqlite").unwrap();
        let answers = BTreeMap::from([(
            "path".to_string(),
            Answer::Secret {
                var: "X_PATH".into(),
                value: Some("v".into()),
            },
        )]);
        let files = plan(&spec, &answers);
        let account = files.iter().find(|f| f.path == "account.json").unwrap();
        assert!(account.content.contains("\"${X_PATH}\""));
        let env = files.iter().find(|f| f.path == ".env").unwrap();
        assert_eq!(env.content, "X_PATH=v\n");
    }
}
