//! Connectors written in code: the `js` connector running a SyncPenguin-style
//! module through real Node, and the `exec` connector running a Python
//! program over ferry's protocol, both against `ferry sandbox` (their HTTP
//! goes through ferry's engine), with every documented error.

use crate::support::{Folder, Run, Sandbox};

/// The canary token the sandbox demands: it must never be printed or saved.
const TOKEN: &str = "canary-js-Tok3n";

/// A folder from `ferry init --connector CODE`, pointed at `sandbox` with
/// the canary token.
fn scaffold(code: &str, sandbox: &Sandbox) -> Folder {
    let f = Folder::new();
    let run = f.run(&["init", ".", "--connector", code, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.render());
    set_account(
        &f,
        serde_json::json!({"baseUrl": sandbox.url, "apiToken": TOKEN}),
    );
    f
}

/// Set `values` (an object) in the folder's account.json.
fn set_account(f: &Folder, values: serde_json::Value) {
    let mut account: serde_json::Value = serde_json::from_str(&f.read("account.json")).unwrap();
    for (k, v) in values.as_object().unwrap() {
        account[k] = v.clone();
    }
    f.write("account.json", &account.to_string());
}

fn sandbox() -> Sandbox {
    Sandbox::start(&["--port", "0", "--records", "5"])
}

/// A folder with `module` as dataSourceApp.js and an account on `url`.
fn module(url: &str, source: &str) -> Folder {
    let f = Folder::new();
    f.write(
        "account.json",
        &format!(r#"{{"connector": "js", "baseUrl": "{url}", "apiToken": "{TOKEN}"}}"#),
    );
    f.write("dataSourceApp.js", source);
    f
}

fn snapshot(name: &str, run: &Run) {
    run.hides(&[TOKEN], "the token");
    insta::assert_snapshot!(name, run.render());
}

/// [`snapshot`] for an export's summary, its timings and state hash filtered.
fn snapshot_export(name: &str, run: &Run) {
    run.hides(&[TOKEN], "the token");
    insta::assert_snapshot!(name, crate::export::render(run));
}

/// The sample `init --connector CODE` writes, through check, get,
/// insert, patch and delete against a fresh sandbox, each snapshotted
/// (`js_*` for js, `py_*` for the Python exec sample).
fn every_action(code: &str) -> (Sandbox, Folder) {
    let s = sandbox();
    let f = scaffold(code, &s);
    let prefix = if code == "js" { "js" } else { "py" };
    for (name, args) in [
        ("check", &["check"][..]),
        ("get", &["get"]),
        ("insert", &["insert"]),
        ("patch", &["patch", "--id", "cus_0000003"]),
        ("delete", &["delete", "--id", "cus_0000004"]),
    ] {
        snapshot(&format!("{prefix}_{name}"), &f.run(args));
    }
    (s, f)
}

#[test]
fn the_js_sample_runs_every_action_against_the_sandbox() {
    let (s, f) = every_action("js");
    snapshot("js_getupdates", &f.run(&["getupdates"]));
    assert_eq!(s.get("/customers/cus_0000003")["name"], "Grace B. Hopper");
    assert_eq!(s.get("/customers/cus_0000006")["email"], "ada@example.com");
    let gone = s.get("/customers/cus_0000004");
    assert!(
        gone["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{gone}"
    );
}

#[test]
fn the_python_sample_runs_every_action_against_the_sandbox() {
    let (s, f) = every_action("exec");
    let updates = f.run(&["getupdates"]).ok_json();
    let ids: Vec<&str> = updates["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "cus_0000001",
            "cus_0000002",
            "cus_0000005",
            "cus_0000006",
            "cus_0000003",
            "cus_0000004"
        ]
    );
    assert_eq!(updates["entries"][5]["type"], "delete");
    assert_eq!(s.get("/customers/cus_0000003")["name"], "Grace B. Hopper");
    let missing = f.run(&["get", "--id", "cus_0000004"]);
    snapshot("py_get_missing", &missing);
}

#[test]
fn requests_show_on_vv_redacted_and_the_module_log_on_stderr() {
    let s = sandbox();
    let f = module(
        &s.url,
        r#"module.exports = {
  async init(account) { this.httpClient.setHeader('Authorization', 'Bearer ' + account.apiToken); },
  async get(id) { console.log('getting', id, 'with', this.httpClient.headers.Authorization); return this.httpClient.get('/customers/' + id); },
};"#,
    );
    let run = f.run(&["-vv", "get", "--id", "cus_0000001"]);
    assert_eq!(run.code, 0, "{}", run.render());
    run.hides(&[TOKEN], "the token");
    assert!(
        run.stderr.contains("> GET http://127.0.0.1:"),
        "{}",
        run.render()
    );
    assert!(
        run.stderr.contains("> Authorization: ***"),
        "{}",
        run.render()
    );
    assert!(
        run.stderr
            .contains("connector: getting cus_0000001 with Bearer ***"),
        "{}",
        run.render()
    );
}

#[test]
fn recorded_cases_pass_offline_and_hold_no_secret() {
    let s = sandbox();
    let f = scaffold("js", &s);
    for (case, args) in [
        ("get", &["get"][..]),
        ("insert", &["insert"]),
        ("updates", &["getupdates"]),
    ] {
        let mut full = args.to_vec();
        full.extend_from_slice(&["--record", "--save-case", case]);
        let run = f.run(&full);
        assert_eq!(run.code, 0, "{}", run.render());
    }
    drop(s);
    let run = f.run(&["test"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["passed"], 3, "{}", run.render());
    for dir in ["tests", "cassettes"] {
        for entry in std::fs::read_dir(f.join(dir)).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            assert!(
                !text.contains(TOKEN) && !text.contains("Y2FuYXJ5"),
                "{dir}: {text}"
            );
        }
    }
}

#[test]
fn a_dry_run_sends_the_reads_and_shows_the_writes() {
    let s = sandbox();
    let f = scaffold("js", &s);
    snapshot("js_insert_dry_run", &f.run(&["insert", "--dry-run"]));
    snapshot(
        "js_delete_dry_run",
        &f.run(&["delete", "--dry-run", "--id", "cus_0000001"]),
    );
    assert_eq!(s.get("/customers/cus_0000001")["id"], "cus_0000001");
    assert!(s.get("/customers/cus_0000006")["error"].is_object());
}

#[test]
fn import_pages_through_get_updates_and_writes_back_record_by_record() {
    let s = sandbox();
    let f = scaffold("js", &s);
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["written"], 5);
    let ids = crate::support::jsonl_field(&f.read("out.jsonl"), "id");
    assert_eq!(ids.len(), 5);
    f.write(
        "new.jsonl",
        "{\"id\": \"cus_0000001\", \"name\": \"Patched\"}\n{\"id\": \"cus_0000004\", \"email\": \"new@example.com\", \"name\": \"New\"}\n",
    );
    assert_eq!(f.run(&["delete", "--id", "cus_0000004"]).code, 0);
    let run = f.run(&[
        "import",
        "--from",
        "jsonl:new.jsonl",
        "--to",
        "account.json",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert_eq!(run.json()["written"], 2, "{}", run.render());
    assert_eq!(s.get("/customers/cus_0000001")["name"], "Patched");
    // cus_0000004 was gone: its patch answered 404, so it was inserted.
    assert_eq!(
        s.get("/customers?email=new@example.com")["data"][0]["name"],
        "New"
    );
}

#[test]
fn upsert_many_answers_one_outcome_per_record_and_a_refusal_is_a_reject() {
    let s = sandbox();
    let f = module(
        &s.url,
        r#"module.exports = {
  async upsertMany(values) {
    return values.map((v) => v.name ? { id: v.id } : { error: { message: 'a name is required' } });
  },
};"#,
    );
    f.write(
        "in.jsonl",
        "{\"id\": \"a\", \"name\": \"A\"}\n{\"id\": \"b\"}\n{\"id\": \"c\", \"name\": \"C\"}\n",
    );
    let run = f.run(&["import", "--from", "jsonl:in.jsonl", "--to", "account.json"]);
    assert_eq!(run.code, 3, "some records rejected: {}", run.render());
    let report = run.json();
    assert_eq!(report["written"], 2, "{}", run.render());
    assert_eq!(report["rejected"]["total"], 1, "{}", run.render());
    let rejects = std::fs::read_dir(f.join(".ferry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("rejects"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|| f.read(report["rejects"].as_str().unwrap()));
    assert!(rejects.contains("a name is required"), "{rejects}");
}

#[test]
fn a_module_may_be_esm_use_fetch_require_its_node_modules_and_spell_entires() {
    let s = sandbox();
    let f = Folder::new();
    f.write(
        "account.json",
        &format!(
            r#"{{"connector": "js", "module": "app.mjs", "baseUrl": "{}"}}"#,
            s.url
        ),
    );
    f.write(
        "node_modules/tiny-client/package.json",
        r#"{"name": "tiny-client", "main": "index.js"}"#,
    );
    f.write(
        "node_modules/tiny-client/index.js",
        "module.exports = (base) => ({ get: (p) => fetch(base + p, { headers: { Authorization: 'Bearer canary-js-Tok3n' } }).then((r) => r.json()) });",
    );
    f.write(
        "app.mjs",
        r#"import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const tiny = require('tiny-client');
let client;
export async function init(account) { client = tiny(account.baseUrl); }
export async function get(id) { return client.get('/customers/' + id); }
export async function getUpdates(lastSync) {
  return { nextSync: '1', entires: [{ id: 'x', type: 'upsert', value: { id: 'x' } }] };
}
"#,
    );
    let run = f.run(&["get", "--id", "cus_0000002"]);
    assert_eq!(run.ok_json()["id"], "cus_0000002", "{}", run.render());
    let run = f.run(&["-v", "getupdates"]);
    assert_eq!(run.ok_json()["entries"][0]["id"], "x", "{}", run.render());
    assert!(
        run.stderr
            .contains("answered \"entires\"; read as \"entries\""),
        "{}",
        run.render()
    );
}

#[test]
fn the_in_json_init_section_of_syncpenguin_is_accepted() {
    let s = sandbox();
    let f = scaffold("js", &s);
    f.write(
        "in.json",
        r#"{"init": {"apiToken": "x"}, "get": {"id": "cus_0000001"}}"#,
    );
    let run = f.run(&["get"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(!run.stderr.contains("warning"), "{}", run.render());
}

#[test]
fn missing_node_an_old_node_and_a_missing_module_are_exit_2() {
    let f = module(
        "http://127.0.0.1:9",
        "module.exports = { async get(id) { return {id}; } };",
    );
    let run = f.run_cmd(
        f.ferry()
            .env("FERRY_NODE", "/nonexistent/node")
            .args(["get", "--id", "1"]),
    );
    snapshot("js_no_node", &run);
    // A "node" that answers initialize as Node 16 would.
    let old = f.write(
        "old-node",
        "#!/bin/sh\nread line\necho '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":1,\"node\":\"16.20.0\",\"capabilities\":[]}}'\nread line\n",
    );
    make_executable(&old);
    let run = f.run_cmd(f.ferry().env("FERRY_NODE", &old).args(["get", "--id", "1"]));
    snapshot("js_old_node", &run);
    std::fs::remove_file(f.join("dataSourceApp.js")).unwrap();
    snapshot("js_no_module", &f.run(&["get", "--id", "1"]));
}

#[test]
fn a_syntax_error_a_missing_method_and_a_thrown_error_name_the_module() {
    let f = module(
        "http://127.0.0.1:9",
        "module.exports = {\n  async get(id) {\n    return {id\n  },\n};\n",
    );
    snapshot("js_syntax_error", &f.run(&["get", "--id", "1"]));
    f.write(
        "dataSourceApp.js",
        "module.exports = {\n  async get(id) {\n    throw new Error('no cat ' + id);\n  },\n};\n",
    );
    snapshot("js_thrown", &f.run(&["get", "--id", "tom"]));
    snapshot(
        "js_no_patch",
        &f.run(&["patch", "--id", "tom", "--value", "{}"]),
    );
}

#[test]
fn a_crash_a_hang_and_a_stray_stdout_line_end_with_a_clear_error() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async get(id) {
    if (id === 'crash') { process.stderr.write('about to fail\n'); process.exit(3); }
    if (id === 'hang') { return new Promise(() => {}); }
    process.stdout.write('debug output\n');
    return { id };
  },
};"#,
    );
    snapshot("js_crash", &f.run(&["get", "--id", "crash"]));
    snapshot("js_stray_stdout", &f.run(&["get", "--id", "x"]));
    set_account(&f, serde_json::json!({"callTimeoutSecs": 1}));
    let started = std::time::Instant::now();
    snapshot("js_hang", &f.run(&["get", "--id", "hang"]));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn an_http_error_rejects_with_status_and_body_and_maps_to_exit_codes() {
    let s = sandbox();
    let f = module(
        &s.url,
        r#"module.exports = {
  async init(account) { this.httpClient.setHeader('Authorization', 'Bearer ' + account.apiToken); },
  async get(id) {
    try { return await this.httpClient.get('/customers/' + id); }
    catch (e) { if (e.status === 404 && id === 'caught') return { id, status: e.status, said: e.body.error.message }; throw e; }
  },
};"#,
    );
    let caught = f.run(&["get", "--id", "caught"]).ok_json();
    assert_eq!(caught["status"], 404);
    assert_eq!(caught["said"], "customer caught not found");
    snapshot("js_not_found", &f.run(&["get", "--id", "cus_missing"]));
    let guarded = Sandbox::start(&["--port", "0", "--records", "5", "--token", TOKEN]);
    set_account(
        &f,
        serde_json::json!({"apiToken": "wrong-token", "baseUrl": guarded.url}),
    );
    snapshot("js_unauthorized", &f.run(&["get", "--id", "cus_0000001"]));
}

#[test]
fn connectors_js_describes_the_module_interface() {
    let f = Folder::new();
    let run = f.run(&["connectors", "js"]);
    insta::assert_snapshot!("connectors_js", run.render());
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A module whose getUpdates answers 10 records a call, slowly, up to 60.
const SLOW_SOURCE: &str = r#"module.exports = {
  async getUpdates(lastSync) {
    const from = Number(lastSync || 0);
    if (from >= 60) return { nextSync: String(from), entries: [] };
    await new Promise((r) => setTimeout(r, 150));
    const entries = [];
    for (let i = from; i < from + 10; i++) entries.push({ id: 'r' + i, type: 'upsert', value: { id: 'r' + i, n: i } });
    return { nextSync: String(from + 10), entries };
  },
};"#;

/// Start an import from the slow module, wait for its first checkpoint,
/// send `signal`, then resume: the file ends with every record once.
fn interrupt_then_resume(signal: &str) -> (Option<i32>, String) {
    let f = module("http://127.0.0.1:9", SLOW_SOURCE);
    let args = [
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "10",
    ];
    let mut child = f.spawn(&args);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // A batch committed: its checkpoint saved (after the file was written).
    let committed = || {
        std::fs::read_dir(f.join(".ferry")).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("import-")))
        })
    };
    while !committed() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the signal"
        );
        assert!(std::time::Instant::now() < deadline, "no batch was written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    crate::import::send(signal, &child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    assert_eq!(run.code, 0, "{}", run.render());
    let ids = crate::support::jsonl_field(&f.read("out.jsonl"), "id");
    let want: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    assert_eq!(ids, want, "every record once, in order");
    (out.status.code(), stderr)
}

