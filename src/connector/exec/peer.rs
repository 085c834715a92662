//! The child process of a code connector and the JSON-RPC conversation with
//! it (docs/protocol.md): one JSON message a line on its stdin and stdout,
//! requests both ways. ferry asks one thing at a time; while a call is open
//! the child may ask ferry to send HTTP requests (through the connector's
//! [`Engine`], so rate limits, retries, redaction and cassettes apply) and
//! send `log` notifications. Its stderr is its log, shown line by line and
//! kept (the last lines) for the error when it dies.
//!
//! Nothing here waits forever: a call has a timeout, a child that exits or
//! writes a line that is not JSON fails the open call at once, and the
//! child is killed when the connector is dropped (it runs in its own
//! process group, so a Ctrl-C reaches ferry, which then stops it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use crate::error::{failed, usage};
use crate::http::{Body, Engine, RequestSpec};
use crate::output::Output;

/// How many of the child's last stderr lines an error shows.
const STDERR_TAIL: usize = 12;

/// The longest line read from a child's stdout (a page of records is one).
const MAX_LINE: usize = 256 << 20;

/// The longest protocol line shown in an error.
const SHOWN_LINE: usize = 200;

/// What the child answered to one call.
pub enum Reply {
    Result(Value),
    /// A JSON-RPC error object: `code`, `message`, `data`.
    Error(Value),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// The child's stdin, shared by callers and the reader (which answers the
/// child's requests); `None` once closed, which tells the child to exit.
type Stdin = Arc<tokio::sync::Mutex<Option<ChildStdin>>>;

/// How long a child may take to exit after its stdin closes.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// What the reader and the callers share about the child's state.
#[derive(Default)]
struct State {
    /// Why the conversation is over (the child exited, broke the protocol).
    closed: Mutex<Option<String>>,
    /// The child broke the protocol: it is stopped at once rather than
    /// waited for, and its stderr says nothing about why.
    broken: AtomicBool,
    /// The child's last stderr lines.
    stderr: Mutex<VecDeque<String>>,
    /// Its stderr reached its end: the tail is whole.
    stderr_closed: AtomicBool,
    stderr_done: tokio::sync::Notify,
    /// Under `--dry-run`: the writing requests the child asked for, which
    /// were answered without being sent.
    captured: Mutex<Option<Vec<RequestSpec>>>,
    /// Under `--dry-run` on a read: the request the engine did not send.
    offline: Mutex<Option<RequestSpec>>,
}

impl State {
    fn close(&self, why: String, pending: &Pending) {
        if let Ok(mut closed) = self.closed.lock() {
            closed.get_or_insert(why);
        }
        // Dropping the senders wakes every waiting call.
        if let Ok(mut p) = pending.lock() {
            p.clear();
        }
    }

    fn closed(&self) -> Option<String> {
        self.closed.lock().ok().and_then(|c| c.clone())
    }

    fn stderr_tail(&self) -> String {
        let lines = self
            .stderr
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>());
        match lines {
            Ok(l) if !l.is_empty() => format!("; its last stderr lines:\n  {}", l.join("\n  ")),
            _ => String::new(),
        }
    }
}

/// How a child is started and who it is, for messages.
pub struct Launch {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The command as errors show it.
    pub shown: String,
    /// The folder it runs in (the connector folder).
    pub folder: std::path::PathBuf,
    /// "connector js (dataSourceApp.js)": how errors name it.
    pub name: String,
    /// How long one call may take.
    pub timeout: Duration,
    /// What to say when the program cannot be started.
    pub missing_hint: String,
}

/// A running child and the conversation with it.
pub struct Peer {
    name: String,
    timeout: Duration,
    stdin: Stdin,
    pending: Pending,
    state: Arc<State>,
    next_id: AtomicU64,
    /// One call at a time (docs/protocol.md): a child may be written as a
    /// plain loop.
    turn: tokio::sync::Mutex<()>,
    child: Mutex<Option<Child>>,
    /// The child's process group (its pid): what it started is stopped
    /// with it, even after the child itself has exited.
    group: Option<u32>,
}

