//! `ferry import` through the real binary: the local connectors as sources
//! and destinations, the summary, rejects, mapping, offsets and resumes,
//! failures, SIGINT and kill -9 with an exact resume.

use std::collections::BTreeSet;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::{
    import_parsed, import_passing_through, json_lines, jsonl_field, Folder, MountOnce, Run,
};

/// The run's rendering with the parts that change from run to run (the
/// checkpoint's hash of temporary paths, timings) replaced.
pub(crate) fn render(run: &Run) -> String {
    let text = run.render();
    let rules = [
        (r"(import|rejects)-[0-9a-f]{12}\.", "$1-[HASH]."),
        (
            r#""(elapsedSecs|recordsPerSec)": [0-9.e+-]+"#,
            r#""$1": [N]"#,
        ),
    ];
    let mut text = text;
    for (pattern, to) in rules {
        text = regex::Regex::new(pattern)
            .expect("valid filter")
            .replace_all(&text, to)
            .into_owned();
    }
    text
}

macro_rules! snap_import {
    ($name:expr, $run:expr) => {
        insta::assert_snapshot!($name, render(&$run))
    };
}

/// `n` JSON lines with ids c1..cN.
fn people(n: usize) -> String {
    (1..=n)
        .map(|i| format!("{{\"id\":\"c{i}\",\"email\":\"p{i}@example.com\",\"n\":{i}}}\n"))
        .collect()
}

fn ids_in_sqlite(path: &std::path::Path, table: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).expect("open the database");
    let managed: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'ferry_tables'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let sql = if managed {
        format!("SELECT id FROM \"{table}\" WHERE deleted = 0 ORDER BY rowid")
    } else {
        format!("SELECT id FROM \"{table}\" ORDER BY rowid")
    };
    let mut stmt = conn.prepare(&sql).unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn expected_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("c{i}")).collect()
}

#[test]
fn jsonl_to_sqlite_prints_one_summary() {
    let f = Folder::new();
    f.write("in.jsonl", &people(5));
    let run = f.run_line("import --from jsonl:in.jsonl --to sqlite:out.db --batch-size 2");
    snap_import!("jsonl_to_sqlite", run);
    assert_eq!(ids_in_sqlite(&f.join("out.db"), "records"), expected_ids(5));
    // The checkpoint is versioned JSON with both targets and the position.
    let cp_dir = f.join(".ferry");
    let cp = std::fs::read_dir(&cp_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("import-")
        })
        .expect("a checkpoint");
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(cp).unwrap()).unwrap();
    assert_eq!(cp["version"], 1);
    assert_eq!(cp["position"]["offset"], 5);
    assert_eq!(cp["counts"]["written"], 5);
    assert!(cp["from"].as_str().unwrap().starts_with("jsonl:/"));
    assert!(cp["to"].as_str().unwrap().ends_with("out.db"));
}