#[test]
fn ctrl_c_stops_the_module_saves_the_checkpoint_and_a_resume_ends_exact() {
    let (code, stderr) = interrupt_then_resume("-INT");
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("the checkpoint is saved at offset"),
        "{stderr}"
    );
}

#[test]
fn kill_9_during_an_import_from_a_module_resumes_to_an_exact_copy() {
    let (code, stderr) = interrupt_then_resume("-9");
    assert_eq!(code, None, "{stderr}");
}

#[test]
fn a_page_larger_than_the_batch_is_read_in_parts_and_limit_cuts_it() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async getUpdates(lastSync) {
    const from = Number(lastSync || 0);
    if (from >= 60) return { nextSync: String(from), entries: [] };
    const entries = [];
    for (let i = from; i < from + 25; i++) entries.push({ id: 'r' + i, type: 'upsert', value: { id: 'r' + i } });
    return { nextSync: String(from + 25), entries: entries.slice(0, 60 - from) };
  },
};"#,
    );
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "10",
    ]);
    assert_eq!(run.ok_json()["written"], 60, "{}", run.render());
    let want: Vec<String> = (0..60).map(|i| format!("r{i}")).collect();
    assert_eq!(
        crate::support::jsonl_field(&f.read("out.jsonl"), "id"),
        want
    );
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:few.jsonl",
        "--limit",
        "3",
    ]);
    assert_eq!(run.ok_json()["written"], 3, "{}", run.render());
    assert_eq!(
        crate::support::jsonl_field(&f.read("few.jsonl"), "id"),
        ["r0", "r1", "r2"]
    );
}