impl Peer {
    /// Start the child and the tasks that read its stdout and stderr.
    pub fn start(launch: &Launch, engine: Arc<Engine>, out: Output) -> Result<Peer> {
        let (program, args) = launch
            .command
            .split_first()
            .ok_or_else(|| usage(format!("{}: the command is empty", launch.name)))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&launch.folder)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        // Its own process group: a Ctrl-C in the terminal reaches ferry
        // only, which saves its checkpoint and then stops the child.
        #[cfg(unix)]
        cmd.process_group(0);
        // And it dies with ferry, however ferry ends (a Ctrl-C that ends a
        // single action, kill -9): no child left running on its own.
        #[cfg(target_os = "linux")]
        // SAFETY: runs in the forked child before exec; prctl is
        // async-signal-safe and touches no memory of ours.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            usage(format!(
                "{}: could not start `{}`: {e}",
                launch.name, launch.shown
            ))
            .hint(launch.missing_hint.clone())
        })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            anyhow::bail!("{}: the child's pipes were not set up", launch.name);
        };
        let peer = Peer {
            name: launch.name.clone(),
            timeout: launch.timeout,
            stdin: Arc::new(tokio::sync::Mutex::new(Some(stdin))),
            pending: Pending::default(),
            state: Arc::new(State::default()),
            next_id: AtomicU64::new(1),
            turn: tokio::sync::Mutex::new(()),
            group: child.id(),
            child: Mutex::new(Some(child)),
        };
        tokio::spawn(read_stderr(stderr, peer.state.clone(), out.clone()));
        let reader = Reader {
            stdin: peer.stdin.clone(),
            pending: peer.pending.clone(),
            state: peer.state.clone(),
            engine,
            out,
            warned: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(reader.run(stdout));
        Ok(peer)
    }

    /// Call `method` with `params` and wait for the answer.
    pub async fn call(&self, method: &str, params: Value) -> Result<Reply> {
        let _turn = self.turn.lock().await;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, tx);
        }
        // Checked after the call is pending: a close from now on drops its
        // sender, and one before is seen here, so no call waits for nothing.
        if let Some(why) = self.state.closed() {
            return Err(failed(format!("{} {why}", self.name)).into());
        }
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if let Err(e) = write_line(&self.stdin, &line).await {
            self.wait_exit().await;
            let why = self
                .state
                .closed()
                .unwrap_or_else(|| format!("could not be written to ({e})"));
            return Err(failed(format!("{} {why}", self.name)).into());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) if self.state.broken.load(Ordering::Relaxed) => {
                self.kill();
                let why = self.state.closed().unwrap_or_default();
                Err(failed(format!("{} {why}", self.name))
                    .hint("stdout carries only protocol messages: write logs to stderr (console.error in JavaScript)")
                    .into())
            }
            Ok(Err(_)) => {
                self.wait_exit().await;
                let why = self.state.closed().unwrap_or_else(|| "stopped".into());
                Err(failed(format!(
                    "{} {why} while answering {method}{}",
                    self.name,
                    self.state.stderr_tail()
                ))
                .hint("the connector's program ended before it answered: fix what its stderr shows (-v shows all of it)")
                .into())
            }
            Err(_) => {
                self.kill();
                self.state.close(
                    format!("was stopped after {method} took too long"),
                    &self.pending,
                );
                Err(failed(format!(
                    "{} did not answer {method} within {} s; it was stopped{}",
                    self.name,
                    self.timeout.as_secs_f64(),
                    self.state.stderr_tail()
                ))
                .hint("a call waits this long at most: raise callTimeoutSecs in account.json if it needs more")
                .into())
            }
        }
    }

    /// From now on (a dry run), the child's writing requests are answered
    /// without being sent and kept; [`Peer::captured`] takes them and ends it.
    pub fn capture(&self) {
        if let Ok(mut c) = self.state.captured.lock() {
            *c = Some(Vec::new());
        }
    }

    /// The request a `--dry-run` read stopped at, if the call made one.
    pub fn take_offline(&self) -> Option<RequestSpec> {
        self.state.offline.lock().ok().and_then(|mut o| o.take())
    }

    /// The writing requests captured since [`Peer::capture`].
    pub fn captured(&self) -> Vec<RequestSpec> {
        self.state
            .captured
            .lock()
            .ok()
            .and_then(|mut c| c.take())
            .unwrap_or_default()
    }

    /// After the child's stdout closed: its exit status, into the reason.
    async fn wait_exit(&self) {
        let child = self.child.lock().ok().and_then(|mut c| c.take());
        if let Some(mut child) = child {
            let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            // The last stderr lines (the exception) come just before the
            // end: wait briefly for them so the error shows them.
            if !self.state.stderr_closed.load(Ordering::Relaxed) {
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    self.state.stderr_done.notified(),
                )
                .await;
            }
            let why = match status {
                Ok(Ok(s)) => match s.code() {
                    Some(code) => format!("exited with status {code}"),
                    None => "was killed by a signal".to_string(),
                },
                _ => "closed its stdout".to_string(),
            };
            // Its exit status says more than the reader's "exited".
            if let Ok(mut closed) = self.state.closed.lock() {
                *closed = Some(why);
            }
        }
    }

    /// Stop the child and whatever it started: its whole process group.
    fn kill(&self) {
        kill_group(self.group);
        if let Some(child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            drop(child); // kill_on_drop, for a platform without groups
        }
    }
}

