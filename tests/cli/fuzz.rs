//! A fuzz harness for the parsers of the files users write: connector.json
//! (validation, then request building for every action), account.json
//! (interpolation, option types, the engine's rateLimit/retry/timeoutSecs)
//! and in.json. Each input is a JSON-shaped mutation of the real examples
//! in examples/ and templates/ (a node replaced by an extreme number or a
//! hostile string, a key removed or added, a subtree moved), or a byte-level
//! mutation of their text; the parser must answer `Ok` or `Err`, never panic.
//!
//! `cargo test` runs each parser for a second. For a long run, give the
//! seconds per parser:
//!
//! ```text
//! FERRY_FUZZ_SECS=600 cargo test --test cli fuzz_ -- --nocapture
//! ```
//!
//! It prints how many inputs it tried; a panic fails the test and prints
//! the input that caused it. `FERRY_FUZZ_SEED` repeats a run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use ferry::connector::http::build::Builder;
use ferry::connector::http::manifest;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn seed_file(rel: &str) -> Value {
    let text = std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// How long each parser is fuzzed, and the seed of the run.
fn budget() -> (Duration, u64) {
    let secs = std::env::var("FERRY_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0);
    let seed = std::env::var("FERRY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    (Duration::from_secs_f64(secs), seed)
}

/// Numbers at and past every boundary the parsers convert to.
fn number(rng: &mut StdRng) -> Value {
    let picks: [Value; 18] = [
        json!(0),
        json!(-1),
        json!(1),
        json!(2),
        json!(0.5),
        json!(-0.0),
        json!(1e-300),
        json!(1e20),
        json!(1e300),
        json!(-1e300),
        json!(4294967295u64),
        json!(4294967296u64),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(86400.5),
        json!(0.0001),
        json!(100000),
        json!(1_000_000_001u64),
    ];
    picks[rng.random_range(0..picks.len())].clone()
}

/// Strings that are paths, placeholders, URLs, controls and oddities.
fn string(rng: &mut StdRng) -> Value {
    let picks = [
        "",
        ".",
        "..",
        "../admin",
        "/",
        "//",
        "{",
        "}",
        "{}",
        "{id",
        "{id}",
        "/items/{id}",
        "/x/{nope}",
        "{record}",
        "{records}",
        "{ids}",
        "a\r\nX-Injected: 1",
        "\u{0}",
        "GET",
        "FETCH",
        "http://",
        "http://127.0.0.1:1/",
        "://",
        "%",
        "%zz",
        "/data",
        "data",
        "ü∂😀",
        "${NOPE}",
        "${",
        "1e20",
        "-5",
        "NaN",
        "offset",
        "cursor",
        "page",
        "nextUrl",
        "oauth2",
        "apiKey",
        "query",
        "header",
    ];
    if rng.random_bool(0.03) {
        return Value::String("x".repeat(rng.random_range(1000..20000)));
    }
    Value::String(picks[rng.random_range(0..picks.len())].to_string())
}

fn leaf(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0..=3 => number(rng),
        4..=7 => string(rng),
        8 => Value::Bool(rng.random()),
        _ => match rng.random_range(0..3) {
            0 => Value::Null,
            1 => json!([]),
            _ => json!({}),
        },
    }
}

/// Every key the seeds use, so added keys are ones the schema knows.
fn keys_of(v: &Value, into: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if !into.contains(k) {
                    into.push(k.clone());
                }
                keys_of(v, into);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| keys_of(i, into)),
        _ => {}
    }
}

