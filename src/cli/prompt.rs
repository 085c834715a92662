//! Questions on the terminal, and what Ctrl-C does while one is asked.
//!
//! dialoguer draws the questions on stderr. While it waits it hides the
//! cursor (a list, a yes/no), turns echo off (a secret) or reads keys in raw
//! mode (a line of text), and Ctrl-C would leave the terminal that way: in
//! raw mode dialoguer (through console) raises SIGINT itself and answers an
//! `Interrupted` read error, and during a hidden line the terminal sends
//! SIGINT, whose default action ends the process with echo still off.
//! [`Questions`] owns the way out: from the moment it starts, Ctrl-C puts
//! the terminal back as it was (its modes and the cursor), prints the
//! command's own "interrupted" error and ends it with exit 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::output::Output;

/// Questions being asked on the terminal; Ctrl-C ends the command with the
/// terminal restored and `interrupted` as its error. Stops watching for
/// Ctrl-C when dropped.
pub struct Questions {
    stop: Arc<Stop>,
    watcher: tokio::task::JoinHandle<()>,
}

/// What a Ctrl-C does, shared by the signal watcher and the question
/// that saw it: whichever comes first restores the terminal and ends the
/// command; the other leaves it to the first.
struct Stop {
    claimed: AtomicBool,
    terminal: Terminal,
    out: Output,
    interrupted: Failure,
}

impl Questions {
    /// Start asking. `what_stopped` says what a Ctrl-C leaves undone
    /// ("nothing was written"), `hint` what to do next. Must run inside
    /// the tokio runtime.
    pub fn start(out: &Output, what_stopped: &str, hint: &str) -> Result<Questions> {
        let stop = Arc::new(Stop {
            claimed: AtomicBool::new(false),
            terminal: Terminal::save(),
            out: out.clone(),
            interrupted: Failure::new(Kind::Interrupted, format!("interrupted; {what_stopped}"))
                .hint(hint),
        });
        let watcher = watch_ctrl_c(Arc::clone(&stop))?;
        Ok(Questions { stop, watcher })
    }

    /// The answer to one question, or the error that ends the command: a
    /// Ctrl-C (after the terminal is restored), or a terminal that could
    /// not be read.
    pub fn answer<T>(&self, asked: dialoguer::Result<T>) -> Result<T> {
        match asked {
            Ok(answer) => Ok(answer),
            Err(dialoguer::Error::IO(e)) if e.kind() == std::io::ErrorKind::Interrupted => {
                if self.stop.claim() {
                    self.stop.restore();
                    return Err(self.stop.interrupted.clone().into());
                }
                // The signal watcher got there first and is ending the
                // process; answering anything now would race its message.
                loop {
                    std::thread::park();
                }
            }
            Err(e) => Err(anyhow::Error::new(e).context("could not read the answer")),
        }
    }
}

impl Drop for Questions {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Stop {
    /// The first to call this handles the Ctrl-C.
    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::SeqCst)
    }

    /// The terminal as it was before the first question, the cursor shown,
    /// and a fresh line for the error.
    fn restore(&self) {
        self.terminal.restore();
        let term = dialoguer::console::Term::stderr();
        let _ = term.show_cursor();
        let _ = term.write_line("");
    }
}

/// How long the signal watcher leaves a question to handle a Ctrl-C
/// itself before ending the command.
const QUESTION_FIRST: std::time::Duration = std::time::Duration::from_millis(200);

/// Listen for Ctrl-C from now on. Registered before it returns, so a
/// Ctrl-C during the first question is ours (and console's own SIGINT no
/// longer ends the process before dialoguer can answer).
fn watch_ctrl_c(stop: Arc<Stop>) -> Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    let mut signal = {
        use anyhow::Context;
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt()).context("could not listen for Ctrl-C")?
    };
    Ok(tokio::spawn(async move {
        #[cfg(unix)]
        signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        // A question read in raw mode sees the Ctrl-C itself and answers
        // within microseconds; letting it go first means the command ends
        // the ordinary way (locks released, files closed). Only a hidden
        // line, whose read the signal does not end, leaves it to us.
        tokio::time::sleep(QUESTION_FIRST).await;
        if stop.claim() {
            stop.restore();
            let err = anyhow::Error::new(stop.interrupted.clone());
            crate::output::report_error(&stop.out, &err);
            // The question still blocks its thread in a read that the
            // signal does not end (it restarts): only leaving ends it.
            std::process::exit(130);
        }
    }))
}

/// The terminal's modes (echo, line editing, signals) when the questions
/// started, to put back after a Ctrl-C.
struct Terminal {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl Terminal {
    fn save() -> Terminal {
        #[cfg(unix)]
        {
            let mut modes = std::mem::MaybeUninit::<libc::termios>::uninit();
            // SAFETY: tcgetattr fills the struct it is given, or fails and
            // leaves it alone, in which case it is not read.
            let saved = unsafe {
                (libc::tcgetattr(libc::STDIN_FILENO, modes.as_mut_ptr()) == 0)
                    .then(|| modes.assume_init())
            };
            Terminal { saved }
        }
        #[cfg(not(unix))]
        Terminal {}
    }

    fn restore(&self) {
        #[cfg(unix)]
        if let Some(modes) = &self.saved {
            // SAFETY: `modes` is what tcgetattr answered for this descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, modes);
            }
        }
    }
}
