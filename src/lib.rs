//! ferry: build, test and run data-sync connectors from the command line.
//!
//! The binary is a thin shell around [`main_entry`]; `cli` turns arguments
//! into a plan, `connector` holds the connectors, `config` the files a
//! connector folder holds and `output` every byte the user sees.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod config;
pub mod connector;
pub mod ctx;
pub mod engine;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod interrupt;
pub mod lock;
pub mod memory;
pub mod output;
pub mod range;
pub mod sandbox;
pub mod scaffold;
pub mod shell;
pub mod testcase;
pub mod wal;

use std::ffi::OsString;
use std::process::ExitCode;

/// Parse `args`, run the command on a fresh tokio runtime and map the result
/// to an exit status, printing the error chain and its hint once.
pub fn main_entry(args: Vec<OsString>) -> ExitCode {
    let ctx = match ctx::Ctx::from_process() {
        Ok(ctx) => ctx,
        Err(err) => return output::report_error(&output::Output::stderr_only(), &err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            let err = anyhow::Error::new(err).context("could not start the async runtime");
            return output::report_error(&ctx.out, &err);
        }
    };
    let out = ctx.out.clone();
    match runtime.block_on(cli::run(args, ctx)) {
        Ok(code) => code,
        Err(err) => output::report_error(&out, &err),
    }
}