/// A random node of `v` (the root included), for a mutation to act on:
/// a path of child positions is chosen first, then followed.
fn pick<'a>(v: &'a mut Value, rng: &mut StdRng) -> &'a mut Value {
    let mut path = Vec::new();
    let mut at: &Value = v;
    loop {
        let len = match at {
            Value::Object(m) => m.len(),
            Value::Array(items) => items.len(),
            _ => 0,
        };
        if len == 0 || !rng.random_bool(0.75) {
            break;
        }
        let i = rng.random_range(0..len);
        path.push(i);
        at = match at {
            Value::Object(m) => m.values().nth(i).expect("in range"),
            Value::Array(items) => &items[i],
            _ => unreachable!("only containers have children"),
        };
    }
    let mut node = v;
    for i in path {
        node = match node {
            Value::Object(m) => m.values_mut().nth(i).expect("in range"),
            Value::Array(items) => &mut items[i],
            _ => unreachable!("the path follows containers"),
        };
    }
    node
}

/// One to four JSON-shaped mutations of `seed`.
fn mutate(seed: &Value, keys: &[String], rng: &mut StdRng) -> Value {
    let mut v = seed.clone();
    for _ in 0..rng.random_range(1..=4) {
        let donor = pick(&mut v.clone(), rng).clone();
        let node = pick(&mut v, rng);
        match rng.random_range(0..7) {
            0 | 1 => *node = leaf(rng),
            2 => {
                if let Value::Object(m) = node {
                    if !m.is_empty() {
                        let i = rng.random_range(0..m.len());
                        let k = m.keys().nth(i).cloned().unwrap_or_default();
                        m.remove(&k);
                    }
                }
            }
            3 => {
                if let Value::Object(m) = node {
                    let k = keys[rng.random_range(0..keys.len())].clone();
                    let value = if rng.random_bool(0.5) {
                        leaf(rng)
                    } else {
                        donor
                    };
                    m.insert(k, value);
                }
            }
            4 => *node = donor,
            5 => {
                let inner = node.take();
                *node = if rng.random_bool(0.5) {
                    Value::Array(vec![inner.clone(), inner])
                } else {
                    let mut m = Map::new();
                    m.insert(keys[rng.random_range(0..keys.len())].clone(), inner);
                    Value::Object(m)
                };
            }
            _ => {
                if let Value::Array(items) = node {
                    if let Some(first) = items.first().cloned() {
                        items.push(first);
                    }
                }
            }
        }
    }
    v
}

/// `text` with a few bytes changed, inserted or removed (still UTF-8).
fn mutate_text(text: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let specials = [
        '{', '}', '[', ']', '"', ',', ':', '\\', '\u{feff}', '0', 'e', '-',
    ];
    for _ in 0..rng.random_range(1..=3) {
        if chars.is_empty() {
            break;
        }
        let i = rng.random_range(0..chars.len());
        let c = specials[rng.random_range(0..specials.len())];
        match rng.random_range(0..3) {
            0 => chars[i] = c,
            1 => chars.insert(i, c),
            _ => {
                chars.remove(i);
            }
        }
    }
    chars.into_iter().collect()
}

/// Run `parse` on mutations of `seeds` for the budget; fail on a panic.
/// `parse` answers whether the input was accepted all the way; every seed
/// must be, so that mutations start next to inputs that reach deep.
fn fuzz(name: &str, seeds: &[Value], parse: &dyn Fn(&Value, &str) -> bool) {
    for s in seeds {
        assert!(
            parse(s, &s.to_string()),
            "{name}: the seed is refused:\n{s:#}"
        );
    }
    let (budget, seed) = budget();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys = Vec::new();
    seeds.iter().for_each(|s| keys_of(s, &mut keys));
    let started = Instant::now();
    let mut tried = 0u64;
    let mut accepted = 0u64;
    let mut found = None;
    while started.elapsed() < budget {
        let seed_value = &seeds[rng.random_range(0..seeds.len())];
        let input = mutate(seed_value, &keys, &mut rng);
        // One input in five goes through the text reader first.
        let text = if rng.random_range(0..5) == 0 {
            mutate_text(&input.to_string(), &mut rng)
        } else {
            serde_json::to_string_pretty(&input).unwrap_or_default()
        };
        tried += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            match ferry::config::json::parse(&text, name) {
                Ok(v) => parse(&v, &text),
                Err(_) => false,
            }
        }));
        if let Ok(true) = outcome {
            accepted += 1;
        }
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            found = Some((text, message));
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {tried} inputs ({accepted} accepted) in {secs:.1}s (FERRY_FUZZ_SEED={seed}){}",
        if found.is_some() { "" } else { ", no panic" }
    );
    if let Some((text, message)) = found {
        panic!(
            "{name} panicked ({message}) after {tried} inputs (FERRY_FUZZ_SEED={seed}) on:\n{text}"
        );
    }
}

