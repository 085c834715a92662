//! The hermetic harness: a temporary connector folder, a `ferry` command with
//! a cleared environment, and one rendering of a run (exit code, stdout,
//! stderr) for insta snapshots with unstable parts filtered.

#![allow(dead_code)]

pub mod inflight;
pub mod mock;
pub mod openapi;
pub mod postgres;
pub mod saas;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A temporary folder to run ferry in; removed on drop.
pub struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    pub fn new() -> Folder {
        Folder {
            dir: tempfile::Builder::new()
                .prefix("ferry-test-")
                .tempdir()
                .expect("create a temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file (creating folders) and return its path.
    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.join(rel).exists()
    }

    /// `ferry` run in this folder with a cleared environment: no HOME, no
    /// user variables, no terminal.
    pub fn ferry(&self) -> Command {
        Command::from_std(self.ferry_std())
    }

    /// [`Folder::ferry`] as a plain process command, for a run the test
    /// drives itself.
    fn ferry_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.current_dir(self.path())
            .env_clear()
            .env("HOME", self.path())
            .env("NO_COLOR", "1");
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }

    /// Start `ferry ARGS` here in the background, in the same hermetic
    /// environment as [`Folder::ferry`], with stdout and stderr captured, so
    /// a test can signal it or race it while it runs.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.spawn_with(args, &[])
    }

    /// [`Folder::spawn`] with extra environment variables.
    pub fn spawn_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
        use std::process::Stdio;
        self.ferry_std()
            .envs(env.iter().copied())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ferry")
    }

    /// Run `ferry ARGS` here and capture the outcome.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.ferry().args(args))
    }

    /// [`Folder::run`] with the arguments written as one line, split at
    /// white space (for arguments that hold none).
    pub fn run_line(&self, line: &str) -> Run {
        self.run(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Run `ferry ARGS` here with its HTTP engines on a virtual clock (the
    /// `FERRY_TEST_CLOCK` test hook): a retry or rate-limit wait returns at
    /// once, and the waits ferry asked for are answered with the run.
    pub fn run_on_virtual_clock(&self, args: &[&str]) -> (Run, Waits) {
        let log = tempfile::NamedTempFile::new().expect("a file for the waits");
        let run = self.run_cmd(self.ferry().env("FERRY_TEST_CLOCK", log.path()).args(args));
        let text = std::fs::read_to_string(log.path()).expect("read the waits");
        (run, Waits::parse(&text))
    }

    pub fn run_cmd(&self, cmd: &mut Command) -> Run {
        let out = cmd.output().expect("run ferry");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            folder: self.path().to_path_buf(),
        }
    }
}

/// The waits one run asked its virtual clock for, in order: `retry` (before
/// trying a request again) and `slot` (for a rate-limit slot).
#[derive(Debug, Clone, PartialEq)]
pub struct Waits(pub Vec<(String, std::time::Duration)>);

impl Waits {
    /// Lines such as `retry 1000.000ms`, as the engine's test clock writes them.
    fn parse(text: &str) -> Waits {
        Waits(
            text.lines()
                .map(|line| {
                    let (why, ms) = line.split_once(' ').expect("why and wait");
                    let ms: f64 = ms.trim_end_matches("ms").parse().expect("milliseconds");
                    (
                        why.to_string(),
                        std::time::Duration::from_secs_f64(ms / 1000.0),
                    )
                })
                .collect(),
        )
    }

    /// The waits for `why` (`retry` or `slot`).
    pub fn of(&self, why: &str) -> Vec<std::time::Duration> {
        (self.0.iter())
            .filter(|(w, _)| w == why)
            .map(|(_, wait)| *wait)
            .collect()
    }
}

/// What one run of ferry printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    folder: PathBuf,
}

impl Run {
    /// Fail unless none of `secrets` (canary credentials) is in stdout or stderr.
    pub fn hides(&self, secrets: &[&str], what: &str) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret) && !self.stderr.contains(secret),
                "{what} was printed:\n{}",
                self.render()
            );
        }
    }

    /// stdout parsed as JSON; panics with the run when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.render()))
    }

    /// Assert success and answer stdout as JSON.
    pub fn ok_json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "expected success:\n{}", self.render());
        self.json()
    }

    /// Exit code, stdout and stderr in one text with unstable parts filtered.
    pub fn render(&self) -> String {
        let text = format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        filter(&text, &self.folder)
    }
}

/// Replace the temporary folder, times, durations and generated ids.
pub fn filter(text: &str, folder: &Path) -> String {
    let mut text = text.replace(&folder.display().to_string(), "[DIR]");
    if let Ok(canon) = folder.canonicalize() {
        text = text.replace(&canon.display().to_string(), "[DIR]");
    }
    let rules: &[(&str, &str)] = &[
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[TIME]",
        ),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[UUID]",
        ),
        (r"\b\d+(\.\d+)?\s?(ms|s)\b", "[DURATION]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ];
    for (pattern, replacement) in rules {
        let re = regex::Regex::new(pattern).expect("valid filter");
        text = re.replace_all(&text, *replacement).into_owned();
    }
    text
}