#[test]
fn csv_to_jsonl_and_sqlite_to_csv() {
    let f = Folder::new();
    f.write(
        "in.csv",
        "id,name,city\n1,Ada,Oslo\n2,Bob,\n3,\"Cy, Jr\",Rome\n",
    );
    let run = f.run(&["import", "--from", "csv:in.csv", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.ok_json()["written"], 3, "{}", run.render());
    assert_eq!(
        f.read("out.jsonl"),
        "{\"id\":\"1\",\"name\":\"Ada\",\"city\":\"Oslo\"}\n{\"id\":\"2\",\"name\":\"Bob\",\"city\":null}\n{\"id\":\"3\",\"name\":\"Cy, Jr\",\"city\":\"Rome\"}\n"
    );

    // Into sqlite, then back out of it into CSV.
    let run = f.run_line("import --from jsonl:out.jsonl --to sqlite:db.sqlite#people");
    assert_eq!(run.ok_json()["written"], 3, "{}", run.render());
    let run = f.run_line("import --from sqlite:db.sqlite#people --to csv:back.csv --batch-size 2");
    let summary = run.ok_json();
    assert_eq!(summary["written"], 3);
    assert_eq!(summary["batches"], 2);
    assert_eq!(
        f.read("back.csv"),
        "id,name,city\n1,Ada,Oslo\n2,Bob,\n3,\"Cy, Jr\",Rome\n"
    );
}

#[test]
fn rejects_file_and_summary_for_missing_ids_and_bad_dates() {
    let f = Folder::new();
    let conn = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT NOT NULL, birthdate DATE, age INTEGER);",
    )
    .unwrap();
    drop(conn);
    f.write(
        "in.jsonl",
        concat!(
            "{\"id\":\"a\",\"name\":\"Ada\",\"birthdate\":\"1815-12-10\",\"age\":\"36\"}\n",
            "{\"name\":\"No Id\",\"birthdate\":\"1990-01-01\"}\n",
            "{\"id\":\"b\",\"name\":\"Bob\",\"birthdate\":\"10/12/1815\"}\n",
            "{\"id\":\"\",\"name\":\"Empty Id\"}\n",
            "{\"id\":\"c\",\"birthdate\":\"2001-02-03\"}\n",
            "{\"id\":7,\"name\":\"Seven\",\"birthdate\":\"yesterday\",\"age\":7}\n",
        ),
    );
    let run = f
        .run_line("import --from jsonl:in.jsonl --to sqlite:crm.db#people --rejects rejects.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    snap_import!("rejects_summary", run);
    insta::assert_snapshot!("rejects_file", f.read("rejects.jsonl"));
    assert_eq!(ids_in_sqlite(&f.join("crm.db"), "people"), ["a", "b", "7"]);
    let conn = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    let (born, age): (Option<String>, Option<i64>) = conn
        .query_row(
            "SELECT birthdate, age FROM people WHERE id = 'b'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((born, age), (None, None));
    let age: i64 = conn
        .query_row("SELECT age FROM people WHERE id = 'a'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(age, 36);
}

#[test]
fn records_the_destination_refuses_go_to_the_rejects_file() {
    let f = Folder::new();
    let conn = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    conn.execute_batch("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT);")
        .unwrap();
    drop(conn);
    f.write(
        "in.jsonl",
        "{\"id\":\"a\",\"name\":\"Ada\"}\n{\"id\":\"b\",\"nickname\":\"B\"}\n{\"id\":\"c\",\"name\":\"Cy\"}\n",
    );
    let run =
        f.run_line("import --from jsonl:in.jsonl --to sqlite:crm.db#people --rejects r.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["written"], 2);
    assert_eq!(summary["rejected"]["total"], 1);
    let reject: Value = serde_json::from_str(f.read("r.jsonl").trim()).unwrap();
    assert_eq!(reject["offset"], 1);
    assert_eq!(reject["record"], json!({"id": "b", "nickname": "B"}));
    assert!(reject["reason"]
        .as_str()
        .unwrap()
        .contains("no column \"nickname\""));
    assert_eq!(ids_in_sqlite(&f.join("crm.db"), "people"), ["a", "c"]);
}

#[test]
fn map_and_id_field_shape_the_records() {
    let f = Folder::new();
    f.write(
        "in.jsonl",
        "{\"ids\":{\"crm\":\"x1\"},\"mail\":\"a@x\",\"secret\":\"s\",\"address\":{\"city\":\"Oslo\"}}\n{\"ids\":{\"crm\":\"x2\"},\"mail\":\"b@x\",\"address\":{}}\n",
    );
    f.write(
        "map.json",
        r#"{"email": "mail", "mail": null, "secret": null, "address": null, "city": "/address/city", "origin": {"const": "import"}}"#,
    );
    let run = f.run_line(
        "import --from jsonl:in.jsonl --to jsonl:out.jsonl --map map.json --id-field /ids/crm",
    );
    assert_eq!(run.ok_json()["written"], 2, "{}", run.render());
    assert_eq!(
        f.read("out.jsonl"),
        "{\"id\":\"x1\",\"ids\":{\"crm\":\"x1\"},\"email\":\"a@x\",\"city\":\"Oslo\",\"origin\":\"import\"}\n{\"id\":\"x2\",\"ids\":{\"crm\":\"x2\"},\"email\":\"b@x\",\"origin\":\"import\"}\n"
    );
    // A map that is not an object of sources is a usage error naming the file.
    f.write("bad.json", r#"{"email": 3}"#);
    let run = f.run_line("import --from jsonl:in.jsonl --to jsonl:out2.jsonl --map bad.json");
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(run.stderr.contains("bad.json"), "{}", run.stderr);
    assert!(!f.exists("out2.jsonl"));
}

/// Write 10 records into `kind`'s file and answer its target.
fn source_of_kind(f: &Folder, kind: &str) -> String {
    f.write("seed.jsonl", &people(10));
    match kind {
        "jsonl" => {
            f.write("src.jsonl", &people(10));
            "jsonl:src.jsonl".into()
        }
        "csv" => {
            let rows: String = (1..=10)
                .map(|i| format!("c{i},p{i}@example.com\n"))
                .collect();
            f.write("src.csv", &format!("id,email\n{rows}"));
            "csv:src.csv".into()
        }
        _ => {
            let run = f.run_line("import --from jsonl:seed.jsonl --to sqlite:src.db");
            run.ok_json();
            "sqlite:src.db".into()
        }
    }
}

#[test]
fn offset_and_resume_on_each_source_kind() {
    for kind in ["jsonl", "csv", "sqlite"] {
        let f = Folder::new();
        let from = source_of_kind(&f, kind);
        // A first run stops after 4 records (two batches)...
        let run = f.run(&[
            "import",
            "--from",
            &from,
            "--to",
            "sqlite:dest.db",
            "--batch-size",
            "2",
            "--limit",
            "4",
        ]);
        let s = run.ok_json();
        assert_eq!(
            (s["read"].clone(), s["offset"].clone()),
            (json!(4), json!(4)),
            "{kind}"
        );
        assert_eq!(s["endOfSource"], false, "{kind}");
        // ...and --resume carries on from the checkpoint to the end.
        let run = f.run(&[
            "import",
            "--from",
            &from,
            "--to",
            "sqlite:dest.db",
            "--batch-size",
            "3",
            "--resume",
        ]);
        let s = run.ok_json();
        assert_eq!(s["read"], 6, "{kind}: {}", run.render());
        assert_eq!(s["endOfSource"], true, "{kind}");
        assert_eq!(
            ids_in_sqlite(&f.join("dest.db"), "records"),
            expected_ids(10),
            "{kind}"
        );
        // Resuming a finished import reads nothing new.
        let run = f.run(&[
            "import",
            "--from",
            &from,
            "--to",
            "sqlite:dest.db",
            "--resume",
        ]);
        assert_eq!(run.ok_json()["read"], 0, "{kind}");

        // --offset starts after the first N records.
        let run = f.run(&[
            "import",
            "--from",
            &from,
            "--to",
            "jsonl:tail.jsonl",
            "--offset",
            "7",
        ]);
        assert_eq!(run.ok_json()["written"], 3, "{kind}: {}", run.render());
        assert_eq!(
            jsonl_field(&f.read("tail.jsonl"), "id"),
            ["c8", "c9", "c10"],
            "{kind}"
        );
        // An offset past the end is a usage error for file sources; sqlite reads nothing.
        let run = f.run(&[
            "import",
            "--from",
            &from,
            "--to",
            "jsonl:none.jsonl",
            "--offset",
            "50",
        ]);
        if kind == "sqlite" {
            assert_eq!(run.ok_json()["read"], 0);
        } else {
            assert_eq!(run.code, 2, "{kind}: {}", run.render());
        }
    }
}

#[test]
fn resuming_with_other_targets_is_refused() {
    let f = Folder::new();
    f.write("a.jsonl", &people(3));
    f.write("b.jsonl", &people(3));
    f.run_line("import --from jsonl:a.jsonl --to jsonl:out.jsonl --state cp.json")
        .ok_json();
    let run =
        f.run_line("import --from jsonl:b.jsonl --to jsonl:out.jsonl --state cp.json --resume");
    snap_import!("resume_other_targets", run);
    let run = f.run_line("import --from jsonl:b.jsonl --to jsonl:out.jsonl --resume");
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(
        run.stderr.contains("no checkpoint to resume"),
        "{}",
        run.stderr
    );
}

#[test]
fn dry_run_shows_the_first_batch_and_writes_nothing() {
    let f = Folder::new();
    f.write(
        "in.jsonl",
        "{\"id\":\"a\",\"n\":1}\n{\"n\":2}\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n",
    );
    let run =
        f.run_line("import --from jsonl:in.jsonl --to sqlite:out.db --batch-size 3 --dry-run");
    snap_import!("dry_run", run);
    assert!(!f.exists("out.db"));
    assert!(!f.exists(".ferry"));
}

#[test]
fn a_failing_destination_stops_with_the_resume_command() {
    let f = Folder::new();
    f.write("in.jsonl", &people(10));
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "3",
    ];
    let mut first = args.to_vec();
    first.extend(["--limit", "4"]);
    assert_eq!(f.run(&first).ok_json()["written"], 4);
    // The destination path becomes a folder: every write fails.
    std::fs::rename(f.join("out.jsonl"), f.join("kept.jsonl")).unwrap();
    std::fs::create_dir(f.join("out.jsonl")).unwrap();
    let mut again = args.to_vec();
    again.push("--resume");
    let run = f.run(&again);
    snap_import!("failing_destination", run);
    // The checkpoint did not move past the failed batch.
    std::fs::remove_dir(f.join("out.jsonl")).unwrap();
    std::fs::rename(f.join("kept.jsonl"), f.join("out.jsonl")).unwrap();
    let run = f.run(&again);
    let s = run.ok_json();
    assert_eq!(s["read"], 6, "{}", run.render());
    assert_eq!(jsonl_field(&f.read("out.jsonl"), "id"), expected_ids(10));
}

/// Start an import in the background with stdout and stderr captured.
fn spawn(f: &Folder, args: &[&str]) -> Child {
    f.spawn(args)
}

/// Wait until the import has committed at least one batch.
fn wait_for_checkpoint(f: &Folder, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::fs::read_dir(f.join(".ferry")).is_ok_and(|mut d| {
            d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("import-")))
        }) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the import never saved a checkpoint");
}

pub(crate) fn send(signal: &str, child: &Child) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn sigint_finishes_the_batches_in_flight_saves_and_exits_130() {
    let f = Folder::new();
    f.write("in.jsonl", &people(20_000));
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "sqlite:out.db",
        "--batch-size",
        "500",
    ];
    let mut child = spawn(&f, &args);
    assert!(
        wait_for_checkpoint(&f, &mut child),
        "finished before the signal"
    );
    send("-INT", &child);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(
            "hint: resume with: ferry import --from jsonl:in.jsonl --to sqlite:out.db --batch-size 500 --resume"
        ),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "interrupted");
    let done = summary["offset"].as_u64().unwrap();
    assert!(done > 0 && done < 20_000, "{summary}");
    // Everything committed is in the destination.
    assert_eq!(
        ids_in_sqlite(&f.join("out.db"), "records").len() as u64,
        done
    );
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    assert_eq!(run.ok_json()["read"].as_u64().unwrap(), 20_000 - done);
    assert_eq!(
        ids_in_sqlite(&f.join("out.db"), "records"),
        expected_ids(20_000)
    );
}

