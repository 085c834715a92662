//! Following an asynchronous job to its end: a bulk import answers a job id,
//! and the job is asked again until it says it is done. The waits go through
//! the engine's own pause, the one its retries use, so under `--replay` a
//! poll does not sleep (the cassette already holds every answer) and a clock
//! the engine is given covers polls and retries alike.

use std::time::Duration;

use anyhow::Result;
use serde_json::Value;

use super::{Engine, RequestSpec};

/// The longest wait between two polls.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(10);

/// How a job is followed: the wait before the first poll (each later wait
/// doubles, up to [`MAX_POLL_WAIT`]) and how many polls at most.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first_wait: Duration,
    pub max_polls: u32,
}

/// Where polling ended.
#[derive(Debug)]
pub enum Polled {
    /// The job's last answer said it is done.
    Done(Value),
    /// Every poll was spent and the job is not done; its last answer.
    Unfinished(Value),
}

impl Engine {
    /// Send `req` after each wait of `polling` until `done` holds for the
    /// answer's body, or the polls are spent (at least one poll is made).
    pub async fn poll(
        &self,
        polling: Polling,
        req: &RequestSpec,
        done: impl Fn(&Value) -> bool,
    ) -> Result<Polled> {
        let mut wait = polling.first_wait;
        let mut last = Value::Null;
        for _ in 0..polling.max_polls.max(1) {
            self.pause(wait).await;
            last = self.send(req).await?.json(req)?;
            if done(&last) {
                return Ok(Polled::Done(last));
            }
            wait = (wait * 2).min(MAX_POLL_WAIT);
        }
        Ok(Polled::Unfinished(last))
    }
}