/// Run ferry on a pseudo-terminal (util-linux `script`): wait for `prompt`,
/// then type `answer`. Answers the exit code and the screen.
#[cfg(target_os = "linux")]
pub fn on_terminal(f: &Folder, args: &str, prompt: &str, answer: &str) -> (i32, String) {
    on_terminal_dialog(f, args, &[(prompt, answer)])
}

/// Run `ferry ARGS` on a real terminal and answer its prompts in turn: for
/// each `(prompt, answer)`, wait until the screen shows `prompt` and the
/// terminal has left its line mode (echo off: ferry is reading the answer,
/// a key or a hidden line), then type `answer`. A terminal switching to
/// hidden input drops what was typed ahead, so answers are not queued.
/// Every wait is for output or a terminal state, never for a fixed time;
/// each has a generous deadline. Answers the exit code and the screen.
#[cfg(target_os = "linux")]
pub fn on_terminal_dialog(f: &Folder, args: &str, dialog: &[(&str, &str)]) -> (i32, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};
    let mut child = spawn_on_terminal(f, args);
    // The screen so far, and a signal each time it grows.
    let screen = Arc::new((Mutex::new(String::new()), Condvar::new()));
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = {
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (text, grew) = &*screen;
                text.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
                grew.notify_all();
            }
        })
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let mut seen = 0;
    for (prompt, answer) in dialog {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (text, grew) = &*screen;
        let mut shown = text.lock().unwrap();
        loop {
            if let Some(at) = shown[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no prompt {prompt:?} on:\n{shown}");
            shown = grew.wait_timeout(shown, left).unwrap().0;
        }
        drop(shown);
        let pty = pty_of(child.id(), deadline);
        while echoes(&pty) {
            assert!(
                Instant::now() < deadline,
                "the terminal never left line mode after {prompt:?}"
            );
            // Polled: a terminal mode change prints nothing to wait on.
            std::thread::sleep(Duration::from_millis(5));
        }
        stdin.write_all(answer.as_bytes()).expect("type");
        stdin.flush().expect("type");
    }
    let status = child.wait().expect("wait");
    reader.join().expect("reader");
    let text = screen.0.lock().unwrap().clone();
    (status.code().unwrap_or(-1), text)
}

/// What a terminal session showed, as text for a snapshot: every line that
/// was drawn, in order (a line erased to be drawn again, as a question is
/// after its answer, appears again on a line of its own), with the
/// cursor's hiding and showing marked as `<hide cursor>` and `<show
/// cursor>` and other control sequences left out; the temporary folder and
/// the unstable parts filtered as in [`Run::render`].
#[cfg(target_os = "linux")]
pub fn transcript(screen: &str, f: &Folder) -> String {
    let control = regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]|\r").expect("valid");
    let mut out = String::new();
    let mut last = 0;
    for m in control.find_iter(screen) {
        out.push_str(&screen[last..m.start()]);
        last = m.end();
        match m.as_str() {
            "\x1b[?25l" => out.push_str("<hide cursor>"),
            "\x1b[?25h" => out.push_str("<show cursor>"),
            "\x1b[2K" if !out.is_empty() && !out.ends_with('\n') => out.push('\n'),
            _ => {}
        }
    }
    out.push_str(&screen[last..]);
    filter(&out, f.path())
}