/// SIGTERM (a service manager, `timeout`, `kill`) and SIGHUP (a closed
/// terminal) stop an import the way Ctrl-C does.
#[test]
fn sigterm_and_sighup_finish_the_batches_in_flight_save_and_exit_130() {
    for signal in ["-TERM", "-HUP"] {
        let f = Folder::new();
        f.write("in.jsonl", &people(20_000));
        let args = [
            "import",
            "--from",
            "jsonl:in.jsonl",
            "--to",
            "sqlite:out.db",
            "--batch-size",
            "500",
        ];
        let mut child = spawn(&f, &args);
        assert!(
            wait_for_checkpoint(&f, &mut child),
            "{signal}: finished before the signal"
        );
        send(signal, &child);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
        assert!(
            stderr.contains("hint: resume with: ferry import --from jsonl:in.jsonl --to sqlite:out.db --batch-size 500 --resume"),
            "{signal}: {stderr}"
        );
        let summary: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{signal}: no summary ({e}): {stderr}"));
        assert_eq!(summary["status"], "interrupted", "{signal}");
        let done = summary["offset"].as_u64().unwrap();
        assert!(done > 0 && done < 20_000, "{signal}: {summary}");
        assert_eq!(
            ids_in_sqlite(&f.join("out.db"), "records").len() as u64,
            done
        );
        let leftovers: Vec<String> = std::fs::read_dir(f.path())
            .unwrap()
            .chain(std::fs::read_dir(f.join(".ferry")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".ferry-tmp-"))
            .collect();
        assert_eq!(
            leftovers,
            Vec::<String>::new(),
            "{signal}: temporary files left"
        );
        let mut resume = args.to_vec();
        resume.push("--resume");
        let run = f.run(&resume);
        assert_eq!(run.ok_json()["read"].as_u64().unwrap(), 20_000 - done);
        assert_eq!(
            ids_in_sqlite(&f.join("out.db"), "records"),
            expected_ids(20_000)
        );
    }
}