/// A manifest with every auth, pagination and export action, beside the
/// shipped examples, so mutations reach every branch of the validation.
fn rich_manifest() -> Value {
    json!({
        "name": "rich",
        "baseUrl": "https://api.example.com/v1/",
        "auth": {"type": "oauth2", "tokenUrl": "/oauth/token", "scope": "read"},
        "headers": {"X-Tenant": "{workspace}"},
        "idField": "id",
        "exportKey": "email",
        "rateLimit": {"rps": 5, "burst": 2, "maxInFlight": 4},
        "retry": {"maxAttempts": 3, "maxWaitSecs": 10, "baseDelayMs": 100},
        "resetHeader": "X-Reset",
        "groups": [{"name": "bulk", "path": "/bulk", "methods": ["POST"], "rps": 1, "burst": 1, "maxInFlight": 2}],
        "actions": {
            "check": {"path": "/me"},
            "get": {"path": "/c/{id}", "records": "/data"},
            "insert": {"path": "/c", "body": {"data": "{record}"}, "id": "/data/id"},
            "patch": {"method": "PUT", "path": "/c/{id}", "query": {"w": "{workspace}"}},
            "delete": {"path": "/c/{id}", "headers": {"X-Confirm": "yes"}},
            "list": {"path": "/c", "records": "/data", "pagination": {"type": "page", "pageParam": "p", "sizeParam": "n", "firstPage": 0, "pageSize": 50, "stop": {"hasMore": "/more", "maxPages": 10}}},
            "getupdates": {"path": "/changes", "records": "/data", "since": {"param": "since", "initial": "0", "itemToken": "/t", "nextToken": "/next"}, "deleted": "/gone", "pagination": {"type": "cursor", "cursorPath": "/cursor", "limitParam": "limit", "stop": {"emptyPage": true}}},
            "bulk": {"path": "/bulk", "body": {"items": "{records}"}, "results": "/results", "error": "/err", "batchSize": 50},
            "find": {"path": "/c", "query": {"email": "{key}"}, "records": "/data"},
            "findGroup": {"path": "/g", "query": {"name": "{name}"}},
            "createGroup": {"path": "/g", "body": {"name": "{name}"}},
            "addMembers": {"path": "/g/{group}/members", "body": {"ids": "{ids}"}, "results": "/r", "batchSize": 10},
            "removeMembers": {"path": "/g/{group}/members"}
        }
    })
}