/// A Grouparoo-style destination module keeping what it was sent in
/// `sent.jsonl`: each profile's whole change, one line a call.
const EXPORT_ONE: &str = r#"const fs = require('fs');
module.exports = {
  async exportProfile(profile) {
    if (!profile.newProfileProperties.email && !profile.toDelete) {
      throw Object.assign(new Error('no email: not exported'), { errorLevel: 'info' });
    }
    if (profile.newProfileProperties.email === 'down@example.com') {
      return { success: false, message: 'the API is down' };
    }
    fs.appendFileSync('sent.jsonl', JSON.stringify(profile) + '\n');
    return { success: true };
  },
};"#;

#[test]
fn export_sends_each_profiles_whole_change_to_export_profile() {
    let f = module("http://127.0.0.1:9", EXPORT_ONE);
    f.write(
        "profiles.jsonl",
        r#"{"id": "p1", "properties": {"email": "a@example.com", "name": "A"}, "groups": ["vip"]}
{"id": "p2", "properties": {"email": "b@example.com", "name": "B"}, "groups": []}
{"id": "p3", "properties": {"name": "C"}, "groups": []}
{"id": "p4", "properties": {"email": "down@example.com"}, "groups": []}
"#,
    );
    let run = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
    ]);
    snapshot_export("js_export_first", &run);
    f.write(
        "profiles.jsonl",
        r#"{"id": "p1", "properties": {"email": "a@example.com"}, "groups": ["vip", "new"]}
"#,
    );
    std::fs::remove_file(f.join("sent.jsonl")).unwrap();
    let run = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
        "--deletes",
        "delete",
        "--yes",
    ]);
    snapshot_export("js_export_second", &run);
    let sent: Vec<serde_json::Value> = f
        .read("sent.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    insta::assert_json_snapshot!("js_export_second_sent", sent);
}

