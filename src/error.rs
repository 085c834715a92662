//! The typed error that decides the exit status. Everything else propagates
//! with `anyhow`; code creates a [`Failure`] only where the kind matters to
//! the user (exit code) or to the caller (not found, unsupported, retryable).

use std::fmt;
use std::process::ExitCode;

/// What went wrong, as far as the exit status and callers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bad usage or configuration: unknown flag, invalid JSON, missing option. Exit 2.
    Usage,
    /// The connector cannot do what was asked. Exit 2.
    Unsupported,
    /// The record asked for does not exist. Exit 1.
    NotFound,
    /// The action failed: a remote error, a conflict, a run that stopped. Exit 1.
    Failed,
    /// The user interrupted the run. Exit 130.
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Usage | Kind::Unsupported => 2,
            Kind::NotFound | Kind::Failed => 1,
            Kind::Interrupted => 130,
        }
    }
}

/// An error the user sees with its kind and, where there is one, the next step.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Add the line that tells the user what to do next.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn usage(message: impl Into<String>) -> Failure {
    Failure::new(Kind::Usage, message)
}

pub fn failed(message: impl Into<String>) -> Failure {
    Failure::new(Kind::Failed, message)
}

pub fn not_found(message: impl Into<String>) -> Failure {
    Failure::new(Kind::NotFound, message)
}

/// "connector X cannot Y": the one wording for an action a connector lacks.
pub fn unsupported(connector: &str, action: &str) -> Failure {
    Failure::new(
        Kind::Unsupported,
        format!("connector {connector} cannot {action}"),
    )
    .hint(format!(
        "run `ferry connectors {connector}` to see what it can do"
    ))
}

/// The first [`Failure`] in an error chain, if any.
pub fn find_failure(err: &anyhow::Error) -> Option<&Failure> {
    // A Failure added with `.context(failure)` is only reachable through
    // anyhow's own downcast, not through the chain's trait objects.
    err.downcast_ref::<Failure>().or_else(|| {
        err.chain()
            .find_map(|cause| cause.downcast_ref::<Failure>())
    })
}

/// The exit status for an error: its [`Failure`] kind, or 1 for anything else.
pub fn exit_code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(exit_status(err))
}

/// [`exit_code_for`] as a number, which a test case keeps.
pub fn exit_status(err: &anyhow::Error) -> u8 {
    if is_broken_pipe(err) {
        return 0;
    }
    find_failure(err).map_or(1, |f| f.kind.exit_code())
}

/// A reader closing the pipe (`ferry get | head -1`) is not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// An error that means "the destination refused this record" (bad data),
/// as opposed to a failure of the call itself.
#[derive(Debug, Clone)]
pub struct Rejection(pub String);

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Rejection {}