#[test]
fn fuzz_manifest() {
    let mut list = seed_file("examples/sandbox/connector.json");
    list["actions"]["list"]["pagination"] =
        json!({"type": "nextUrl", "nextPath": "/next", "linkHeader": true, "limitParam": "l"});
    let seeds = vec![
        seed_file("examples/sandbox/connector.json"),
        seed_file("templates/http/connector.json"),
        rich_manifest(),
        list,
    ];
    fuzz("connector.json", &seeds, &|value, _| {
        let Ok(m) = manifest::parse(value, "connector.json") else {
            return false;
        };
        // A manifest that validates must also build every request without
        // a panic, with hostile ids and values.
        let b = Builder {
            manifest: m.clone(),
            shown: "connector.json".into(),
            base_url: m
                .base_url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:1".into()),
            vars: [
                ("workspace", "w/.."),
                ("token", "A+b/c=="),
                ("clientId", ".."),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        };
        let record = json!({"id": "..", "email": "a@b"}).as_object().cloned();
        for (name, action) in m.actions_iter() {
            for id in ["..", "a/b", "{id}", ""] {
                let _ = b.request(name, action, Some(id), record.as_ref(), &[], None, None);
            }
            let _ = b.bulk_request(action, &[record.clone().unwrap_or_default()], None);
            let _ = b.members_request(name, action, "..", &["1".into()], None);
        }
        let _ = b.token_request();
        true
    });
}

/// A context for the account parser: no environment, output unused.
fn ctx(folder: &Path) -> ferry::ctx::Ctx {
    ferry::ctx::Ctx {
        cwd: folder.to_path_buf(),
        env: [("TOKEN".to_string(), "A+b/c==".to_string())]
            .into_iter()
            .collect(),
        stdin_tty: false,
        stderr_tty: false,
        stdout_tty: false,
        offline: false,
        out: quiet(),
        folder: folder.to_path_buf(),
        account_file: None,
        account_json: None,
        input_file: None,
        cassette: None,
        clock: Default::default(),
        http_stats: Default::default(),
    }
}

#[test]
fn fuzz_account() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let ctx = ctx(folder.path());
    let seeds = vec![
        seed_file("examples/sandbox/account.json"),
        seed_file("examples/sqlite/account.json"),
        seed_file("account.json.example"),
        json!({"connector": "http", "baseUrl": "http://127.0.0.1:1", "token": "${TOKEN}",
               "rateLimit": {"rps": 5, "burst": 2, "maxInFlight": 4},
               "retry": {"maxAttempts": 3, "maxWaitSecs": 10, "baseDelayMs": 100},
               "timeoutSecs": {"connect": 2, "total": 30}, "params": {"workspace": "acme"}}),
        json!({"connector": "http", "baseUrl": "http://127.0.0.1:1", "timeoutSecs": 3,
               "rateLimit": {"default": {"rps": 1, "burst": 1}}}),
        json!({"connector": "hubspot", "accessToken": "${TOKEN}", "timeoutSecs": 3}),
    ];
    fuzz("account.json", &seeds, &|value, _| {
        let Ok(account) = ctx.account_from(value.clone(), "account.json", folder.path()) else {
            return false;
        };
        let Ok(spec) = ferry::connector::registry::spec(&account.connector) else {
            return false;
        };
        let Ok(options) = ferry::connector::Options::new(&spec, &account) else {
            return false;
        };
        let mut policy = ferry::http::Policy::default();
        ferry::connector::saas::HttpOptions::apply_account(&options, &mut policy).is_ok()
    });
}

#[test]
fn fuzz_in_json() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let ctx = ctx(folder.path());
    let file = folder.path().join("in.json");
    let seeds = vec![
        seed_file("examples/sandbox/in.json"),
        seed_file("examples/sqlite/in.json"),
        seed_file("templates/http/in.json"),
        seed_file("in.json.example"),
    ];
    fuzz("in.json", &seeds, &|_, text| {
        std::fs::write(&file, text).expect("write in.json");
        let Ok(inputs) =
            ferry::config::input::Inputs::load(&ctx.cwd, &ctx.out, folder.path(), None)
        else {
            return false;
        };
        for action in ["get", "insert", "patch", "delete", "getupdates", "export"] {
            for key in ["id", "value", "lastSync", "limit"] {
                let _ = inputs.get(action, key);
                let _ = inputs.string(action, key, None);
            }
        }
        true
    });
}

/// An output that prints nothing: the parsers' warnings (an unknown in.json
/// section) would otherwise fill the terminal of a long run.
fn quiet() -> ferry::output::Output {
    let out = ferry::output::Output::new();
    out.set_verbosity(ferry::output::Verbosity::Quiet);
    out
}