#[test]
fn export_profiles_answers_errors_per_profile_and_a_dry_run_sends_nothing() {
    let s = sandbox();
    let f = module(
        &s.url,
        r#"module.exports = {
  async exportProfiles(profiles) {
    for (const p of profiles) {
      if (p.newProfileProperties.email) await this.httpClient.post('/customers/bulk', { records: [{ id: p.key, email: p.newProfileProperties.email }] });
    }
    return {
      success: false,
      errors: profiles.filter((p) => !p.newProfileProperties.email).map((p) => ({ profileId: p.profileId, message: 'no email', errorLevel: p.profileId === 'cus_0000002' ? 'info' : 'error' })),
    };
  },
};"#,
    );
    f.write(
        "profiles.jsonl",
        r#"{"id": "cus_0000001", "properties": {"email": "a@example.com"}}
{"id": "cus_0000002", "properties": {"name": "B"}}
{"id": "cus_0000003", "properties": {"name": "C"}}
"#,
    );
    let dry = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
        "--dry-run",
    ]);
    snapshot_export("js_export_batch_dry_run", &dry);
    assert_eq!(
        s.get("/customers/cus_0000001")["email"],
        "grace.lovelace1@example.com"
    );
    let run = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
    ]);
    snapshot_export("js_export_batch", &run);
    assert_eq!(s.get("/customers/cus_0000001")["email"], "a@example.com");
}

