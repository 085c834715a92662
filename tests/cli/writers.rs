//! Files and processes: one writer at a time for a destination file, an
//! export state and an import checkpoint (two real ferry processes at
//! once); signals while an export reads its input; leftovers of killed
//! runs; the mode of rewritten and new files; file exports written once per
//! batch. A run that must hold a lock while the test races it reads its
//! input from a named pipe, so it holds its locks until the test writes the
//! records: nothing depends on timing.

#![cfg(target_os = "linux")]

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{jsonl_field, Folder, Run};

/// How long a second run waits for a lock in these tests.
const SHORT_WAIT: (&str, &str) = ("FERRY_LOCK_WAIT_MS", "100");

/// A running ferry; killed when dropped, so a failing test leaves nothing
/// behind (a run blocked on its pipe would otherwise wait forever).
struct Running(Option<Child>);

impl Running {
    fn pid(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    /// Wait for the end: exit code, stdout, stderr.
    fn finish(mut self) -> (i32, String, String) {
        let out = self.0.take().expect("running").wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A named pipe at `rel` in the folder.
fn fifo(f: &Folder, rel: &str) -> std::path::PathBuf {
    let path = f.join(rel);
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    path
}

/// Open the pipe for writing once `child` has opened it for reading (so
/// it is past its start-up, holding its locks), without ever blocking.
fn writer_of(pipe: &std::path::Path, child: &mut Running) -> std::fs::File {
    const O_NONBLOCK: i32 = 0o4000;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // With no reader yet, a non-blocking open for writing fails (ENXIO).
        if let Ok(file) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(pipe)
        {
            return file;
        }
        if let Some(Ok(Some(status))) = child.0.as_mut().map(|c| c.try_wait()) {
            panic!("ferry ended ({status}) before it read {}", pipe.display());
        }
        assert!(
            Instant::now() < deadline,
            "ferry never opened {}",
            pipe.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn records(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":\"{prefix}{i}\",\"n\":{i}}}\n"))
        .collect()
}

fn profiles(prefix: &str, n: usize, value: &str) -> String {
    (0..n)
        .map(|i| format!("{{\"id\":\"{prefix}{i}\",\"properties\":{{\"v\":\"{value}\"}}}}\n"))
        .collect()
}

fn sorted_ids(text: &str) -> Vec<String> {
    let mut ids = jsonl_field(text, "id");
    ids.sort();
    ids
}

fn expected(prefixes: &[(&str, usize)]) -> Vec<String> {
    let mut ids: Vec<String> = prefixes
        .iter()
        .flat_map(|(p, n)| (0..*n).map(move |i| format!("{p}{i}")))
        .collect();
    ids.sort();
    ids
}

/// `ferry ARGS` with a short lock wait, rendered with the holder's PID
/// replaced.
fn second_run(f: &Folder, args: &[&str], holder: u32) -> String {
    let run = f.run_cmd(f.ferry().env(SHORT_WAIT.0, SHORT_WAIT.1).args(args));
    let text = run.render().replace(&holder.to_string(), "[PID]");
    // The state's name hashes the (temporary) destination path.
    regex::Regex::new(r"export-[0-9a-f]{16}\.db")
        .unwrap()
        .replace_all(&text, "export-[HASH].db")
        .into_owned()
}

#[test]
fn a_second_import_into_the_same_jsonl_file_waits_then_names_the_holder() {
    let f = Folder::new();
    let pipe = fifo(&f, "a.jsonl");
    f.write("b.jsonl", &records("b", 100));
    let mut first = Running(Some(f.spawn(&[
        "import",
        "--from",
        "jsonl:a.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ])));
    let mut writer = writer_of(&pipe, &mut first);
    let second = [
        "import",
        "--from",
        "jsonl:b.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ];
    insta::assert_snapshot!(
        "second_import_into_a_held_file",
        second_run(&f, &second, first.pid())
    );
    // The first run goes on as if alone, then the second has its turn.
    writer.write_all(records("a", 100).as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    f.run(&second).ok_json();
    assert_eq!(
        sorted_ids(&f.read("out.jsonl")),
        expected(&[("a", 100), ("b", 100)]),
        "every record once"
    );
}

#[test]
fn the_same_checkpoint_is_held_by_one_import_at_a_time() {
    let f = Folder::new();
    let pipe = fifo(&f, "a.jsonl");
    f.write("b.jsonl", &records("b", 10));
    // An sqlite destination locks itself; the shared checkpoint is what
    // two runs must not write at once.
    let mut first = Running(Some(f.spawn(&[
        "import",
        "--from",
        "jsonl:a.jsonl",
        "--to",
        "sqlite:out.db",
        "--state",
        "cp.json",
    ])));
    let mut writer = writer_of(&pipe, &mut first);
    let second = [
        "import",
        "--from",
        "jsonl:b.jsonl",
        "--to",
        "sqlite:other.db",
        "--state",
        "cp.json",
    ];
    insta::assert_snapshot!(
        "second_import_with_a_held_checkpoint",
        second_run(&f, &second, first.pid())
    );
    writer.write_all(records("a", 10).as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let cp: Value = serde_json::from_str(&f.read("cp.json")).unwrap();
    assert_eq!(cp["counts"]["written"], 10, "{cp}");
}

#[test]
fn two_exports_from_two_folders_into_one_file_take_turns() {
    let f = Folder::new();
    std::fs::create_dir_all(f.join("one")).unwrap();
    f.write("two/p.jsonl", &profiles("b", 50, "x"));
    let pipe = fifo(&f, "one/p.jsonl");
    let mut first = Running(Some(f.spawn(&[
        "export",
        "-C",
        "one",
        "--input",
        "one/p.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ])));
    let mut writer = writer_of(&pipe, &mut first);
    let second = [
        "export",
        "-C",
        "two",
        "--input",
        "two/p.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ];
    insta::assert_snapshot!(
        "second_export_into_a_held_file",
        second_run(&f, &second, first.pid())
    );
    writer.write_all(profiles("a", 50, "x").as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let summary = f.run(&second).ok_json();
    assert_eq!(summary["created"], 50);
    assert_eq!(
        sorted_ids(&f.read("out.jsonl")),
        expected(&[("a", 50), ("b", 50)]),
        "every profile once"
    );
}

#[test]
fn the_same_export_state_is_held_by_one_export_at_a_time() {
    let f = Folder::new();
    f.write("b.jsonl", &profiles("b", 5, "x"));
    let pipe = fifo(&f, "a.jsonl");
    let export = |input: &'static str| ["export", "--input", input, "--to", "sqlite:out.db#people"];
    let mut first = Running(Some(f.spawn(&export("a.jsonl"))));
    let mut writer = writer_of(&pipe, &mut first);
    insta::assert_snapshot!(
        "second_export_with_a_held_state",
        second_run(&f, &export("b.jsonl"), first.pid())
    );
    writer.write_all(profiles("a", 5, "x").as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
}

/// Ctrl-C or SIGTERM while a run waits for a file another run holds ends
/// the wait at once (exit 130), writing nothing.
#[test]
fn a_signal_while_waiting_for_a_held_file_ends_the_wait_with_130() {
    use std::io::{BufRead, BufReader};
    let f = Folder::new();
    let pipe = fifo(&f, "a.jsonl");
    f.write("b.jsonl", &records("b", 3));
    let mut first = Running(Some(f.spawn(&[
        "import",
        "--from",
        "jsonl:a.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ])));
    let mut writer = writer_of(&pipe, &mut first);
    let mut second = Running(Some(f.spawn_with(
        &[
            "import",
            "--from",
            "jsonl:b.jsonl",
            "--to",
            "jsonl:out.jsonl",
        ],
        &[("FERRY_LOCK_WAIT_MS", "20000")],
    )));
    let stderr = second.0.as_mut().unwrap().stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map(|l| l.unwrap());
    let waiting = lines.next().expect("a line saying the run waits");
    assert!(waiting.contains("waiting up to"), "{waiting}");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &second.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let rest: Vec<String> = lines.collect();
    let (code, stdout, _) = second.finish();
    let text = format!(
        "exit: {code}\n--- stdout\n{stdout}--- stderr\n{waiting}\n{}\n",
        rest.join("\n")
    );
    insta::assert_snapshot!(
        "signal_while_waiting_for_a_held_file",
        crate::support::filter(&text, f.path()).replace(&first.pid().to_string(), "[PID]")
    );
    writer.write_all(records("a", 3).as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(sorted_ids(&f.read("out.jsonl")), expected(&[("a", 3)]));
}

/// A SIGTERM that arrives while the export still reads its profiles (the
/// first moments of a run) stops it cleanly: nothing half-sent, the
/// summary, exit 130; the next run sends everything.
#[test]
fn sigterm_while_an_export_reads_its_input_stops_it_cleanly() {
    let f = Folder::new();
    let pipe = fifo(&f, "p.jsonl");
    let args = ["export", "--input", "p.jsonl", "--to", "jsonl:out.jsonl"];
    let mut child = Running(Some(f.spawn(&args)));
    let mut writer = writer_of(&pipe, &mut child);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    writer
        .write_all(profiles("p", 300, "x").as_bytes())
        .unwrap();
    drop(writer);
    let (code, stdout, stderr) = child.finish();
    assert_eq!(code, 130, "{stdout}{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    let summary: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no summary ({e}): {stderr}"));
    let created = summary["created"].as_u64().unwrap();
    assert_eq!(
        created + summary["notSent"].as_u64().unwrap(),
        300,
        "{summary}"
    );
    std::fs::remove_file(&pipe).unwrap();
    f.write("p.jsonl", &profiles("p", 300, "x"));
    let rest = f.run(&args).ok_json();
    assert_eq!(rest["created"].as_u64().unwrap(), 300 - created);
    assert_eq!(sorted_ids(&f.read("out.jsonl")), expected(&[("p", 300)]));
}

#[test]
fn temporary_files_of_dead_runs_are_removed_by_the_next_run() {
    let f = Folder::new();
    f.write("in.jsonl", &records("r", 3));
    // PIDs above the kernel's maximum (4194304) never run; this test's own
    // PID does, so its file may be in use and stays.
    let dead = [
        ".ferry-tmp-999999999-x1Y2z3",
        ".ferry/.ferry-tmp-999999998-abcdef",
    ];
    let live = format!(".ferry-tmp-{}-abcdef", std::process::id());
    for rel in dead.iter().copied().chain([live.as_str()]) {
        f.write(rel, "half a file");
    }
    f.run_line("import --from jsonl:in.jsonl --to jsonl:out.jsonl")
        .ok_json();
    for rel in dead {
        assert!(!f.exists(rel), "{rel} was left");
    }
    assert!(f.exists(&live), "a live writer's file was removed");
}

fn mode(f: &Folder, rel: &str) -> u32 {
    std::fs::metadata(f.join(rel)).unwrap().permissions().mode() & 0o7777
}

/// `ferry ARGS` under `umask MASK` (set by a shell that then execs ferry).
fn with_umask(f: &Folder, mask: &str, args: &[&str]) -> Run {
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(f.path())
        .env_clear()
        .env("HOME", f.path())
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    f.run_cmd(&mut assert_cmd::Command::from_std(sh))
}

#[test]
fn a_rewrite_keeps_the_file_mode_and_new_files_follow_the_umask() {
    let f = Folder::new();
    f.write("in.jsonl", &records("r", 3));
    // New files: 0666 less the umask, whatever the umask.
    for (mask, want) in [("027", 0o640), ("002", 0o664)] {
        let out = format!("new-{mask}.jsonl");
        let run = with_umask(
            &f,
            mask,
            &[
                "import",
                "--from",
                "jsonl:in.jsonl",
                "--to",
                &format!("jsonl:{out}"),
            ],
        );
        run.ok_json();
        assert_eq!(mode(&f, &out), want, "umask {mask}");
    }
    // A rewrite (ids already in the file) keeps the file's own mode.
    f.write("kept.jsonl", &records("r", 2));
    std::fs::set_permissions(f.join("kept.jsonl"), std::fs::Permissions::from_mode(0o664)).unwrap();
    let run = with_umask(
        &f,
        "077",
        &[
            "import",
            "--from",
            "jsonl:in.jsonl",
            "--to",
            "jsonl:kept.jsonl",
        ],
    );
    run.ok_json();
    assert_eq!(sorted_ids(&f.read("kept.jsonl")), expected(&[("r", 3)]));
    assert_eq!(mode(&f, "kept.jsonl"), 0o664);
    // An export rewrite too.
    f.write("p.jsonl", &profiles("r", 3, "new"));
    with_umask(
        &f,
        "077",
        &["export", "--input", "p.jsonl", "--to", "jsonl:kept.jsonl"],
    )
    .ok_json();
    assert_eq!(mode(&f, "kept.jsonl"), 0o664);
}

/// 4,000 changed profiles and 1,000 deletes into a jsonl file: one rewrite
/// of the file per batch (`-v` says each), not one per profile.
#[test]
fn an_export_into_a_file_rewrites_it_once_per_batch() {
    let f = Folder::new();
    f.write("p.jsonl", &profiles("p", 5000, "old"));
    let first = f.run_line("-v export --input p.jsonl --to jsonl:out.jsonl");
    assert_eq!(first.ok_json()["created"], 5000);
    let rewrites = |run: &Run| {
        run.stderr
            .lines()
            .filter(|l| l.starts_with("rewrote "))
            .count()
    };
    assert_eq!(rewrites(&first), 1, "{}", first.stderr);

    f.write("p.jsonl", &profiles("p", 4000, "new"));
    let second = f.run_line(
        "-v export --input p.jsonl --to jsonl:out.jsonl --deletes delete --yes --batch-size 1000",
    );
    let summary = second.ok_json();
    assert_eq!(summary["updated"], 4000, "{summary}");
    assert_eq!(summary["deleted"], 1000, "{summary}");
    // One rewrite for the 1,000 deletes, four for the updates.
    assert_eq!(rewrites(&second), 5, "{}", second.stderr);
    let text = f.read("out.jsonl");
    assert_eq!(sorted_ids(&text), expected(&[("p", 4000)]));
    assert!(
        text.lines().all(|l| l.contains("\"v\":\"new\"")),
        "every profile updated"
    );
}

#[test]
fn a_lock_wait_out_of_range_is_a_usage_error() {
    let f = Folder::new();
    f.write("in.jsonl", &records("r", 1));
    let run = f.run_cmd(f.ferry().env("FERRY_LOCK_WAIT_MS", "1e9").args([
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ]));
    insta::assert_snapshot!("lock_wait_out_of_range", run.render());
    assert!(!f.exists("out.jsonl"));
}

#[test]
fn an_insert_into_a_file_an_import_is_writing_waits_for_it_instead_of_interleaving() {
    let f = Folder::new();
    let pipe = fifo(&f, "a.jsonl");
    f.write(
        "account.json",
        r#"{"connector": "jsonl", "path": "out.jsonl"}"#,
    );
    let mut first = Running(Some(f.spawn(&[
        "import",
        "--from",
        "jsonl:a.jsonl",
        "--to",
        "jsonl:out.jsonl",
    ])));
    let mut writer = writer_of(&pipe, &mut first);
    let insert = ["insert", "--value", r#"{"id": "solo"}"#];
    insta::assert_snapshot!(
        "insert_into_a_held_file",
        second_run(&f, &insert, first.pid())
    );
    writer.write_all(records("a", 100).as_bytes()).unwrap();
    drop(writer);
    let (code, stdout, stderr) = first.finish();
    assert_eq!(code, 0, "{stdout}{stderr}");
    // Its turn now: every record once, the import's and the insert's.
    f.run(&insert).ok_json();
    let mut want = expected(&[("a", 100)]);
    want.push("solo".into());
    want.sort();
    assert_eq!(sorted_ids(&f.read("out.jsonl")), want);
}