#[test]
fn kill_9_at_random_points_then_resume_ends_with_exactly_the_source_ids() {
    let n = 20_000;
    let source = people(n);
    let expected: BTreeSet<String> = expected_ids(n).into_iter().collect();
    let mut killed_mid_run = 0;
    for round in 0..5 {
        // A fresh folder per round, so "a checkpoint exists" means this run's.
        let f = Folder::new();
        f.write("in.jsonl", &source);
        let db = format!("out{round}.db");
        let to = format!("sqlite:{db}");
        // Small batches (50 commits) so the kills land mid-run.
        let args = [
            "import",
            "--from",
            "jsonl:in.jsonl",
            "--to",
            &to,
            "--batch-size",
            "400",
        ];
        let mut child = spawn(&f, &args);
        // Kill it once or twice at random points after its first commit.
        let kills = 1 + round % 2;
        for _ in 0..kills {
            if wait_for_checkpoint(&f, &mut child) {
                std::thread::sleep(Duration::from_millis(rand::random_range(0..60)));
                send("-KILL", &child);
            }
            let _ = child.wait();
            if checkpoint_offset(&f) < n as u64 {
                killed_mid_run += 1;
            }
            let mut resume = args.to_vec();
            resume.push("--resume");
            child = spawn(&f, &resume);
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids = ids_in_sqlite(&f.join(&db), "records");
        assert_eq!(ids.len(), n, "round {round}: duplicates or losses");
        let got: BTreeSet<String> = ids.into_iter().collect();
        assert_eq!(got, expected, "round {round}");
    }
    // The kills must have hit running imports, or the test proves nothing.
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} kills landed mid-run"
    );
}

/// The position of the folder's one import checkpoint.
fn checkpoint_offset(f: &Folder) -> u64 {
    let path = std::fs::read_dir(f.join(".ferry"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("import-")
        })
        .expect("a checkpoint");
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cp["position"]["offset"].as_u64().unwrap()
}

#[test]
fn kill_9_during_a_jsonl_import_leaves_no_torn_or_duplicate_lines() {
    let n = 20_000;
    let source = people(n);
    for round in 0..3 {
        let f = Folder::new();
        f.write("in.jsonl", &source);
        let to = format!("jsonl:out{round}.jsonl");
        let args = [
            "import",
            "--from",
            "jsonl:in.jsonl",
            "--to",
            &to,
            "--batch-size",
            "500",
        ];
        let mut child = spawn(&f, &args);
        if wait_for_checkpoint(&f, &mut child) {
            std::thread::sleep(Duration::from_millis(rand::random_range(0..40)));
            send("-KILL", &child);
        }
        let _ = child.wait();
        assert!(
            checkpoint_offset(&f) < n as u64,
            "round {round} finished before the kill"
        );
        let mut resume = args.to_vec();
        resume.push("--resume");
        let run = f.run(&resume);
        assert_eq!(run.code, 0, "{}", run.render());
        let ids = jsonl_field(&f.read(&format!("out{round}.jsonl")), "id");
        assert_eq!(ids, expected_ids(n), "round {round}");
    }
}

#[test]
fn a_destination_failing_mid_run_stops_saves_and_resumes_exactly() {
    let f = Folder::new();
    let n = 20_000;
    f.write("in.jsonl", &people(n));
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "100",
    ];
    let mut child = spawn(&f, &args);
    assert!(wait_for_checkpoint(&f, &mut child), "finished too early");
    // While it runs, the destination file becomes a folder.
    std::fs::rename(f.join("out.jsonl"), f.join("kept.jsonl")).unwrap();
    std::fs::create_dir(f.join("out.jsonl")).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint: fix the cause, then resume with: ferry import --from jsonl:in.jsonl --to jsonl:out.jsonl --batch-size 100 --resume"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["status"], "stopped");
    assert_eq!(summary["failed"], 100, "{summary}");
    let stopped_at = summary["offset"].as_u64().unwrap();
    assert!(stopped_at > 0 && stopped_at < n as u64, "{summary}");
    // Put the file back; the resume writes the rest, once.
    std::fs::remove_dir(f.join("out.jsonl")).unwrap();
    std::fs::rename(f.join("kept.jsonl"), f.join("out.jsonl")).unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    assert_eq!(
        run.ok_json()["read"].as_u64().unwrap(),
        n as u64 - stopped_at
    );
    assert_eq!(jsonl_field(&f.read("out.jsonl"), "id"), expected_ids(n));
}

#[test]
fn a_resumed_run_cuts_rejects_of_uncommitted_batches() {
    let f = Folder::new();
    let lines: String = (1..=6)
        .map(|i| {
            if i % 2 == 0 {
                format!("{{\"n\":{i}}}\n")
            } else {
                format!("{{\"id\":\"c{i}\"}}\n")
            }
        })
        .collect();
    f.write("in.jsonl", &lines);
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "jsonl:out.jsonl",
        "--batch-size",
        "2",
        "--rejects",
        "r.jsonl",
    ];
    let mut first = args.to_vec();
    first.extend(["--limit", "2"]);
    assert_eq!(f.run(&first).code, 3);
    // What a crash after writing the next batch's rejects, before its
    // checkpoint, would leave behind.
    let mut text = f.read("r.jsonl");
    text.push_str("{\"record\":{\"n\":4},\"reason\":\"missing id\",\"offset\":3}\n");
    f.write("r.jsonl", &text);
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    assert_eq!(run.code, 3, "{}", run.render());
    let offsets: Vec<u64> = f
        .read("r.jsonl")
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["offset"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, [1, 3, 5]);
    assert_eq!(jsonl_field(&f.read("out.jsonl"), "id"), ["c1", "c3", "c5"]);
}

