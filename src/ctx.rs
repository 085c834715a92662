//! The environment a command runs in: working folder, environment variables,
//! whether the standard streams are terminals, the output handle and the
//! `--record` / `--replay` cassette. Commands read these through [`Ctx`]
//! only, so tests control them from outside. A connector never sees it: it
//! opens with the [`connector::Env`] built here.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::{Account, Inputs};
use crate::connector::{self, Connector};
use crate::error::usage;
use crate::http::cassette::{Cassette, Mode};
use crate::http::HttpEnv;
use crate::output::Output;

/// What a command may know about the world it runs in.
#[derive(Clone)]
pub struct Ctx {
    /// The process's working directory; relative paths on the command line start here.
    pub cwd: PathBuf,
    /// A snapshot of the environment variables, for `${NAME}` interpolation.
    pub env: BTreeMap<String, String>,
    /// Standard input is a terminal, so prompts are allowed.
    pub stdin_tty: bool,
    /// Standard error is a terminal, so progress bars are shown.
    pub stderr_tty: bool,
    /// Standard output is a terminal: a listing may be a table for people
    /// instead of JSON for programs.
    pub stdout_tty: bool,
    /// `--dry-run` on a read: connectors open with engines that send
    /// nothing ([`crate::http::Offline`]).
    pub offline: bool,
    /// The one writer for stdout and stderr.
    pub out: Output,
    /// The connector folder (`-C DIR`): account.json, in.json, .env, .ferry/.
    pub folder: PathBuf,
    /// `--account FILE`, when given.
    pub account_file: Option<PathBuf>,
    /// A test case's own account (JSON, and the name messages give it),
    /// used instead of account.json: a case replays from a clone that has
    /// no account.json.
    pub account_json: Option<(serde_json::Value, String)>,
    /// `--input FILE`, when given.
    pub input_file: Option<PathBuf>,
    /// The `--record` / `--replay` cassette every HTTP engine of the command uses.
    pub cassette: Option<Arc<Cassette>>,
    /// The clock every HTTP engine of the command waits on: real, or the
    /// `FERRY_TEST_CLOCK` test hook's virtual one.
    pub clock: crate::http::Clock,
    /// The retries and rate-limit waits of every HTTP engine of the
    /// command, for its progress bar and summary.
    pub http_stats: Arc<crate::http::Stats>,
}

impl Ctx {
    pub fn from_process() -> Result<Ctx> {
        let cwd = std::env::current_dir().context("could not read the current directory")?;
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Ok(Ctx {
            stdin_tty: std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
            offline: false,
            out: Output::new(),
            folder: cwd.clone(),
            account_file: None,
            account_json: None,
            input_file: None,
            cassette: None,
            http_stats: Arc::default(),
            clock: crate::http::Clock::for_command(
                env.get(crate::http::clock::TEST_CLOCK_VAR)
                    .map(String::as_str),
            )?,
            env,
            cwd,
        })
    }

    /// Use `dir` (relative to the working directory) as the connector folder.
    pub fn set_folder(&mut self, dir: &std::path::Path) -> Result<()> {
        let folder = crate::config::resolve(&self.cwd, dir);
        if folder.is_file() {
            return Err(usage(format!(
                "{} is a file, not a connector folder",
                folder.display()
            ))
            .hint("-C takes the folder that holds account.json; pass a file with --account FILE")
            .into());
        }
        if !folder.is_dir() {
            return Err(usage(format!(
                "connector folder {} does not exist",
                folder.display()
            ))
            .hint(format!(
                "create it with `ferry init {}`, or fix the path given to -C",
                dir.display()
            ))
            .into());
        }
        self.folder = folder;
        Ok(())
    }

    /// The folder's account (or `--account FILE`).
    pub fn account(&self) -> Result<Account> {
        match &self.account_json {
            Some((value, source)) => self.account_from(value.clone(), source, &self.folder),
            None => self.account_in(&self.folder, self.account_file.as_deref()),
        }
    }