#[test]
fn init_sets_a_modules_own_keys_and_keeps_a_secret_one_in_dot_env() {
    let s = Sandbox::start(&["--port", "0", "--records", "5", "--token", TOKEN]);
    let f = Folder::new();
    let set_token = format!("apiToken={TOKEN}");
    let set_url = format!("baseUrl={}", s.url);
    let run = f.run(&[
        "init",
        ".",
        "--connector",
        "js",
        "--yes",
        "--set",
        &set_token,
        "--set",
        &set_url,
        "--set",
        "workspace=acme",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    let account: serde_json::Value = serde_json::from_str(&f.read("account.json")).unwrap();
    assert_eq!(account["apiToken"], "${JS_API_TOKEN}");
    assert_eq!(account["workspace"], "acme");
    assert!(f.read(".env").contains(&format!("JS_API_TOKEN={TOKEN}")));
    let run = f.run(&["-vv", "check"]);
    assert_eq!(run.code, 0, "{}", run.render());
    run.hides(&[TOKEN], "the token");
}

/// An `exec` program by hand (no helper): answers get with its id, and
/// starts a long `sleep` of its own, writing its pid to grandchild.pid.
const HAND_WRITTEN: &str = r#"import json, subprocess, sys
p = subprocess.Popen(["sleep", "300"])
open("grandchild.pid", "w").write(str(p.pid))
for line in sys.stdin:
    m = json.loads(line)
    if m["method"] == "initialize":
        r = {"protocolVersion": 1, "capabilities": ["get"]}
    else:
        r = {"id": m["params"]["id"], "by": "hand"}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": r}) + "\n")
    sys.stdout.flush()
"#;

/// Wait (up to 5 s) until the process `pid` (a `what`) is gone.
fn gone(pid: &str, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} {pid} outlived ferry"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `pid` is still a live process (a zombie waiting for its
/// parent to reap it counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn a_hand_written_program_answers_and_what_it_started_stops_with_it() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "exec", "command": ["python3", "hand.py"]}"#,
    );
    f.write("hand.py", HAND_WRITTEN);
    let run = f.run(&["get", "--id", "x1"]);
    assert_eq!(
        run.ok_json(),
        serde_json::json!({"id": "x1", "by": "hand"}),
        "{}",
        run.render()
    );
    let pid = f.read("grandchild.pid");
    gone(&pid, "sleep");
}