/// An http connector folder `dest/` whose API is `base`: upsert is a PATCH
/// of /items/{id} (a 404 would fall back to POST /items).
fn http_destination(f: &Folder, base: &str, account_extra: &str) {
    f.write(
        "dest/connector.json",
        &serde_json::to_string_pretty(&json!({
            "actions": {
                "insert": {"path": "/items"},
                "patch": {"method": "PATCH", "path": "/items/{id}"}
            }
        }))
        .unwrap(),
    );
    f.write(
        "dest/account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{base}"{account_extra}}}"#),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_destination_answering_5xx_stops_with_the_resume_command() {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/items/c[12]$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(2)
        .mount(&s)
        .await;
    // c3 fails on every attempt: two, as the account's retry policy says.
    Mock::given(method("PATCH"))
        .and(path("/items/c3"))
        .respond_with(
            ResponseTemplate::new(503).set_body_json(json!({"error": "down for maintenance"})),
        )
        .expect(2)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write("in.jsonl", &people(6));
    http_destination(
        &f,
        &s.uri(),
        r#", "retry": {"maxAttempts": 2, "baseDelayMs": 1}"#,
    );
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "dest",
        "--batch-size",
        "2",
        "--concurrency",
        "1",
    ];
    snap_import!("http_5xx_stops", f.run(&args));
    s.verify().await;
    // The API is back: the resume sends the rest, from c3 on, once each.
    crate::support::mock::reset(&s).await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/items/c[3-6]$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(4)
        .mount(&s)
        .await;
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    let summary = run.ok_json();
    assert_eq!(
        (summary["read"].clone(), summary["written"].clone()),
        (json!(4), json!(4))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn records_an_http_destination_refuses_are_rejected_and_the_run_goes_on() {
    use wiremock::matchers::{method, path, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path("/items/c2"))
        .once(
            ResponseTemplate::new(422).set_body_json(json!({"error": "email is not valid"})),
            &s,
        )
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/items/c[134]$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(3)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write("in.jsonl", &people(4));
    http_destination(&f, &s.uri(), "");
    let run = f.run_line("import --from jsonl:in.jsonl --to dest --rejects r.jsonl");
    assert_eq!(run.code, 3, "{}", run.render());
    let summary = run.json();
    assert_eq!(summary["written"], 3);
    assert_eq!(summary["rejected"]["total"], 1);
    let reject: Value = serde_json::from_str(f.read("r.jsonl").trim()).unwrap();
    assert_eq!(reject["offset"], 1);
    assert_eq!(reject["record"]["id"], "c2");
    assert!(
        reject["reason"]
            .as_str()
            .unwrap()
            .contains("email is not valid"),
        "{reject}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_into_http_respects_the_rate_limit() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, ResponseTemplate};
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path_regex("^/items/c[0-9]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(12)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write("in.jsonl", &people(12));
    // 10 requests a second, no burst: 12 requests need at least 1.1 s even
    // with 4 batches in flight at once.
    http_destination(&f, &s.uri(), r#", "rateLimit": {"rps": 10, "burst": 1}"#);
    let (run, waits) = f.run_on_virtual_clock(&[
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "dest",
        "--batch-size",
        "3",
        "--concurrency",
        "4",
    ]);
    assert_eq!(run.ok_json()["written"], 12);
    // The first at once, the eleven others one every 100 ms.
    assert_eq!(waits.of("slot"), [Duration::from_millis(100); 11]);
}

/// `?offset=&limit=` of a page request (0 and 100 when absent).
fn page_params(req: &wiremock::Request) -> (usize, usize) {
    let param = |name: &str| {
        req.url
            .query_pairs()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    (param("offset").unwrap_or(0), param("limit").unwrap_or(100))
}

/// A folder `src` with an http connector listing `GET /items` by offset from
/// a mock server that answers with `pages` and fails the test unless asked.
async fn offset_paged_source(pages: impl wiremock::Respond + 'static) -> (MockServer, Folder) {
    let s = crate::support::mock::server().await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .respond_with(pages)
        .expect(1..)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write(
        "src/connector.json",
        &json!({"actions": {"list": {"path": "/items", "records": "/data",
            "pagination": {"type": "offset", "pageSize": 100, "stop": {"total": "/total"}}}}})
        .to_string(),
    );
    f.write(
        "src/account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{}"}}"#, s.uri()),
    );
    (s, f)
}

/// A paged API of ten records c1..c10: `?offset=&limit=` with a total.
struct TenRecords;

impl wiremock::Respond for TenRecords {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let (offset, limit) = page_params(req);
        let data: Vec<Value> = (offset..(offset + limit).min(10))
            .map(|i| json!({"id": format!("c{}", i + 1), "email": format!("p{}@example.com", i + 1)}))
            .collect();
        wiremock::ResponseTemplate::new(200).set_body_json(json!({"data": data, "total": 10}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offset_and_resume_on_an_http_source() {
    let (_s, f) = offset_paged_source(TenRecords).await;
    let args = [
        "import",
        "--from",
        "src",
        "--to",
        "sqlite:dest.db",
        "--batch-size",
        "2",
    ];
    let mut first = args.to_vec();
    first.extend(["--limit", "4"]);
    let run = f.run(&first);
    assert_eq!(run.ok_json()["offset"], 4, "{}", run.render());
    let mut resume = args.to_vec();
    resume.push("--resume");
    let run = f.run(&resume);
    let summary = run.ok_json();
    assert_eq!(summary["read"], 6, "{}", run.render());
    assert_eq!(summary["endOfSource"], true);
    assert_eq!(
        ids_in_sqlite(&f.join("dest.db"), "records"),
        expected_ids(10)
    );
    let run = f.run_line("import --from src --to jsonl:tail.jsonl --offset 7");
    assert_eq!(run.ok_json()["written"], 3, "{}", run.render());
    assert_eq!(
        jsonl_field(&f.read("tail.jsonl"), "id"),
        ["c8", "c9", "c10"]
    );
}

#[test]
fn a_source_file_that_does_not_exist_is_refused() {
    let f = Folder::new();
    crate::snap!(
        "import_missing_source_file",
        f.run(&[
            "import",
            "--from",
            "jsonl:nope.jsonl",
            "--to",
            "sqlite:out.db"
        ])
    );
    assert!(!f.exists("out.db"), "nothing is written");
}

/// A paged API answering fixed record texts, `?offset=&limit=`, with a total.
struct Texts(Vec<&'static str>);

impl wiremock::Respond for Texts {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        let (offset, limit) = page_params(req);
        let offset = offset.min(self.0.len());
        let end = (offset + limit).min(self.0.len());
        let body = format!(
            r#"{{"total": {}, "data": [{}]}}"#,
            self.0.len(),
            self.0[offset..end].join(", ")
        );
        wiremock::ResponseTemplate::new(200).set_body_raw(body, "application/json")
    }
}

/// From an HTTP listing into a JSON lines file with nothing to change,
/// records pass through as the source's text; a record validation would
/// change, refuse, or that spans lines takes the parsed path. Either way the
/// file holds the same records as a run that parses every one.
#[tokio::test(flavor = "multi_thread")]
async fn records_pass_through_as_text_and_match_a_parsed_run() {
    let texts = vec![
        r#"{"id":"x1","n":0}"#,
        r#"{"id":"x2","n":0}"#,
        r#"{"id": "a",  "name": "kept as sent", "tag": "caf\u00e9"}"#,
        r#"{"id": 7, "name": "a number id becomes text"}"#,
        r#"{"name": "no id"}"#,
        r#"{"id": "b\"q", "n": 1}"#,
        "{\"id\": \"c\",\n \"n\": 2}",
        r#"{"id": "d", "id": "e"}"#,
    ];
    let (_s, f) = offset_paged_source(Texts(texts)).await;
    let args = |to: &'static str, rejects: &'static str| {
        [
            "--from",
            "src",
            "--to",
            to,
            "--batch-size",
            "2",
            "--rejects",
            rejects,
        ]
    };
    let raw = import_passing_through(&f, &args("jsonl:raw.jsonl", "raw-rejects.jsonl"));
    assert_eq!(raw.code, 3, "one record is rejected: {}", raw.render());
    let summary = raw.json();
    assert_eq!(summary["read"], 8);
    assert_eq!(summary["written"], 7);
    assert_eq!(summary["rejected"]["byReason"], json!({"missing id": 1}));
    let text = f.read("raw.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    // The first batch creates the file (parsed); the second is appended as
    // it came, spacing and escapes included, with the converted id written
    // out; the batch with a line break inside a record is parsed whole.
    assert_eq!(
        lines,
        [
            r#"{"id":"x1","n":0}"#,
            r#"{"id":"x2","n":0}"#,
            r#"{"id": "a",  "name": "kept as sent", "tag": "caf\u00e9"}"#,
            r#"{"id":"7","name":"a number id becomes text"}"#,
            r#"{"id":"b\"q","n":1}"#,
            r#"{"id":"c","n":2}"#,
            r#"{"id":"e"}"#,
        ]
    );
    let reject: Value = serde_json::from_str(f.read("raw-rejects.jsonl").trim()).unwrap();
    assert_eq!(
        reject,
        json!({"record": {"name": "no id"}, "reason": "missing id", "offset": 4})
    );
    let parsed = import_parsed(&f, &args("jsonl:parsed.jsonl", "parsed-rejects.jsonl"));
    assert_eq!(parsed.code, 3, "{}", parsed.render());
    let records = |file: &str| json_lines(&f.read(file));
    assert_eq!(records("raw.jsonl"), records("parsed.jsonl"));
    assert_eq!(f.read("raw-rejects.jsonl"), f.read("parsed-rejects.jsonl"));
}

/// From one JSON lines file into another, lines pass through as they are
/// (a byte order mark, blank lines and CRLF endings aside), and the file
/// ends with the same records and rejects as a run that parses every one.
/// A line that is not JSON stops both runs with the same error, naming it.
#[test]
fn jsonl_lines_pass_through_and_match_a_parsed_run() {
    let f = Folder::new();
    f.write(
        "in.jsonl",
        &[
            "\u{feff}{\"id\":\"x1\",\"n\":0}\r",
            "",
            r#"  {"id": "a",  "tag": "caf\u00e9"}  "#,
            r#"{"id": 7, "name": "a number id becomes text"}"#,
            r#"{"name": "no id"}"#,
            r#"{"id": "b\"q", "n": 1}"#,
            r#"{"id": "d", "id": "e"}"#,
            r#"{"id": "x2",  "n": 0}"#,
            "",
        ]
        .join("\n"),
    );
    let args = |to: &'static str, rejects: &'static str| {
        [
            "--from",
            "jsonl:in.jsonl",
            "--to",
            to,
            "--batch-size",
            "2",
            "--rejects",
            rejects,
        ]
    };
    let raw = import_passing_through(&f, &args("jsonl:raw.jsonl", "raw-rejects.jsonl"));
    assert_eq!(raw.code, 3, "one record is rejected: {}", raw.render());
    assert_eq!(raw.json()["read"], 7);
    assert_eq!(raw.json()["written"], 6);
    let parsed = import_parsed(&f, &args("jsonl:parsed.jsonl", "parsed-rejects.jsonl"));
    assert_eq!(parsed.code, 3, "{}", parsed.render());
    let records = |file: &str| json_lines(&f.read(file));
    assert_eq!(records("raw.jsonl").len(), 6);
    assert_eq!(records("raw.jsonl"), records("parsed.jsonl"));
    assert_eq!(f.read("raw-rejects.jsonl"), f.read("parsed-rejects.jsonl"));
    // A batch of new plain ids after the first is appended as it was read.
    assert!(
        f.read("raw.jsonl")
            .ends_with("{\"id\": \"x2\",  \"n\": 0}\n"),
        "{}",
        f.read("raw.jsonl")
    );

    f.write("bad.jsonl", "{\"id\": \"1\"}\n{\"id\": \"2\",}\n");
    let errors: Vec<String> = [
        &["--to", "jsonl:o1.jsonl"][..],
        &["--to", "jsonl:o2.jsonl", "--id-field", "id"][..],
    ]
    .iter()
    .map(|extra| {
        let mut args = vec!["import", "--from", "jsonl:bad.jsonl"];
        args.extend(*extra);
        let run = f.run(&args);
        assert_eq!(run.code, 2, "{}", run.render());
        run.stderr
    })
    .collect();
    assert!(errors[0].contains("bad.jsonl line 2"), "{}", errors[0]);
    assert_eq!(errors[0], errors[1].replace("o2.jsonl", "o1.jsonl"));
}

/// An API that refuses a page larger than 100 records, as many do.
struct AtMost100;

impl wiremock::Respond for AtMost100 {
    fn respond(&self, req: &wiremock::Request) -> wiremock::ResponseTemplate {
        match page_params(req) {
            (_, limit) if limit > 100 => wiremock::ResponseTemplate::new(400)
                .set_body_json(json!({"error": "limit must be at most 100"})),
            _ => TenRecords.respond(req),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_are_never_asked_larger_than_the_manifest_page_size() {
    // pageSize is 100 in the manifest; the jsonl batch is 5,000 records.
    let (_s, f) = offset_paged_source(AtMost100).await;
    let run = f.run(&["import", "--from", "src", "--to", "jsonl:out.jsonl"]);
    assert_eq!(run.ok_json()["written"], 10, "{}", run.render());
}

/// Page `c4`, the last one of a cursor listing: r5 alone, then r5 and r6
/// once it has been asked `grow_after` times (a record added at the end).
struct LastPage {
    asked: std::sync::atomic::AtomicUsize,
    grow_after: usize,
}

impl wiremock::Respond for LastPage {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut data = vec![json!({"id": "r5"})];
        if n >= self.grow_after {
            data.push(json!({"id": "r6"}));
        }
        crate::support::ok(json!({"data": data, "next": null}))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_cursor_import_resumes_from_its_last_page_not_from_the_start() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let s = crate::support::mock::server().await;
    let page = |data: Value, next: &str| crate::support::ok(json!({"data": data, "next": next}));
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param_is_missing("cursor"))
        .once(page(json!([{"id": "r1"}, {"id": "r2"}]), "c2"), &s)
        .await;
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("cursor", "c2"))
        .once(page(json!([{"id": "r3"}, {"id": "r4"}]), "c4"), &s)
        .await;
    // The first run reads c4 once; each of the two resumes reads it again
    // (and nothing before it).
    Mock::given(method("GET"))
        .and(path("/items"))
        .and(query_param("cursor", "c4"))
        .respond_with(LastPage {
            asked: Default::default(),
            grow_after: 2,
        })
        .expect(3)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write(
        "src/connector.json",
        &json!({"actions": {"list": {"path": "/items", "records": "/data",
            "pagination": {"type": "cursor", "cursorParam": "cursor", "cursorPath": "/next",
                           "limitParam": "limit", "pageSize": 2}}}})
        .to_string(),
    );
    f.write(
        "src/account.json",
        &format!(r#"{{"connector": "http", "baseUrl": "{}"}}"#, s.uri()),
    );
    let args = ["import", "--from", "src", "--to", "jsonl:out.jsonl"];
    let first = f.run(&args).ok_json();
    assert_eq!(
        (first["read"].clone(), first["offset"].clone()),
        (json!(5), json!(5))
    );

    let resume = [&args[..], &["--resume"]].concat();
    let again = f.run(&resume);
    let summary = again.ok_json();
    assert_eq!(
        (summary["read"].clone(), summary["offset"].clone()),
        (json!(0), json!(5)),
        "{}",
        again.render()
    );
    assert!(
        again.stderr.contains("reading on from offset 5"),
        "{}",
        again.render()
    );

    // r6 was added at the end of the listing: the next resume reads it alone.
    let grown = f.run(&resume).ok_json();
    assert_eq!(
        (
            grown["read"].clone(),
            grown["written"].clone(),
            grown["offset"].clone()
        ),
        (json!(1), json!(1), json!(6))
    );
    assert_eq!(
        jsonl_field(&f.read("out.jsonl"), "id"),
        ["r1", "r2", "r3", "r4", "r5", "r6"]
    );
}

#[test]
fn a_locked_sqlite_destination_stops_the_run_resumably_instead_of_rejecting() {
    let f = Folder::new();
    let seed: String = (1..=5)
        .map(|i| json!({"id": format!("c{i}")}).to_string() + "\n")
        .collect();
    f.write("in.jsonl", &seed);
    f.write(
        "dest/account.json",
        r#"{"connector": "sqlite", "path": "d.db", "busyTimeoutSecs": 0.2}"#,
    );
    let args = ["import", "--from", "jsonl:in.jsonl", "--to", "dest"];
    // The file exists with ferry's table, and another program holds its
    // write lock for the whole run.
    let one = f.run_line("import --from jsonl:in.jsonl --to dest --limit 1");
    assert_eq!(one.ok_json()["written"], 1);
    let other = rusqlite::Connection::open(f.join("dest/d.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let locked = f.run(&args);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(locked.code, 1, "{}", locked.render());
    assert!(!f.exists("rejects.jsonl"), "{}", locked.render());
    snap_import!("locked_sqlite_destination", locked);

    let resumed = f.run(&[&args[..], &["--resume"]].concat());
    let summary = resumed.ok_json();
    assert_eq!(
        (
            summary["written"].clone(),
            summary["rejected"]["total"].clone()
        ),
        (json!(5), json!(0)),
        "{}",
        resumed.render()
    );
}

#[test]
fn a_record_without_the_id_field_is_rejected_on_every_local_destination() {
    let f = Folder::new();
    let mut lines: String = (1..=4)
        .map(|i| {
            json!({"id": format!("old{i}"), "email": format!("p{i}@example.com")}).to_string()
                + "\n"
        })
        .collect();
    lines.push_str(&(json!({"id": "old5"}).to_string() + "\n"));
    lines.push_str(&(json!({"id": "old6", "email": null}).to_string() + "\n"));
    f.write("in.jsonl", &lines);
    for to in ["jsonl:out.jsonl", "csv:out.csv", "sqlite:out.db"] {
        let run = f.run(&[
            "import",
            "--from",
            "jsonl:in.jsonl",
            "--to",
            to,
            "--id-field",
            "email",
        ]);
        assert_eq!(run.code, 3, "{to}: {}", run.render());
        let summary = run.json();
        assert_eq!(
            (summary["written"].clone(), summary["rejected"].clone()),
            (
                json!(4),
                json!({"total": 2, "byReason": {"missing email": 2}})
            ),
            "{to}: {}",
            run.render()
        );
        if to == "jsonl:out.jsonl" {
            snap_import!("id_field_missing", run);
            // Nothing is written under the id it came with.
            assert_eq!(
                jsonl_field(&f.read("out.jsonl"), "id"),
                [
                    "p1@example.com",
                    "p2@example.com",
                    "p3@example.com",
                    "p4@example.com"
                ]
            );
        }
    }
}

#[test]
fn the_id_field_names_a_field_the_map_made() {
    let f = Folder::new();
    let lines: String = (1..=3)
        .map(|i| json!({"id": i, "mail": format!("p{i}@example.com")}).to_string() + "\n")
        .collect();
    f.write("in.jsonl", &lines);
    f.write("map.json", r#"{"email": "mail", "mail": null}"#);
    let run = f.run_line(
        "import --from jsonl:in.jsonl --to jsonl:out.jsonl --map map.json --id-field email",
    );
    assert_eq!(run.ok_json()["written"], 3, "{}", run.render());
    assert_eq!(
        f.read("out.jsonl"),
        "{\"id\":\"p1@example.com\",\"email\":\"p1@example.com\"}\n\
         {\"id\":\"p2@example.com\",\"email\":\"p2@example.com\"}\n\
         {\"id\":\"p3@example.com\",\"email\":\"p3@example.com\"}\n"
    );
}

#[test]
fn values_set_to_null_name_their_record_the_first_20_then_a_count_and_all_with_v() {
    let f = Folder::new();
    let conn = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    conn.execute_batch("CREATE TABLE people (id TEXT PRIMARY KEY, birthdate DATE);")
        .unwrap();
    drop(conn);
    // Every accepted form once, then 23 that are not ISO 8601 dates.
    let mut lines = String::from(concat!(
        "{\"id\":\"ok1\",\"birthdate\":\"1990-05-12\"}\n",
        "{\"id\":\"ok2\",\"birthdate\":\"1990-05-12T10:20:30.000Z\"}\n",
        "{\"id\":\"ok3\",\"birthdate\":\"1990-05-12T23:00:00-05:00\"}\n",
    ));
    let bad = [
        "\"12/05/1990\"",
        "\"1990-13-01\"",
        "\"\"",
        "19900512",
        "\"1990-5-1\"",
    ];
    for i in 0..23 {
        lines.push_str(&format!(
            "{{\"id\":\"c{i}\",\"birthdate\":{}}}\n",
            bad[i % bad.len()]
        ));
    }
    f.write("in.jsonl", &lines);
    let args = [
        "import",
        "--from",
        "jsonl:in.jsonl",
        "--to",
        "sqlite:crm.db#people",
    ];
    let run = f.run(&args);
    assert_eq!(run.code, 0, "{}", run.render());
    snap_import!("warnings_name_the_first_20_records", run);
    let conn = rusqlite::Connection::open(f.join("crm.db")).unwrap();
    let kept: Vec<(String, Option<String>)> = conn
        .prepare("SELECT id, birthdate FROM people WHERE id LIKE 'ok%' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        kept,
        ["ok1", "ok2", "ok3"].map(|id| (id.to_string(), Some("1990-05-12".to_string())))
    );
    let nulls: i64 = conn
        .query_row(
            "SELECT count(*) FROM people WHERE birthdate IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(nulls, 23);
    // -v names every one of them; -q none.
    let mut verbose = vec!["-v"];
    verbose.extend(args);
    let run = f.run(&verbose);
    let named = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: record c"))
        .count();
    assert_eq!(named, 23, "{}", run.render());
    assert!(!run.stderr.contains("more values"), "{}", run.render());
    let mut quiet = vec!["-q"];
    quiet.extend(args);
    let run = f.run(&quiet);
    assert!(!run.stderr.contains("warning"), "{}", run.render());
    assert_eq!(run.json()["warnings"]["total"], 23);
}

#[test]
fn a_bad_rest_or_destination_pointer_in_the_map_is_a_usage_error_naming_the_file_and_key() {
    let f = Folder::new();
    f.write("in.jsonl", "{\"id\":\"a\",\"traits\":{\"x\":1}}\n");
    for (name, map) in [
        ("map_bad_rest", r#"{"metadata": {"rest": 7}}"#),
        (
            "map_pointer_inside_a_field",
            r#"{"address": "/traits/address", "/address/line_1": "/traits/street"}"#,
        ),
    ] {
        f.write("map.json", map);
        let run = f.run_line("import --from jsonl:in.jsonl --to jsonl:out.jsonl --map map.json");
        assert_eq!(run.code, 2, "{}", run.render());
        snap_import!(name, run);
        assert!(!f.exists("out.jsonl"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_stops_an_import_stuck_on_a_write_at_once() {
    // A destination that takes its time: the write answers after a minute,
    // so the first signal waits for the batch in flight.
    let s = crate::support::mock::server().await;
    Mock::given(method("PATCH"))
        .and(path("/items/c1"))
        .respond_with(crate::support::ok(json!({})).set_delay(Duration::from_secs(60)))
        .expect(1)
        .mount(&s)
        .await;
    let f = Folder::new();
    f.write("in.jsonl", &people(1));
    http_destination(&f, &s.uri(), "");
    let mut child = spawn(&f, &["import", "--from", "jsonl:in.jsonl", "--to", "dest"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.received_requests().await.unwrap_or_default().is_empty() {
        assert!(Instant::now() < deadline, "the import never sent its write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send("-INT", &child);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().expect("wait for ferry").is_none(),
        "the first signal waits for the batch in flight"
    );
    send("-TERM", &child);
    // Well before the write would have answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ferry") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a second signal did not stop the import"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status.code(), Some(130));
}

#[test]
fn an_offset_past_any_source_is_a_usage_error_not_an_overflow() {
    let f = Folder::new();
    f.write("in.jsonl", "{\"id\": \"a\"}\n");
    let run = f.run_line(
        "import --from jsonl:in.jsonl --to jsonl:out.jsonl --offset 18446744073709551615",
    );
    assert_eq!(run.code, 2, "{}", run.render());
    assert!(run.stderr.contains("--offset"), "{}", run.render());
}
