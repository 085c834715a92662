//! The `postgres` connector: records in a PostgreSQL table, through
//! tokio-postgres (the async driver the rest of ferry's runtime speaks; the
//! sync `postgres` crate wraps the same code in a runtime of its own).
//!
//! A table ferry creates keeps each record as `jsonb` with its id, update
//! time, a change number from the table's own sequence, and a tombstone
//! flag. Import writes batches by binary COPY into a temporary table and
//! one `INSERT … ON CONFLICT`, and reads pages by keyset on the id.
//!
//! - `db`: the connection, the table's layout, and what a database error
//!   means for a run (the record's fault, or the database's);
//! - `existing`: a table that existed before ferry, its columns as fields;
//! - `records`: get, insert, patch, delete, pages, batch upserts;
//! - `updates`: `getupdates` and why it locks the table for a moment;
//! - `export`: profiles, and group memberships beside the table.
//!
//! TLS (`sslmode` require or verify-full) is rustls, with the server's
//! certificate verified against the public roots or `sslrootcert`.

mod db;
mod existing;
mod export;
mod records;
mod updates;

use anyhow::Result;
use async_trait::async_trait;
use serde_json::Value;

use crate::connector::options::{connector_options, Described};
use crate::connector::{
    ChangeFeed, Connector, Env, ExportFields, FieldSpec, GroupSink, Options, Page, Position,
    ProfileOutcome, ProfileSink, ProfileUpdate, Record, RecordLookup, RecordSink, RecordSource,
    RecordStore, Records, Role, Spec, Updates, UpsertOutcome, WriteOp,
};
use crate::error::usage;
use db::Db;
use export::Op;
use tokio_postgres_rustls::MakeRustlsConnect;

connector_options! {
    /// The options of a `postgres` account.
    pub struct PostgresOptions {
        /// The server and database: postgres://USER:PASSWORD@HOST:PORT/DB; the password is redacted everywhere (keep it out of the file with ${VAR})
        #[option(label = "URL", placeholder = "postgres://ferry:${PGPASSWORD}@localhost:5432/crm", required)]
        pub url: String,
        /// The table holding the records; created on the first write when missing
        #[option(label = "Table", default = "records")]
        pub table: String,
        /// The schema of the table
        #[option(label = "Schema", default = "public")]
        pub schema: String,
        /// The field that identifies a record
        #[option(label = "Id field", default = "id")]
        pub id_field: String,
        /// TLS to the server: disable or prefer (both without TLS), require or verify-full (TLS, the server's certificate verified); else the URL's sslmode, else prefer
        #[option(label = "SSL mode", placeholder = "prefer")]
        pub sslmode: Option<String>,
        /// A PEM file of the CA certificates to trust for TLS instead of the public ones, relative to account.json (else the URL's sslrootcert)
        #[option(label = "SSL root certificate", placeholder = "ca.pem")]
        pub sslrootcert: Option<String>,
    }
}

/// The config [`open`] reads, for the registry.
pub type Config = PostgresOptions;

pub fn spec() -> Spec {
    Spec {
        code: "postgres",
        label: "PostgreSQL table",
        description: "Records in a table of a PostgreSQL database. The table ferry creates keeps each record as jsonb with its update time and a change number; import writes batches by COPY and reads pages by keyset on the id.",
        roles: vec![Role::Source, Role::Destination],
        options: PostgresOptions::option_specs(),
        fields: vec![FieldSpec::store_id()],
        extra_fields: true,
        capabilities: Postgres::CAPABILITIES,
        max_batch_size: 5_000,
        // One batch is sent while the database writes the other.
        parallelism: db::CONNECTIONS,
        account_values: false,
        store: None,
    }
}