#[test]
fn an_import_from_a_module_cannot_start_at_an_offset_and_says_so_without_resume() {
    let f = module("http://127.0.0.1:9", SLOW_SOURCE);
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
        "--offset",
        "5",
    ]);
    insta::assert_snapshot!("js_import_offset", crate::import::render(&run));
}

#[test]
fn a_value_from_dot_env_is_a_secret_whatever_its_key_is_called() {
    let s = sandbox();
    let f = module(
        &s.url,
        r#"module.exports = {
  async init(account) { this.httpClient.setHeader('X-App', account.appKey); console.log('app key is', account.appKey); },
  async get(id) { return this.httpClient.get('/customers/' + id); },
};"#,
    );
    let canary = "plain-Named-canary-77";
    f.write(
        "account.json",
        &format!(
            r#"{{"connector": "js", "baseUrl": "{}", "appKey": "${{APP_KEY}}"}}"#,
            s.url
        ),
    );
    f.write(".env", &format!("APP_KEY={canary}\n"));
    let run = f.run(&[
        "-vv",
        "get",
        "--id",
        "cus_0000001",
        "--record",
        "--save-case",
        "one",
    ]);
    assert_eq!(run.code, 0, "{}", run.render());
    run.hides(&[canary], "a value from .env");
    for file in ["cassettes/get.json", "tests/one.json"] {
        assert!(!f.read(file).contains(canary), "{file}: {}", f.read(file));
    }
}

