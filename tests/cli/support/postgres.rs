//! A throwaway PostgreSQL server for the `postgres` connector's tests: one
//! per test process, started on first use with Debian's `initdb` and
//! `pg_ctl` in a temporary folder, on a free port of 127.0.0.1, with fsync
//! off. As root it runs as the unprivileged `postgres` user (the server
//! refuses root). A watcher stops it when the test process ends, however it
//! ends, and removes the folder. Each test gets a database of its own. The
//! server also speaks TLS with a certificate from a CA made for it (openssl), and
//! one role ([`TLS_ONLY`]) may only log in over TLS.
//!
//! Without the binaries the tests fail, saying how to install them: no test
//! is skipped in silence.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The running server: where it listens, and who may log in.
pub struct Server {
    pub port: u16,
    pub user: String,
    /// The CA that signed the certificate the server presents for TLS
    /// (for 127.0.0.1), as a client's `sslrootcert`.
    pub ca: PathBuf,
    bin: PathBuf,
}

/// A role that may log in over TLS only.
pub const TLS_ONLY: &str = "ferrytls";

/// A database of its own for one test.
pub struct Database {
    /// `postgres://USER@127.0.0.1:PORT/NAME`.
    pub url: String,
    pub name: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The folder holding `initdb` and `pg_ctl`: on PATH, or Debian's
/// `/usr/lib/postgresql/<version>/bin` (newest first).
fn bin_dir() -> PathBuf {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return dir;
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!(
            "the postgres tests need PostgreSQL's initdb and pg_ctl, found neither on PATH \
             nor under /usr/lib/postgresql: install them with `apt-get install postgresql` \
             (.ci/run does)"
        )
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…`, as the `postgres` user when running as root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Server {
    /// The server of this test process, started on first use.
    pub fn get() -> &'static Server {
        SERVER.get_or_init(Server::start)
    }

    fn start() -> Server {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("ferry-pg-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        let data = dir.join("data");
        let user = if is_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run(
                chown,
                "chown (as root the server runs as the postgres user, which the postgresql package creates)",
            );
            "postgres".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        };
        let mut init = as_server_user(&bin.join("initdb"));
        init.args(["-A", "trust", "-U", &user, "--no-sync", "-E", "UTF8", "-D"])
            .arg(&data);
        run(init, "initdb");
        // TLS: a self-signed certificate for 127.0.0.1, and one role that
        // is refused without TLS (pg_hba.conf: the first match wins).
        // A CA, and the server's certificate signed by it (a verifier
        // refuses a CA certificate presented as the server's own).
        let mut cert = as_server_user(Path::new("sh"));
        cert.current_dir(&data).arg("-c").arg(
            "set -e
             openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=ferry test CA' \
                 -keyout ca.key -out ca.crt 2> /dev/null
             openssl req -new -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 \
                 -keyout server.key -out server.csr 2> /dev/null
             printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > server.ext
             openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                 -days 2 -extfile server.ext -out server.crt 2> /dev/null
             chmod 600 server.key",
        );
        run(cert, "openssl (the server's certificate)");
        let hba = format!(
            "local all all trust\n\
             hostnossl all {TLS_ONLY} 127.0.0.1/32 reject\n\
             host all all 127.0.0.1/32 trust\n\
             host all all ::1/128 trust\n"
        );
        // Written as this process: the server only needs to read it.
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        let port = free_port();
        let mut start = as_server_user(&bin.join("pg_ctl"));
        start
            .args(["-w", "-l"])
            .arg(dir.join("log"))
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -F -c full_page_writes=off -c synchronous_commit=off -c ssl=on",
                dir.display()
            ))
            .arg("start");
        run(start, "pg_ctl start");
        // Stop the server and remove its folder when this process ends,
        // whichever way it ends.
        let watcher = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = if is_root() {
                format!("runuser -u postgres -- '{}'", bin.join("pg_ctl").display())
            } else {
                format!("'{}'", bin.join("pg_ctl").display())
            },
            data = data.display(),
            dir = dir.display(),
        );
        // Never waited for: it outlives this process on purpose.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &watcher])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server's watcher");
        let server = Server {
            port,
            user,
            ca: data.join("ca.crt"),
            bin,
        };
        server.psql(
            "postgres",
            &format!("CREATE ROLE {TLS_ONLY} LOGIN SUPERUSER"),
        );
        server
    }

    /// A new, empty database.
    pub fn database(&self) -> Database {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        Database {
            url: format!("postgres://{}@127.0.0.1:{}/{name}", self.user, self.port),
            name,
        }
    }

    /// psql connected to database `db`, reading no startup file and
    /// stopping at the first error.
    pub fn psql_command(&self, db: &str) -> Command {
        let psql = self.bin.join("psql");
        let mut cmd = Command::new(if psql.is_file() {
            psql
        } else {
            PathBuf::from("psql")
        });
        cmd.args(["-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args(["-p", &self.port.to_string(), "-U", &self.user, "-d", db]);
        cmd
    }

    /// Run `sql` in database `db` with psql; its output, unaligned.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self
            .psql_command(db)
            .args(["-A", "-t", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }
}

impl Database {
    /// Run `sql` in this database; its output, unaligned, one row a line.
    pub fn sql(&self, sql: &str) -> String {
        Server::get().psql(&self.name, sql)
    }
}
