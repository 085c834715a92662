//! Ctrl-C, SIGTERM and SIGHUP as one request to stop a bulk run. An import
//! or export installs the handlers as the first thing it does, so a signal
//! at any later point (even while the input is still being read) lets the
//! run finish its batches in flight, save, print its summary and exit 130,
//! instead of dying with the signal's default action (exit 130 or 143 with
//! nothing saved and temporary files left behind).

use anyhow::{Context, Result};
use tokio::sync::watch;

/// Whether a stop was asked for; cheap to clone and to ask.
#[derive(Clone)]
pub struct Interrupt {
    asked: watch::Receiver<bool>,
}

impl Interrupt {
    /// Take over SIGINT, SIGTERM and SIGHUP for the rest of the process.
    /// Must run inside the tokio runtime.
    pub fn install() -> Result<Interrupt> {
        let (tx, asked) = watch::channel(false);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            // Registered here, not on a first poll: a signal that arrives
            // before the run looks at it is still ours.
            let mut int = signal(SignalKind::interrupt()).context("could not listen for Ctrl-C")?;
            let mut term =
                signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
            let mut hup = signal(SignalKind::hangup()).context("could not listen for SIGHUP")?;
            tokio::spawn(async move {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                let _ = tx.send(true);
                // A second signal means "now": a request that never answers
                // must not keep the process alive. Nothing is lost: the
                // checkpoint and export state only ever hold what was
                // committed.
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                std::process::exit(130);
            });
        }
        #[cfg(not(unix))]
        {
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::spawn(async move {
                if ctrl_c.await.is_ok() {
                    let _ = tx.send(true);
                }
            });
        }
        Ok(Interrupt { asked })
    }

    /// One that never fires, for runs driven from code (unit tests).
    pub fn never() -> Interrupt {
        let (_, asked) = watch::channel(false);
        Interrupt { asked }
    }

    /// A stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.asked.borrow()
    }

    /// Resolves once a stop is asked for (at once when it already was).
    pub async fn wait(&self) {
        let mut asked = self.asked.clone();
        if asked.wait_for(|v| *v).await.is_err() {
            // The listener is gone without a signal: never resolve.
            std::future::pending::<()>().await;
        }
    }
}
