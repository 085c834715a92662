//! The connection to the server, the table's layout, and what a database
//! error means for a run: the record's fault (a type or constraint
//! violation, which rejects that record) or the database's (a lost
//! connection, a read-only database, a full disk, missing privileges, which
//! stops the run resumably).

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{failed, usage};

/// How many connections a connector opens at most (its spec's parallelism).
pub(super) const CONNECTIONS: usize = 2;

/// The marker a table ferry created carries (its comment).
pub(super) const MANAGED: &str = "ferry managed table v1";

/// How the connector reaches its table.
pub(super) struct Db {
    pub(super) config: Config,
    /// TLS to the server (`sslmode` require or verify-full), else none.
    pub(super) tls: Option<MakeRustlsConnect>,
    /// The URL without its password, as messages name the database.
    pub(super) shown: String,
    pub(super) schema: String,
    pub(super) table: String,
    pub(super) id_field: String,
    /// A few connections, each opened on first use: a transaction needs
    /// its connection to itself, and import writes [`CONNECTIONS`] batches
    /// at once (one is sent while the database writes the other).
    conns: Vec<Mutex<Option<Client>>>,
    /// The table's layout once seen: a run asks for it before every batch.
    seen: std::sync::Mutex<Option<Layout>>,
    /// The group tables are there (export asks before every batch).
    pub(super) groups_ready: std::sync::atomic::AtomicBool,
}

/// What the table is, when it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Created by ferry: `id`, the record as `data jsonb`, `updated_at`,
    /// `seq` (from the table's own sequence) and `deleted`.
    Managed,
    /// Any other table.
    Existing,
}

/// The parts of a read that differ between the layouts (the table is
/// aliased `x`).
pub(super) struct Shape {
    /// The record as jsonb.
    pub(super) record: String,
    /// Which rows are records (not tombstones).
    pub(super) live: &'static str,
    /// The key column, quoted: `id` in ferry's table (whatever `idField`
    /// names in the record), the `idField` column in an existing one.
    pub(super) id_column: String,
    /// `$1` as a value of the id column's type.
    pub(super) id_param: String,
    /// An existing table's columns; `None` for ferry's table.
    pub(super) table: Option<super::existing::Table>,
}

