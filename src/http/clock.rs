//! The engine's clock: the two places the engine waits — before a retry
//! (backoff, `Retry-After`, a vendor's reset header) and for a rate-limit
//! slot — go through a [`Clock`], so that tests can see the waits instead of
//! sleeping through them.
//!
//! In production the clock is real: a retry sleeps with tokio and a slot is
//! awaited on the governor bucket, exactly as without this module.
//!
//! A test hook swaps in a virtual clock: every wait returns at once, moves
//! virtual time forward by the wait (so the rate-limit buckets see the time
//! pass) and is recorded, so a test asserts the waits ferry chose instead of
//! measuring wall time on a loaded machine. Library tests take one from
//! [`Clock::virtual_time`] and give it to [`super::Engine::with_clock`]; the
//! binary takes one when `FERRY_TEST_CLOCK=FILE` is in the command's
//! environment (`Ctx` reads it once, through its environment snapshot, like
//! every other variable) and appends each wait to FILE as a line such as
//! `retry 1000.000ms` or `slot 200.000ms`. It is a test hook, documented as
//! such in README.md: with it, ferry does not wait between requests, so it
//! must never be set against a real API.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock as _, FakeRelativeClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::RateLimiter;

/// The environment variable of the binary's test hook: the file to which a
/// virtual clock appends its waits.
pub const TEST_CLOCK_VAR: &str = "FERRY_TEST_CLOCK";

/// What a wait was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Before trying a request again: backoff or the server's asked wait.
    Retry,
    /// For a slot under a rate limit.
    Slot,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::Retry => "retry",
            Why::Slot => "slot",
        })
    }
}

/// How the engine waits: for real (the default), or on virtual time.
#[derive(Clone, Default)]
pub struct Clock {
    virtual_time: Option<Arc<Virtual>>,
}

/// Virtual time: where it stands, the waits so far, and where to log them.
struct Virtual {
    now: FakeRelativeClock,
    waits: Mutex<Vec<(Why, Duration)>>,
    log: Option<PathBuf>,
    /// One slot taken at a time, so concurrent requests queue for the
    /// bucket as they do in real time instead of all advancing the clock.
    turn: tokio::sync::Mutex<()>,
}

/// A rate-limit bucket on virtual time.
pub(crate) type VirtualBucket =
    RateLimiter<NotKeyed, InMemoryState, FakeRelativeClock, NoOpMiddleware<Nanos>>;

impl Clock {
    /// The clock of a command whose environment holds `test_clock` (the
    /// value of `FERRY_TEST_CLOCK`): real when it is unset or empty,
    /// otherwise virtual, logging its waits to that file. A file that
    /// cannot be written is an error now, before any request, rather than
    /// a wait that goes unrecorded.
    pub fn for_command(test_clock: Option<&str>) -> anyhow::Result<Clock> {
        let Some(file) = test_clock.filter(|f| !f.is_empty()) else {
            return Ok(Clock::default());
        };
        let path = PathBuf::from(file);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| {
                crate::error::usage(format!(
                    "{TEST_CLOCK_VAR}: cannot write {}: {e}",
                    path.display()
                ))
                .hint(format!(
                    "{TEST_CLOCK_VAR} is a test hook; unset it to run with the real clock"
                ))
            })?;
        Ok(Clock::virtual_with(Some(path)))
    }

    /// A virtual clock for tests: waits return at once and are recorded.
    pub fn virtual_time() -> Clock {
        Clock::virtual_with(None)
    }

    fn virtual_with(log: Option<PathBuf>) -> Clock {
        Clock {
            virtual_time: Some(Arc::new(Virtual {
                now: FakeRelativeClock::default(),
                waits: Mutex::new(Vec::new()),
                log,
                turn: tokio::sync::Mutex::new(()),
            })),
        }
    }

    /// The waits asked for so far, in order (none on a real clock).
    pub fn waits(&self) -> Vec<(Why, Duration)> {
        match &self.virtual_time {
            Some(v) => v.waits.lock().map(|w| w.clone()).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// A bucket on this clock's virtual time; `None` on a real clock.
    pub(crate) fn virtual_bucket(&self, quota: governor::Quota) -> Option<VirtualBucket> {
        let v = self.virtual_time.as_ref()?;
        Some(RateLimiter::direct_with_clock(quota, v.now.clone()))
    }

    /// Wait `wait` before a retry.
    pub(crate) async fn sleep(&self, wait: Duration) {
        match &self.virtual_time {
            None => tokio::time::sleep(wait).await,
            Some(v) => v.pass(Why::Retry, wait),
        }
    }

    /// Wait until `bucket` (made by [`Clock::virtual_bucket`]) has a slot;
    /// answers the virtual time that passed.
    pub(crate) async fn until_ready(&self, bucket: &VirtualBucket) -> Duration {
        let Some(v) = &self.virtual_time else {
            return Duration::ZERO;
        };
        let _turn = v.turn.lock().await;
        let mut waited = Duration::ZERO;
        while let Err(not_until) = bucket.check() {
            let wait = not_until.wait_time_from(v.now.now());
            v.pass(Why::Slot, wait);
            waited += wait;
        }
        waited
    }
}

impl Virtual {
    /// Let `wait` pass at once: advance, record, log.
    fn pass(&self, why: Why, wait: Duration) {
        self.now.advance(wait);
        if let Ok(mut waits) = self.waits.lock() {
            waits.push((why, wait));
        }
        if let Some(path) = &self.log {
            let line = format!("{why} {:.3}ms\n", wait.as_secs_f64() * 1000.0);
            // The file was writable when the clock was made; should it stop
            // being so, the test that reads it sees the wait missing.
            let _ = std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[tokio::test]
    async fn a_virtual_clock_records_waits_and_paces_a_bucket_without_sleeping() {
        let clock = Clock::virtual_time();
        let started = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        let quota =
            governor::Quota::per_second(NonZeroU32::new(4).unwrap()).allow_burst(NonZeroU32::MIN);
        let bucket = clock.virtual_bucket(quota).expect("a virtual bucket");
        for _ in 0..3 {
            clock.until_ready(&bucket).await;
        }
        assert!(started.elapsed() < Duration::from_secs(1), "it slept");
        let slot = Duration::from_millis(250);
        assert_eq!(
            clock.waits(),
            [
                (Why::Retry, Duration::from_secs(3600)),
                (Why::Slot, slot),
                (Why::Slot, slot)
            ]
        );
    }

    #[test]
    fn the_real_clock_has_no_virtual_buckets_and_records_nothing() {
        let clock = Clock::default();
        let quota = governor::Quota::per_second(NonZeroU32::MIN);
        assert!(clock.virtual_bucket(quota).is_none());
        assert!(clock.waits().is_empty());
    }
}
