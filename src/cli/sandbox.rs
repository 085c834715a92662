//! `ferry sandbox`: serve the local sample API (see [`crate::sandbox`]) and
//! print its base URL as JSON on the first stdout line, so scripts and tests
//! can start it on port 0 and read where it listens.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::Done;
use crate::ctx::Ctx;
use crate::http::policy::RPS_RANGE;
use crate::range::{self, At};
use crate::sandbox::Config;

/// The longest latency the sandbox injects: a minute is already a hang.
const MAX_LATENCY_MS: u64 = 60_000;
/// The most customers it generates, so offset arithmetic stays far from overflow.
const MAX_RECORDS: u64 = 1_000_000_000;

/// Serve a local sample REST API of customers, to try connectors without credentials
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Routes: GET|POST /customers (?offset&limit, ?cursor&limit, ?updated_since=SEQ), \
GET|PATCH|DELETE /customers/{id}, POST /customers/bulk {\"records\": [...]}.

Examples:
  ferry sandbox --port 8787
  ferry -C examples/sandbox get --id cus_0000001
  ferry sandbox --records 1000000 --rate-limit 50 --fail-rate 0.01"
)]
pub struct Args {
    /// The port to listen on, on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How many customers it starts with (generated on demand, so a million is cheap)
    #[arg(long, value_name = "N", default_value_t = 100)]
    records: u64,
    /// Answer 429 with Retry-After above RPS requests per second
    #[arg(long, value_name = "RPS")]
    rate_limit: Option<f64>,
    /// Answer this share of requests (0 to 1) with a 500, from a fixed seed
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fail_rate: f64,
    /// Wait this many milliseconds before answering each request
    #[arg(long, value_name = "N", default_value_t = 0)]
    latency_ms: u64,
    /// Require `Authorization: Bearer T` (401 otherwise)
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// The seed of the injected failures
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub async fn exec(args: Args, ctx: &Ctx) -> Result<Done> {
    // Checked before the URL is printed: a script that read the URL must
    // find a server behind it, not a panic.
    range::float(
        args.fail_rate,
        At::flag("--fail-rate"),
        0.0,
        1.0,
        "(a share of requests)",
    )?;
    if let Some(r) = args.rate_limit {
        let (min, max) = RPS_RANGE;
        range::float(r, At::flag("--rate-limit"), min, max, "requests per second")?;
    }
    range::int(
        args.latency_ms,
        At::flag("--latency-ms"),
        0,
        MAX_LATENCY_MS,
        "milliseconds",
    )?;
    range::int(
        args.records,
        At::flag("--records"),
        0,
        MAX_RECORDS,
        "records",
    )?;
    let config = Config {
        records: args.records,
        rate_limit: args.rate_limit,
        fail_rate: args.fail_rate,
        latency: Duration::from_millis(args.latency_ms),
        token: args.token,
        seed: args.seed,
    };
    let shutdown = shutdown_signal()?;
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(crate::error::usage(format!(
                "port {} on 127.0.0.1 is in use (another sandbox, or another server)",
                args.port
            ))
            .hint("pick another with --port N, or --port 0 for a free one (its URL is the first line printed)")
            .into())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("could not listen on 127.0.0.1:{}", args.port)))
        }
    };
    let addr = listener.local_addr()?;
    let url = format!("http://127.0.0.1:{}", addr.port());
    ctx.out
        .stdout_text(&format!("{}\n", json!({ "url": url })))?;
    ctx.out.info(&format!(
        "sandbox serving {} customers at {url}; Ctrl-C stops it",
        config.records
    ));
    crate::sandbox::serve(listener, config, shutdown)
        .await
        .context("the sandbox server failed")?;
    Ok(Done::exit(ExitCode::SUCCESS))
}

/// Ctrl-C, or SIGTERM on Unix. The handlers are installed when this is
/// called, before the URL is printed, so a signal sent as soon as a script
/// has read the URL still stops the server cleanly.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not listen for Ctrl-C")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