impl Drop for Peer {
    /// The end of the command: close the child's stdin (the protocol's
    /// "exit now"), give it a moment to finish, then stop its group.
    fn drop(&mut self) {
        if let Ok(mut stdin) = self.stdin.try_lock() {
            stdin.take();
        }
        if let Some(mut child) = self.child.lock().ok().and_then(|mut c| c.take()) {
            let deadline = std::time::Instant::now() + EXIT_GRACE;
            while std::time::Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Whatever it started and left behind goes with it. (The child was
        // reaped a moment ago at most; pids are handed out in sequence, so
        // its id naming some other group by now would take a wrap-around
        // of the whole pid space in between.)
        kill_group(self.group);
    }
}

/// SIGKILL to the child's process group (it leads its own, see
/// [`Peer::start`]), so a program it started goes too.
fn kill_group(group: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = group.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg takes plain integers and touches no memory; the
        // group is the child's own (process_group(0) at spawn), so nothing
        // of ferry's is signalled.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    let _ = group;
}

/// Write one message and a newline.
async fn write_line(stdin: &Stdin, msg: &Value) -> std::io::Result<()> {
    let mut text = msg.to_string();
    text.push('\n');
    let mut stdin = stdin.lock().await;
    let Some(stdin) = stdin.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "stdin is closed",
        ));
    };
    stdin.write_all(text.as_bytes()).await?;
    stdin.flush().await
}

/// The child's stderr: each line shown as its log (redacted by the output)
/// and the last few kept for errors.
async fn read_stderr(stderr: tokio::process::ChildStderr, state: Arc<State>, out: Output) {
    // Bytes, decoded leniently: a log line that is not UTF-8 is still shown
    // (and the pipe kept open, or the child's next write would kill it).
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        out.info(&format!("connector: {line}"));
        if let Ok(mut tail) = state.stderr.lock() {
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(out.redact(line));
        }
    }
    state.stderr_closed.store(true, Ordering::Relaxed);
    state.stderr_done.notify_waiters();
}

/// The task reading the child's stdout: answers, requests, notifications.
struct Reader {
    stdin: Stdin,
    pending: Pending,
    state: Arc<State>,
    engine: Arc<Engine>,
    out: Output,
    warned: Arc<AtomicBool>,
}