    /// The account in `folder`, or in `file` (relative to the working directory).
    pub fn account_in(&self, folder: &Path, file: Option<&Path>) -> Result<Account> {
        Account::load(&self.cwd, &self.env, self.replaying(), folder, file)
    }

    /// An account from JSON read from `source`, relative to `folder`.
    pub fn account_from(
        &self,
        value: serde_json::Value,
        source: &str,
        folder: &Path,
    ) -> Result<Account> {
        Account::from_value(&self.env, self.replaying(), value, source, folder)
    }

    /// The folder's in.json (or `--input FILE`); empty when there is none.
    pub fn inputs(&self) -> Result<Inputs> {
        Inputs::load(
            &self.cwd,
            &self.out,
            &self.folder,
            self.input_file.as_deref(),
        )
    }

    /// Whether a `--replay` cassette answers, so nothing is sent (and
    /// credentials may be missing).
    pub fn replaying(&self) -> bool {
        self.cassette
            .as_ref()
            .is_some_and(|c| c.mode() == Mode::Replay)
    }

    /// What a connector opens with: the HTTP environment of this command
    /// (its output and cassette) and the folder.
    pub fn connector_env(&self) -> connector::Env {
        let http = HttpEnv::new(self.out.clone(), self.cassette.clone())
            .with_clock(self.clock.clone())
            .with_stats(self.http_stats.clone());
        connector::Env {
            http: if self.offline { http.offline() } else { http },
            folder: self.folder.clone(),
        }
    }

    /// Open the connector `account` names (an import's or export's
    /// TARGET: a code connector's account takes the `init` section of the
    /// in.json beside it).
    pub fn open(&self, account: &Account) -> Result<Box<dyn Connector>> {
        let mut account = account.clone();
        let folder = account.folder.clone();
        self.add_init_section(&mut account, &folder, None)?;
        connector::registry::open(&self.connector_env(), &account)
    }

    /// Open the connector the folder's account names.
    pub fn connector(&self) -> Result<Box<dyn Connector>> {
        self.connector_with(|_, _| Ok(()))
    }

    /// [`Ctx::connector`], with the account changed by `adjust` (given the
    /// connector's spec) before it is opened.
    pub fn connector_with(
        &self,
        adjust: impl FnOnce(&mut Account, &connector::Spec) -> Result<()>,
    ) -> Result<Box<dyn Connector>> {
        let mut account = self.account()?;
        // An unknown connector is left to `open`, which names the account.
        if let Ok(spec) = connector::registry::spec(&account.connector) {
            adjust(&mut account, &spec)?;
        }
        self.add_init_section(&mut account, &self.folder, self.input_file.as_deref())?;
        let connector = connector::registry::open(&self.connector_env(), &account)?;
        self.out.verbose(&format!(
            "using {} (connector {})",
            account.source, account.connector
        ));
        Ok(connector)
    }

    /// A code connector's account with the values of in.json's `init`
    /// section added under it (account.json wins): SyncPenguin keeps the
    /// account info a module's `init` runs with there, so such a folder
    /// runs unchanged.
    fn add_init_section(
        &self,
        account: &mut Account,
        folder: &Path,
        input_file: Option<&Path>,
    ) -> Result<()> {
        let Ok(spec) = connector::registry::spec(&account.connector) else {
            return Ok(());
        };
        if !spec.account_values {
            return Ok(());
        }
        // Read quietly: the command reads in.json again and warns once.
        let quiet = Output::new();
        quiet.set_verbosity(crate::output::Verbosity::Quiet);
        let inputs = Inputs::load(&self.cwd, &quiet, folder, input_file)?;
        if let Some(serde_json::Value::Object(init)) = inputs.section("init") {
            // The module's own values (and its baseUrl): ferry's options
            // (module, callTimeoutSecs...) are account.json's, where
            // errors point.
            let own = (init.iter()).filter(|(k, _)| spec.option(k).is_none() || *k == "baseUrl");
            for (key, value) in own {
                account
                    .options
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
        }
        Ok(())
    }

    /// Whether the user can answer a prompt.
    pub fn interactive(&self) -> bool {
        self.stdin_tty && self.stderr_tty
    }
}