/// `text` as an SQL string literal, the same whatever the server's
/// `standard_conforming_strings` (an escape string: backslashes doubled).
pub(super) fn literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// `"name"`, quoted as an SQL identifier.
pub(super) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Db {
    pub(super) fn new(
        config: Config,
        tls: Option<MakeRustlsConnect>,
        shown: String,
        schema: String,
        table: String,
        id_field: String,
    ) -> Db {
        Db {
            config,
            tls,
            shown,
            schema,
            table,
            id_field,
            conns: (0..CONNECTIONS).map(|_| Mutex::new(None)).collect(),
            seen: std::sync::Mutex::new(None),
            groups_ready: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `"schema"."table"`.
    pub(super) fn qualified(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.table))
    }

    /// The table's own sequence (a ferry table's change numbers).
    pub(super) fn sequence(&self) -> String {
        format!(
            "{}.{}",
            ident(&self.schema),
            ident(&format!("{}_ferry_seq", self.table))
        )
    }

    /// `table` of `url`, as messages say it.
    pub(super) fn named(&self) -> String {
        format!("table \"{}\" of {}", self.table, self.shown)
    }

    /// A connection to itself: a free one, else the first once it is free;
    /// opened on first use (and again after it was lost).
    pub(super) async fn client(&self) -> Result<MutexGuard<'_, Option<Client>>> {
        let free = self.conns.iter().find_map(|c| c.try_lock().ok());
        let mut guard = match free {
            Some(guard) => guard,
            None => self.conns[0].lock().await,
        };
        if guard.as_ref().is_some_and(Client::is_closed) {
            *guard = None;
        }
        if guard.is_none() {
            let refused = |e: tokio_postgres::Error| self.failure(&e, "could not connect to");
            // The connection task ends with the connection; its error
            // reaches the next statement, which says it.
            let client = match &self.tls {
                Some(tls) => {
                    let (client, connection) =
                        self.config.connect(tls.clone()).await.map_err(refused)?;
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    client
                }
                None => {
                    let (client, connection) = self.config.connect(NoTls).await.map_err(refused)?;
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    client
                }
            };
            *guard = Some(client);
        }
        Ok(guard)
    }

    /// The table's layout; `None` when it does not exist (asked again
    /// until it does).
    pub(super) async fn layout(&self, client: &Client) -> Result<Option<Layout>> {
        if let Some(layout) = *self.seen.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(Some(layout));
        }
        let row = client
            .query_opt(
                "SELECT obj_description(c.oid, 'pg_class')
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'f')",
                &[&self.schema, &self.table],
            )
            .await
            .map_err(|e| self.failure(&e, "could not read"))?;
        let layout = row.map(|r| match r.get::<_, Option<String>>(0).as_deref() {
            Some(MANAGED) => Layout::Managed,
            _ => Layout::Existing,
        });
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = layout;
        Ok(layout)
    }

    /// The layout of a table that must be ferry's for `what` (getupdates,
    /// export): an existing table's changes are not tracked.
    pub(super) async fn managed(&self, client: &Client, what: &str) -> Result<Option<Layout>> {
        let layout = self.layout(client).await?;
        if layout == Some(Layout::Existing) {
            return Err(usage(format!(
                "{} was not created by ferry, and {what} needs a table ferry created: it tracks changes and deletes",
                self.named()
            ))
            .hint("point \"table\" in account.json at a new table name, and ferry creates it on the first write")
            .into());
        }
        Ok(layout)
    }

    /// How to read the table, when it exists: the same queries serve both
    /// layouts with these parts.
    pub(super) async fn shape(&self, client: &Client) -> Result<Option<Shape>> {
        Ok(match self.layout(client).await? {
            None => None,
            Some(Layout::Managed) => Some(Shape {
                record: "x.data".into(),
                live: "NOT x.deleted",
                id_column: "id".into(),
                id_param: "$1".into(),
                table: None,
            }),
            Some(Layout::Existing) => {
                let table = self.existing(client).await?;
                Some(Shape {
                    record: "to_jsonb(x)".into(),
                    live: "true",
                    id_column: ident(&self.id_field),
                    id_param: format!("$1::text::{}", table.id_type),
                    table: Some(table),
                })
            }
        })
    }

    /// The sequence as a text literal, for `nextval('…')`.
    pub(super) fn sequence_literal(&self) -> String {
        literal(&self.sequence())
    }

    /// The statement that makes the statements after it in one query wait
    /// for any other connection creating this table's objects: `CREATE …
    /// IF NOT EXISTS` run at once by two connections (two batches, two
    /// processes) fails on the catalog's unique index. A transaction-level
    /// advisory lock, held until the query's implicit transaction ends.
    pub(super) fn ddl_lock(&self) -> String {
        format!(
            "SELECT pg_advisory_xact_lock(hashtext({}));",
            literal(&format!("ferry {}", self.qualified()))
        )
    }

    /// Create ferry's table, its sequence and its marker.
    pub(super) async fn create(&self, client: &Client) -> Result<()> {
        let (t, seq) = (self.qualified(), self.sequence());
        let index = ident(&format!("{}_ferry_seq_idx", self.table));
        client
            .batch_execute(&format!(
                "{lock}
                 CREATE SEQUENCE IF NOT EXISTS {seq};
                 CREATE TABLE IF NOT EXISTS {t} (
                     id text COLLATE \"C\" PRIMARY KEY,
                     data jsonb,
                     updated_at timestamptz NOT NULL DEFAULT now(),
                     seq bigint NOT NULL,
                     created_seq bigint NOT NULL,
                     deleted boolean NOT NULL DEFAULT false
                 );
                 CREATE INDEX IF NOT EXISTS {index} ON {t} (seq);
                 COMMENT ON TABLE {t} IS '{MANAGED}';",
                lock = self.ddl_lock(),
            ))
            .await
            .map_err(|e| self.failure(&e, "could not create"))?;
        Ok(())
    }

    /// `ferry check`: the server, the table, its records and whether this
    /// account may write to it.
    pub(super) async fn check(&self) -> Result<Value> {
        let guard = self.client().await?;
        let client = guard
            .as_ref()
            .context("the PostgreSQL connection is closed")?;
        let version: String = client
            .query_one("SHOW server_version", &[])
            .await
            .map_err(|e| self.failure(&e, "could not read"))?
            .get(0);
        let mut report = json!({
            "ok": true,
            "url": self.shown,
            "server": format!("PostgreSQL {version}"),
            "schema": self.schema,
            "table": self.table,
        });
        match self.layout(client).await? {
            None => {
                let can_create: bool = client
                    .query_one("SELECT has_schema_privilege($1, 'CREATE')", &[&self.schema])
                    .await
                    .map_err(|e| self.failure(&e, "could not read"))?
                    .get(0);
                report["exists"] = json!(false);
                report["canCreate"] = json!(can_create);
                report["note"] = json!(if can_create {
                    "the table is created on the first write"
                } else {
                    "this user may not create the table in this schema: ask for CREATE on it, or create the table"
                });
                report["ok"] = json!(can_create);
            }
            Some(layout) => {
                let count: i64 = client
                    .query_one(
                        &match layout {
                            Layout::Managed => format!(
                                "SELECT count(*) FROM {} WHERE NOT deleted",
                                self.qualified()
                            ),
                            Layout::Existing => {
                                format!("SELECT count(*) FROM {}", self.qualified())
                            }
                        },
                        &[],
                    )
                    .await
                    .map_err(|e| self.failure(&e, "could not read"))?
                    .get(0);
                // Each privilege on its own (the list form is true when any
                // one is held), and TEMP for the batches' temporary table.
                let can_write: bool = client
                    .query_one(
                        "SELECT has_table_privilege($1, 'INSERT') AND has_table_privilege($1, 'UPDATE')
                            AND has_table_privilege($1, 'DELETE')
                            AND has_database_privilege(current_database(), 'TEMP')",
                        &[&self.qualified()],
                    )
                    .await
                    .map_err(|e| self.failure(&e, "could not read"))?
                    .get(0);
                report["exists"] = json!(true);
                report["layout"] = json!(match layout {
                    Layout::Managed => "managed by ferry (changes tracked)",
                    Layout::Existing => "existing table (used as it is)",
                });
                report["records"] = json!(count);
                report["canWrite"] = json!(can_write);
                let mut ok = can_write;
                if layout == Layout::Existing {
                    let table = self.existing(client).await?;
                    report["columns"] = json!(table.columns.len());
                    report["idUnique"] = json!(table.id_unique);
                    if !table.id_unique {
                        report["note"] = json!(format!(
                            "column \"{}\" is neither a primary key nor unique: ferry can read the table but not write to it",
                            self.id_field
                        ));
                    }
                    ok = ok && table.id_unique;
                }
                report["ok"] = json!(ok);
            }
        }
        Ok(report)
    }

    /// A database error as the run must treat it: the database's failure,
    /// which stops the run (a lost connection, a read-only database, a full
    /// disk, no privilege, a server that is not there), with `doing` and
    /// the database named, and the server's own message.
    pub(super) fn failure(&self, err: &tokio_postgres::Error, doing: &str) -> anyhow::Error {
        let (message, hint) = match err.as_db_error() {
            Some(db) => (
                db.message().to_string(),
                match db.code() {
                    c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                        && db.message().contains("no encryption") =>
                    {
                        "the server takes this user over TLS only: set \"sslmode\" to \"require\" in account.json"
                    }
                    c if *c == SqlState::INVALID_PASSWORD
                        || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                    {
                        "check the user and password in \"url\" in account.json"
                    }
                    c if *c == SqlState::INVALID_CATALOG_NAME => {
                        "create the database, or change its name in \"url\" in account.json"
                    }
                    c if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
                        "grant this user the privilege, or use another user in \"url\""
                    }
                    c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                        "point \"url\" at a server that accepts writes (the primary), then resume"
                    }
                    c if *c == SqlState::DISK_FULL => "free space on the server, then resume",
                    c if *c == SqlState::LOCK_NOT_AVAILABLE => {
                        "a session has kept a write to the table open for a minute; end it, then run the command again"
                    }
                    _ => "fix the database, then run the command again (an import resumes)",
                },
            ),
            None if err.is_closed() => (
                "the connection was closed".to_string(),
                "check that the server is up, then run the command again (an import resumes)",
            ),
            None if self.tls.is_some() && describe(err).contains("certificate") => (
                describe(err),
                "set \"sslrootcert\" in account.json to the CA certificate (PEM) that signed the server's certificate",
            ),
            None => (
                describe(err),
                "check that the server is up and that \"url\" in account.json names it",
            ),
        };
        let message = format!("{doing} {}: {message}", self.named());
        // A wrong password or database name is the account's mistake.
        let account = err.as_db_error().is_some_and(|db| {
            [
                SqlState::INVALID_PASSWORD,
                SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                SqlState::INVALID_CATALOG_NAME,
            ]
            .contains(db.code())
        });
        if account {
            usage(message).hint(hint).into()
        } else {
            failed(message).hint(hint).into()
        }
    }
}

/// Whether a database error is the record's fault: a value of the wrong
/// type or out of range (class 22), a constraint it breaks (class 23).
pub(super) fn record_fault(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        let code = db.code().code();
        code.starts_with("22") || code.starts_with("23")
    })
}

/// The server's message for a record it refused, with its detail.
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => {
            let mut text = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}