#[test]
fn an_export_profiles_error_naming_no_profile_of_the_batch_fails_them_all() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async exportProfiles(profiles) {
    return { success: false, errors: [{ message: 'the batch was refused', errorLevel: 'error' }] };
  },
};"#,
    );
    f.write(
        "profiles.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"a@example.com\"}}\n{\"id\": \"p2\", \"properties\": {\"email\": \"b@example.com\"}}\n",
    );
    let run = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
    ]);
    let summary = run.json();
    assert_eq!(summary["created"], 0, "{}", run.render());
    assert_eq!(summary["errors"], 2, "{}", run.render());
    // Nothing was marked done: the next run sends both again.
    let again = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
    ]);
    assert_eq!(again.json()["errors"], 2, "{}", again.render());
}

#[test]
fn ctrl_c_during_a_single_action_stops_the_module_too() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async get(id) {
    require('fs').writeFileSync('node.pid', String(process.pid));
    // Busy: it never sees its stdin close, so only ferry can stop it.
    for (;;) {}
  },
};"#,
    );
    let child = f.spawn(&["get", "--id", "x"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !f.exists("node.pid") {
        assert!(std::time::Instant::now() < deadline, "the module never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = f.read("node.pid");
    crate::import::send("-INT", &child);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "an interrupted get does not succeed");
    gone(&pid, "node");
}

#[test]
fn a_numeric_next_sync_comes_back_a_number_and_a_cut_emoji_is_not_fatal() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async getUpdates(lastSync) {
    if (lastSync !== null && typeof lastSync !== 'number') throw new Error('lastSync came back as a ' + typeof lastSync);
    const from = lastSync || 0;
    if (from >= 4) return { nextSync: from, entries: [] };
    const entries = [0, 1].map((i) => ({ id: 'r' + (from + i), type: 'upsert', value: { id: 'r' + (from + i), name: 'Hi 😀'.slice(0, 4) } }));
    return { nextSync: from + 2, entries };
  },
};"#,
    );
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "1",
    ]);
    assert_eq!(run.ok_json()["written"], 4, "{}", run.render());
    assert!(
        f.read("out.jsonl").contains("Hi \u{fffd}"),
        "{}",
        f.read("out.jsonl")
    );
    let first = f.run(&["getupdates"]).ok_json();
    assert_eq!(first["nextSync"], "2");
    let next = f.run(&["getupdates", "--last-sync", "2"]).ok_json();
    assert_eq!(next["entries"][0]["id"], "r2", "{next}");
}

#[test]
fn a_syncpenguin_folder_with_its_account_in_in_json_init_runs_unchanged() {
    let s = Sandbox::start(&["--port", "0", "--records", "5", "--token", TOKEN]);
    let f = Folder::new();
    f.write("account.json", r#"{"connector": "js"}"#);
    f.write(
        "dataSourceApp.js",
        r#"module.exports = {
  async init(account) { this.httpClient.setHeader('Authorization', 'Bearer ' + account.apiToken); },
  async get(id) { return this.httpClient.get('/customers/' + id); },
};"#,
    );
    f.write(
        "in.json",
        &format!(
            r#"{{"init": {{"baseUrl": "{}", "apiToken": "{TOKEN}"}}, "get": {{"id": "cus_0000002"}}}}"#,
            s.url
        ),
    );
    let run = f.run(&["-vv", "get"]);
    assert_eq!(run.ok_json()["id"], "cus_0000002", "{}", run.render());
    run.hides(&[TOKEN], "the token from in.json");
}