impl Reader {
    async fn run(self, stdout: tokio::process::ChildStdout) {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // At most MAX_LINE bytes a line: a child that never ends one
            // must not take ferry's memory with it.
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)
                .await;
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.len() > MAX_LINE {
                let why = format!(
                    "wrote a line longer than {} MiB on stdout; a message is one line, and pages of records are better smaller",
                    MAX_LINE >> 20
                );
                self.state.broken.store(true, Ordering::Relaxed);
                self.state.close(why, &self.pending);
                let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
                return;
            }
            let line = match std::str::from_utf8(&buf) {
                Ok(line) => line.trim_end_matches(['\n', '\r']).to_string(),
                Err(e) => {
                    let why = format!("wrote bytes that are not UTF-8 on stdout ({e})");
                    self.state.broken.store(true, Ordering::Relaxed);
                    self.state.close(why, &self.pending);
                    return;
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let parsed =
                serde_json::from_str(&line).or_else(|e| match lone_surrogates_replaced(&line) {
                    Some(repaired) => serde_json::from_str(&repaired),
                    None => Err(e),
                });
            let msg: Map<String, Value> = match parsed {
                Ok(Value::Object(m)) => m,
                _ => {
                    let shown: String = self.out.redact(&line).chars().take(SHOWN_LINE).collect();
                    let why = format!(
                        "wrote a line that is not a JSON-RPC message on stdout: {shown}\n\
                         (stdout carries only the protocol; write logs to stderr)"
                    );
                    self.state.broken.store(true, Ordering::Relaxed);
                    self.state.close(why, &self.pending);
                    // Read on (and drop) until the caller stops the child,
                    // so its next write does not fail on a closed pipe.
                    let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
                    return;
                }
            };
            self.dispatch(msg).await;
        }
        // End of stdout: the child is gone (or going); the caller waiting
        // on an answer learns it from the dropped sender.
        self.state.close("exited".into(), &self.pending);
    }