pub fn open(env: &Env, options: Options) -> Result<Box<dyn Connector>> {
    let config: PostgresOptions = options.parse()?;
    let source = options.at("url").source;
    let url = Url::parse(&config.url).map_err(|_| {
        usage(format!("{source}: url is not a PostgreSQL URL")).hint(format!(
            "set url in {source} to postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ))
    })?;
    let mut pg = url.config;
    if let Some(password) = pg.get_password() {
        let password = String::from_utf8_lossy(password).into_owned();
        env.out().add_secrets([password]);
    }
    use tokio_postgres::config::SslMode;
    // The option, else the URL's own, else prefer (as libpq).
    let sslmode = config
        .sslmode
        .or(url.sslmode)
        .unwrap_or_else(|| "prefer".into());
    let tls = match sslmode.as_str() {
        "disable" | "prefer" => {
            // Without a TLS connector the driver never asks for TLS.
            pg.ssl_mode(SslMode::Disable);
            None
        }
        "require" | "verify-full" => {
            pg.ssl_mode(SslMode::Require);
            let ca = match config.sslrootcert {
                Some(path) => Some(options.resolve(&path)),
                None => url.sslrootcert.map(std::path::PathBuf::from),
            };
            Some(tls(ca.as_deref(), source)?)
        }
        other => {
            return Err(usage(format!(
                "{source}: sslmode is \"{other}\"; expected disable, prefer, require or verify-full"
            ))
            .hint(format!("set sslmode in {source} to one of them"))
            .into())
        }
    };
    let shown = shown(&pg);
    Ok(Box::new(Postgres {
        spec: spec(),
        db: Db::new(pg, tls, shown, config.schema, config.table, config.id_field),
    }))
}

/// A connection URL read: the driver's config, and the TLS parameters it
/// does not know (`sslmode=verify-full`, `sslrootcert`), which ferry reads
/// itself.
struct Url {
    config: tokio_postgres::Config,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl Url {
    fn parse(url: &str) -> Result<Url, tokio_postgres::Error> {
        let (mut sslmode, mut sslrootcert) = (None, None);
        let url = match url.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| match pair.split_once('=') {
                        Some(("sslmode", v)) => {
                            sslmode = Some(v.to_string());
                            false
                        }
                        Some(("sslrootcert", v)) => {
                            sslrootcert = Some(
                                percent_encoding::percent_decode_str(v)
                                    .decode_utf8_lossy()
                                    .into_owned(),
                            );
                            false
                        }
                        _ => true,
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => url.to_string(),
        };
        Ok(Url {
            config: url.parse()?,
            sslmode,
            sslrootcert,
        })
    }
}

/// The database as messages and checkpoints name it: user, hosts, ports
/// and database, never the password (built from the parsed config, so a
/// password the URL spells oddly cannot slip into it).
fn shown(pg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let user = pg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match ports.get(i).or(ports.first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    format!(
        "postgres://{user}{}/{}",
        hosts.join(","),
        pg.get_dbname().unwrap_or_default()
    )
}

/// `url` as messages and checkpoints name it (see [`shown`]); a text that
/// is not a PostgreSQL URL with its password masked.
pub fn shown_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => shown(&url.config),
        Err(_) => crate::http::redact::redact_url(url),
    }
}

/// A TLS connector that verifies the server's certificate and name
/// against the CA certificates in the PEM file `ca`, or the public roots.
fn tls(ca: Option<&std::path::Path>, source: &str) -> Result<MakeRustlsConnect> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let bad = |why: String| {
                usage(format!("{source}: sslrootcert {}: {why}", path.display()))
                    .hint("point sslrootcert at a PEM file of CA certificates")
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no certificate in it".into()).into());
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| anyhow::anyhow!("TLS is not available: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

pub struct Postgres {
    spec: Spec,
    db: Db,
}

crate::capabilities!(Postgres: Records, Updates, Source, Sink, Profiles, Groups);

#[async_trait]
impl Connector for Postgres {
    fn spec(&self) -> &Spec {
        &self.spec
    }

    fn id_field(&self) -> &str {
        &self.db.id_field
    }

    async fn check(&self) -> Result<Value> {
        self.db.check().await
    }
}

#[async_trait]
impl RecordLookup for Postgres {
    async fn get(&self, id: &str) -> Result<Record> {
        self.db.get(id).await
    }
}

#[async_trait]
impl RecordStore for Postgres {
    async fn insert(&self, value: Record) -> Result<Record> {
        self.db.insert(value).await
    }

    async fn patch(&self, id: &str, value: Record) -> Result<Record> {
        self.db.patch(id, value).await
    }

    async fn delete(&self, id: &str) -> Result<()> {
        self.db.delete(id).await
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

#[async_trait]
impl ChangeFeed for Postgres {
    async fn get_updates(&self, since: Option<&str>, limit: Option<usize>) -> Result<Updates> {
        // Checked before any I/O, so a bad token is refused even when the
        // server cannot be reached.
        let since = updates::Since::parse(since)?;
        self.db.updates(&since, limit).await
    }
}

#[async_trait]
impl RecordSource for Postgres {
    async fn read_page(&self, from: &Position, limit: usize) -> Result<Page> {
        self.db.read_page(from, limit).await
    }
}

#[async_trait]
impl RecordSink for Postgres {
    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        Ok(super::preview_rows(
            op,
            &format!("{}#{}", self.db.shown, self.db.table),
        ))
    }

    async fn fields(&self) -> Result<Vec<FieldSpec>> {
        self.db.fields(self.spec.fields.clone()).await
    }

    async fn upsert(&self, record: Record) -> Result<UpsertOutcome> {
        let mut outcomes = self.upsert_batch(Records::new(vec![record])).await?;
        Ok(outcomes.remove(0))
    }

    async fn upsert_batch(&self, records: Records) -> Result<Vec<UpsertOutcome>> {
        self.db.upsert_batch(&records).await
    }
}

/// Each batch call is one transaction ([`Db::export`]).
#[async_trait]
impl ProfileSink for Postgres {
    async fn export_fields(&self) -> Result<ExportFields> {
        Ok(ExportFields::keyed_by_id_field(&self.db.id_field))
    }

    async fn find_profile(&self, key: &str) -> Result<Option<String>> {
        Ok(self.db.find(key).await?.map(|_| key.to_string()))
    }

    async fn create_profile(&self, fields: Record) -> Result<String> {
        one(self.db.export(&[Op::Create(fields)]).await?)
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<String> {
        one(self
            .db
            .export(&[Op::Update(id.to_string(), update)])
            .await?)
    }

    async fn delete_profile(&self, id: &str) -> Result<()> {
        one(self.db.export(&[Op::Delete(id.to_string())]).await?).map(|_| ())
    }

    async fn create_profiles(&self, profiles: Vec<Record>) -> Vec<ProfileOutcome> {
        let n = profiles.len();
        let ops: Vec<Op> = profiles.into_iter().map(Op::Create).collect();
        ProfileOutcome::of_batch(self.db.export(&ops).await, n)
    }

    async fn update_profiles(&self, updates: Vec<(String, ProfileUpdate)>) -> Vec<ProfileOutcome> {
        let n = updates.len();
        let ops: Vec<Op> = updates
            .into_iter()
            .map(|(id, u)| Op::Update(id, u))
            .collect();
        ProfileOutcome::of_batch(self.db.export(&ops).await, n)
    }

    async fn delete_profiles(&self, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        let ops: Vec<Op> = ids.into_iter().map(Op::Delete).collect();
        ProfileOutcome::of_batch(self.db.export(&ops).await, n)
    }

    fn preview(&self, op: &WriteOp) -> Result<Vec<Value>> {
        RecordSink::preview(self, op)
    }
}

/// The one outcome of a one-profile batch, as the single call's answer.
fn one(outcomes: Vec<ProfileOutcome>) -> Result<String> {
    match outcomes.into_iter().next() {
        Some(ProfileOutcome::Ok { id }) => Ok(id),
        Some(ProfileOutcome::NotFound { reason }) => Err(crate::error::not_found(reason).into()),
        Some(
            ProfileOutcome::Rejected { reason }
            | ProfileOutcome::Skipped { reason }
            | ProfileOutcome::Error { reason, .. },
        ) => Err(crate::connector::Rejection(reason).into()),
        None => Err(anyhow::anyhow!("the database answered no outcome")),
    }
}

/// One statement per batch of memberships.
#[async_trait]
impl GroupSink for Postgres {
    async fn ensure_group(&self, name: &str) -> Result<String> {
        self.db.ensure_group(name).await
    }

    async fn add_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.db.membership(true, group, &[id.to_string()]).await?).map(|_| ())
    }

    async fn remove_member(&self, group: &str, id: &str) -> Result<()> {
        one(self.db.membership(false, group, &[id.to_string()]).await?).map(|_| ())
    }

    async fn add_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        ProfileOutcome::of_batch(self.db.membership(true, group, &ids).await, n)
    }

    async fn remove_members(&self, group: &str, ids: Vec<String>) -> Vec<ProfileOutcome> {
        let n = ids.len();
        ProfileOutcome::of_batch(self.db.membership(false, group, &ids).await, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_url_has_no_password() {
        assert_eq!(
            shown_url("postgres://ferry:s3cr%40t@db.example.com:5433/crm?sslmode=verify-full"),
            "postgres://ferry@db.example.com:5433/crm"
        );
        assert_eq!(
            shown_url("postgresql://a:pw@h1:1,h2:2/db?application_name=x"),
            "postgres://a@h1:1,h2:2/db"
        );
        assert_eq!(shown_url("postgres://u:pw@"), "postgres://u@/");
        assert!(!shown_url("postgres://u:pw@host/db?sslmode=nonsense").contains("pw"));
        assert!(!shown_url("mysql://u:pw@host/db").contains("pw"));
    }

    #[test]
    fn the_url_may_carry_the_tls_parameters() {
        let url = Url::parse(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=5",
        )
        .expect("a URL");
        assert_eq!(url.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(url.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(
            url.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(db::ident("a\"b"), "\"a\"\"b\"");
    }
}