#[test]
fn an_esm_class_instance_keeps_its_methods_and_an_unsendable_answer_is_an_error() {
    let f = Folder::new();
    f.write(
        "account.json",
        r#"{"connector": "js", "module": "source.mjs"}"#,
    );
    f.write(
        "source.mjs",
        r#"class Source {
  async get(id) { if (id === 'loop') { const a = {}; a.self = a; return a; } return { id, from: 'class' }; }
}
export default new Source();
"#,
    );
    assert_eq!(f.run(&["get", "--id", "c1"]).ok_json()["from"], "class");
    snapshot("js_circular_answer", &f.run(&["get", "--id", "loop"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_string_body_goes_as_it_is_through_http_client_and_fetch() {
    use wiremock::matchers::{body_string, header, method, path};
    use wiremock::{Mock, ResponseTemplate};
    let server = crate::support::mock::server().await;
    Mock::given(method("POST"))
        .and(path("/soap"))
        .and(header("content-type", "text/xml"))
        .and(body_string("<cat name=\"Tom\"/>"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<ok id=\"7\"/>"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/raw"))
        .and(header("content-type", "application/json"))
        .and(body_string("{\"a\": 1}"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let f = module(
        &server.uri(),
        r#"module.exports = {
  async insert(value) {
    const said = await this.httpClient.post('/soap', '<cat name="Tom"/>', { headers: { 'Content-Type': 'text/xml' } });
    const r = await fetch(this.httpClient.baseUrl + '/raw', { method: 'PUT', body: '{"a": 1}', headers: { 'Content-Type': 'application/json' } });
    return { id: '7', said, put: r.status };
  },
};"#,
    );
    let run = tokio::task::spawn_blocking(move || {
        let run = f.run(&["insert", "--value", "{}"]);
        drop(f);
        run
    })
    .await
    .unwrap();
    let out = run.ok_json();
    assert_eq!(out["record"]["said"], "<ok id=\"7\"/>", "{}", run.render());
    assert_eq!(out["record"]["put"], 204);
}

#[test]
fn import_and_export_targets_take_the_in_json_init_section_and_a_bad_request_is_exit_2() {
    let f = module(
        "http://127.0.0.1:9",
        r#"let token;
module.exports = {
  async init(account) { token = account.apiToken; },
  async getUpdates(lastSync) {
    if (lastSync) return { nextSync: lastSync, entries: [] };
    return { nextSync: '1', entries: [{ id: 'a', type: 'upsert', value: { id: 'a', token } }] };
  },
  async exportProfile(profile) {
    if (!token) throw new Error('init had no token');
    return { success: true };
  },
  async get(id) { return this.httpClient.get('http://127.0.0.1:9/x', { headers: { 'bad name': 'v' } }); },
};"#,
    );
    f.write("account.json", r#"{"connector": "js"}"#);
    f.write("in.json", r#"{"init": {"apiToken": "from-in-json"}}"#);
    let run = f.run(&[
        "import",
        "--from",
        "account.json",
        "--to",
        "jsonl:out.jsonl",
    ]);
    assert_eq!(run.ok_json()["written"], 1, "{}", run.render());
    assert!(f.read("out.jsonl").contains("from-in-json"));
    f.write(
        "profiles.jsonl",
        "{\"id\": \"p1\", \"properties\": {\"email\": \"a@example.com\"}}\n",
    );
    let run = f.run(&[
        "export",
        "--to",
        "account.json",
        "--input",
        "profiles.jsonl",
    ]);
    assert_eq!(run.json()["created"], 1, "{}", run.render());
    snapshot("js_bad_header", &f.run(&["get", "--id", "a"]));
}

#[test]
fn a_dry_run_read_shows_the_modules_first_request_and_sends_nothing() {
    let f = module(
        "http://127.0.0.1:9",
        r#"module.exports = {
  async init(account) { this.httpClient.setHeader('Authorization', 'Bearer ' + account.apiToken); },
  async get(id) {
    try { return await this.httpClient.get('/customers/' + id); } catch (e) { return { swallowed: e.message }; }
  },
};"#,
    );
    snapshot(
        "js_get_dry_run",
        &f.run(&["get", "--id", "cus_0000001", "--dry-run"]),
    );
}