    async fn dispatch(&self, mut msg: Map<String, Value>) {
        let method = msg
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        let method = method.as_deref();
        let id = msg.get("id").cloned();
        match (method, id) {
            (Some("http"), Some(id)) => {
                // Each request on its own task: a module's Promise.all
                // sends in parallel, within the engine's limits.
                let params = msg.get("params").cloned().unwrap_or(Value::Null);
                let (http, stdin) = (self.http_side(), self.stdin.clone());
                tokio::spawn(async move {
                    let reply = match http.send(params).await {
                        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        Err((kind, e)) => json!({"jsonrpc": "2.0", "id": id, "error": {
                            "code": -32000,
                            "message": format!("{e:#}"),
                            "data": {"kind": kind},
                        }}),
                    };
                    let _ = write_line(&stdin, &reply).await;
                });
            }
            (Some(other), Some(id)) => {
                let reply = json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32601,
                    "message": format!("ferry has no method {other:?}; it answers \"http\""),
                }});
                let _ = write_line(&self.stdin, &reply).await;
            }
            (Some("log"), None) => self.log(msg.get("params")),
            (Some(_), None) => {}
            (None, Some(id)) => {
                // Moved out, not copied: a page of records is most of a line.
                let error = msg.remove("error").filter(|e| !e.is_null());
                let reply = match (msg.remove("result"), error) {
                    (_, Some(e)) => Reply::Error(e),
                    (Some(r), None) => Reply::Result(r),
                    (None, None) => Reply::Result(Value::Null),
                };
                let tx = id
                    .as_u64()
                    .and_then(|id| self.pending.lock().ok().and_then(|mut p| p.remove(&id)));
                match tx {
                    Some(tx) => {
                        let _ = tx.send(reply);
                    }
                    None => {
                        // Waiting would end only at the timeout.
                        let why = format!(
                            "answered id {id}, which is not the id of the call ferry made (answer with the request's \"id\" as it was sent)"
                        );
                        self.state.broken.store(true, Ordering::Relaxed);
                        self.state.close(why, &self.pending);
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// A `log` notification: shown at its level.
    fn log(&self, params: Option<&Value>) {
        let level = params
            .and_then(|p| p.get("level"))
            .and_then(Value::as_str)
            .unwrap_or("info");
        let message = params
            .and_then(|p| p.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let text = format!("connector: {message}");
        match level {
            "warn" | "warning" | "error" => self.out.warn(&text),
            "debug" => self.out.verbose(&text),
            "once-verbose" => {
                if !self.warned.swap(true, Ordering::Relaxed) {
                    self.out.verbose(&text)
                }
            }
            _ => self.out.info(&text),
        }
    }

    fn http_side(&self) -> HttpSide {
        HttpSide {
            engine: self.engine.clone(),
            state: self.state.clone(),
        }
    }
}

/// What answering the child's `http` requests needs, owned by each task.
struct HttpSide {
    engine: Arc<Engine>,
    state: Arc<State>,
}

impl HttpSide {
    /// The child's `http` request, sent through the engine (or, under
    /// `--dry-run`, a writing one answered without being sent).
    /// Answers the response, or the error's kind (`config` for a request
    /// that cannot be sent as written, `transient` for a failed send).
    async fn send(
        self,
        params: Value,
    ) -> std::result::Result<Value, (&'static str, anyhow::Error)> {
        // The child words the failure with its own name around it.
        let req = request_of(&params).map_err(|e| ("config", failed(e).into()))?;
        if !matches!(req.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            if let Ok(mut c) = self.state.captured.lock() {
                if let Some(captured) = c.as_mut() {
                    captured.push(req);
                    return Ok(json!({"status": 200, "headers": {}, "body": "{}", "dryRun": true}));
                }
            }
        }
        let resp = self.engine.execute(&req).await.map_err(|e| {
            if let Some(offline) = e.downcast_ref::<crate::http::Offline>() {
                if let Ok(mut o) = self.state.offline.lock() {
                    o.get_or_insert(offline.0.clone());
                }
            }
            ("transient", e)
        })?;
        let headers: Map<String, Value> = resp
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
            .collect();
        Ok(json!({"status": resp.status, "headers": headers, "body": resp.body}))
    }
}

/// `line` with each `\uXXXX` escape of a lone UTF-16 surrogate replaced by
/// U+FFFD, or `None` when it has none. JavaScript's `JSON.stringify` and
/// Python's `json.dumps` write such escapes for text cut in the middle of
/// an emoji ("Hi 😀".slice(0, 4)); JSON parsers, serde's among them,
/// refuse them, and a whole page would be lost for one character.
fn lone_surrogates_replaced(line: &str) -> Option<String> {
    let hex = |s: &str| u16::from_str_radix(s, 16).ok();
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let (mut i, mut copied, mut changed) = (0, 0, false);
    while i + 1 < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let unit = (b[i + 1] == b'u')
            .then(|| line.get(i + 2..i + 6).and_then(hex))
            .flatten();
        match unit {
            Some(u) if (0xD800..0xDC00).contains(&u) => {
                let low = (line.get(i + 6..i + 8) == Some("\\u"))
                    .then(|| line.get(i + 8..i + 12).and_then(hex))
                    .flatten()
                    .filter(|l| (0xDC00..0xE000).contains(l));
                if low.is_some() {
                    i += 12; // a pair: a character outside the BMP
                } else {
                    out.push_str(&line[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                    changed = true;
                }
            }
            Some(u) if (0xDC00..0xE000).contains(&u) => {
                out.push_str(&line[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
                changed = true;
            }
            // Any other escape, `\\` included, is two bytes at least.
            _ => i += 2,
        }
    }
    changed.then(|| {
        out.push_str(&line[copied..]);
        out
    })
}

/// The [`RequestSpec`] of an `http` request's params: `method`, `url`
/// (absolute), `headers` (an object), and `bodyText` (a string, sent as it
/// is), `body` (any JSON, sent as JSON) or `form` (an object of strings,
/// sent form-encoded).
pub fn request_of(params: &Value) -> std::result::Result<RequestSpec, String> {
    let method = match params.get("method") {
        None | Some(Value::Null) => "GET",
        Some(Value::String(m)) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphabetic()) => m,
        Some(other) => {
            return Err(format!(
                "an http request with the method {other}: a method is a word like GET or POST"
            ))
        }
    };
    let url = params
        .get("url")
        .and_then(Value::as_str)
        .ok_or("an http request without a \"url\"")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "an http request to {url:?}: the url must be absolute (http:// or https://)"
        ));
    }
    let mut req = RequestSpec::new(method, url);
    let headers = match params.get("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Object(h)) => Some(h),
        Some(_) => {
            return Err(
                "an http request whose headers are not an object of names and values".into(),
            )
        }
    };
    if let Some(headers) = headers {
        for (k, v) in headers {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(format!("an http request with the header name {k:?}"));
            }
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if v.contains(['\r', '\n']) {
                return Err(format!(
                    "an http request whose header {k} holds a line break"
                ));
            }
            req = req.header(k.clone(), v);
        }
    }
    if let Some(text) = params.get("bodyText").filter(|t| !t.is_null()) {
        let Value::String(text) = text else {
            return Err("an http request whose bodyText is not a string".into());
        };
        req.body = Some(Body::Text(text.clone()));
        return Ok(req);
    }
    match (params.get("body"), params.get("form")) {
        (_, Some(Value::Object(form))) => {
            let fields = form
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect();
            req.body = Some(Body::Form(fields));
        }
        (Some(Value::Null) | None, _) => {}
        (Some(body), _) => req = req.json(body.clone()),
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_params_become_a_request() {
        let req = request_of(&json!({
            "method": "post",
            "url": "http://h/cats",
            "headers": {"Authorization": "Bearer t", "X-N": 1},
            "body": {"name": "Tom"}
        }))
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.url, "http://h/cats");
        assert_eq!(
            req.headers,
            vec![
                ("Authorization".to_string(), "Bearer t".to_string()),
                ("X-N".to_string(), "1".to_string())
            ]
        );
        assert_eq!(req.body, Some(Body::Json(json!({"name": "Tom"}))));
        let form = request_of(&json!({"url": "https://h/t", "form": {"a": "b"}})).unwrap();
        assert_eq!(form.method, "GET");
        assert_eq!(form.body, Some(Body::Form(vec![("a".into(), "b".into())])));
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character_and_pairs_stay() {
        let cut = r#"{"name":"Hi \ud83d","ok":"\ud83d\ude00","back":"\\ud83d","low":"\udc00x"}"#;
        let fixed = lone_surrogates_replaced(cut).unwrap();
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["name"], "Hi \u{fffd}");
        assert_eq!(v["ok"], "😀");
        assert_eq!(v["back"], "\\ud83d");
        assert_eq!(v["low"], "\u{fffd}x");
        assert_eq!(lone_surrogates_replaced(r#"{"a":"\ud83d\ude00"}"#), None);
    }

    #[test]
    fn a_bad_method_or_header_is_refused_not_sent_as_something_else() {
        for params in [
            json!({"url": "http://h/", "method": "G ET"}),
            json!({"url": "http://h/", "method": 5}),
            json!({"url": "http://h/", "headers": [["a", "b"]]}),
            json!({"url": "http://h/", "headers": {"bad name": "x"}}),
        ] {
            assert!(request_of(&params).is_err(), "{params}");
        }
    }

    #[test]
    fn a_relative_or_missing_url_is_refused() {
        assert!(request_of(&json!({"url": "/cats"}))
            .unwrap_err()
            .contains("must be absolute"));
        assert!(request_of(&json!({}))
            .unwrap_err()
            .contains("without a \"url\""));
    }
}