/// Whether the cursor is visible when the session ends: every time a
/// question hid it, something showed it again.
#[cfg(target_os = "linux")]
pub fn cursor_shown_at_the_end(screen: &str) -> bool {
    match (screen.rfind("\x1b[?25l"), screen.rfind("\x1b[?25h")) {
        (Some(hidden), Some(shown)) => shown > hidden,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

/// The pseudo-terminal script(1) gave the command under `root` (the
/// `timeout` process): the `/dev/pts/N` a descendant reads as its stdin.
#[cfg(target_os = "linux")]
fn pty_of(root: u32, deadline: std::time::Instant) -> PathBuf {
    loop {
        let mut family = vec![root];
        let mut i = 0;
        while i < family.len() {
            family.extend(children_of(family[i]));
            i += 1;
        }
        for pid in family {
            if let Ok(tty) = std::fs::read_link(format!("/proc/{pid}/fd/0")) {
                if tty.starts_with("/dev/pts/") {
                    return tty;
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no terminal under {root}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The processes whose parent is `pid`.
#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // `PID (COMM) STATE PPID ...`: the parent follows the last `)`.
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Whether the terminal `pty` still echoes (its line mode): a key prompt
/// (raw mode) and a hidden prompt both turn echo off while they read.
#[cfg(target_os = "linux")]
fn echoes(pty: &Path) -> bool {
    let out = std::process::Command::new("stty")
        .arg("-F")
        .arg(pty)
        .arg("-a")
        .output()
        .expect("run stty");
    !String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w == "-echo")
}

/// `ferry ARGS` under script(1), which gives it a pseudo-terminal; at most 30 s.
#[cfg(target_os = "linux")]
fn spawn_on_terminal(f: &Folder, args: &str) -> std::process::Child {
    let ferry = assert_cmd::cargo::cargo_bin("ferry");
    std::process::Command::new("timeout")
        .args([
            "30",
            "script",
            "-qec",
            &format!("{} {args}", ferry.display()),
            "/dev/null",
        ])
        .current_dir(f.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", f.path())
        .env("TERM", "dumb")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run script(1) from util-linux")
}

/// Snapshot a [`Run`] (exit code, stdout, stderr) under `name`.
#[macro_export]
macro_rules! snap {
    ($name:expr, $run:expr) => {
        insta::assert_snapshot!($name, $run.render())
    };
}

/// `ferry init DIR` in `f`: the http connector of the sandbox at `url`.
pub fn init_sandbox_folder(f: &Folder, dir: &str, url: &str) {
    let init = f.run(&["init", dir, "--yes", "--set", &format!("baseUrl={url}")]);
    assert_eq!(init.code, 0, "{}", init.render());
}

/// `ferry sandbox` as a child process; killed when dropped, so a failing
/// test leaves nothing behind.
pub struct Sandbox {
    pub child: std::process::Child,
    pub url: String,
}

impl Sandbox {
    /// Start `ferry sandbox ARGS` (pass `--port 0`) and read its address.
    pub fn start(args: &[&str]) -> Sandbox {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
            .arg("sandbox")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ferry sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the first line");
        let banner: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("first line {line:?} is not JSON: {e}"));
        let url = banner["url"].as_str().expect("url").to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Sandbox { child, url }
    }

    /// A connector folder like examples/sandbox, pointed at this sandbox.
    pub fn folder(&self, extra_account: &str) -> Folder {
        let f = Folder::new();
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/sandbox/connector.json"),
        )
        .expect("examples/sandbox/connector.json");
        f.write("connector.json", &manifest);
        f.write(
            "account.json",
            &format!(
                r#"{{"connector": "http", "baseUrl": "{}"{extra_account}}}"#,
                self.url
            ),
        );
        f
    }

    /// GET `path` from the sandbox as JSON, to check what a run left there
    /// (HTTP/1.0 over a plain socket: the server closes after the answer).
    pub fn get(&self, path: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let addr = self.url.trim_start_matches("http://");
        let mut conn = std::net::TcpStream::connect(addr).expect("connect to the sandbox");
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
        let mut answer = String::new();
        conn.read_to_string(&mut answer).expect("read the answer");
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path}: {answer:?}: {e}"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A 200 answer with `body` as JSON, for wiremock.
/// Mount a mock that answers with `response` and fails the test (when the
/// server drops) unless its request came exactly once: the shape of most
/// connector tests' expectations.
pub trait MountOnce {
    fn once<'a>(
        self,
        response: impl wiremock::Respond + 'static,
        server: &'a wiremock::MockServer,
    ) -> impl std::future::Future<Output = ()> + 'a;
}

impl MountOnce for wiremock::MockBuilder {
    fn once<'a>(
        self,
        response: impl wiremock::Respond + 'static,
        server: &'a wiremock::MockServer,
    ) -> impl std::future::Future<Output = ()> + 'a {
        self.respond_with(response).expect(1).mount(server)
    }
}

pub fn ok(body: serde_json::Value) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(body)
}

/// Each line of a JSON lines text, parsed.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect()
}

/// `ferry -v import ARGS…`, which must say that its records pass through
/// as JSON text.
pub fn import_passing_through(f: &Folder, args: &[&str]) -> Run {
    let run = f.run(&[&["-v", "import"], args].concat());
    assert!(
        run.stderr.contains("records pass through as JSON text"),
        "{}",
        run.render()
    );
    run
}

/// `ferry -v import ARGS… --id-field id`: naming the id field changes
/// nothing but asks for every record to be parsed, and the run must not
/// say that records pass through.
pub fn import_parsed(f: &Folder, args: &[&str]) -> Run {
    let run = f.run(&[&["-v", "import"], args, &["--id-field", "id"]].concat());
    assert!(!run.stderr.contains("pass through"), "{}", run.render());
    run
}

/// The string at `field` of each line of JSON lines `text`, in order.
pub fn jsonl_field(text: &str, field: &str) -> Vec<String> {
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v[field]
                .as_str()
                .unwrap_or_else(|| panic!("no string {field} in {l}"))
                .to_string()
        })
        .collect()
}

/// Fail, naming every case at once, unless each run exited 2 (a usage or
/// configuration error) and printed nothing on stdout.
pub fn exit_2_each(runs: &[(&str, Run)]) {
    let wrong: Vec<String> = runs
        .iter()
        .filter(|(_, run)| run.code != 2 || !run.stdout.is_empty())
        .map(|(name, run)| format!("{name}:\n{}", run.render()))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases did not fail with exit 2 and an empty stdout:\n{}",
        wrong.len(),
        runs.len(),
        wrong.join("\n")
    );
}
