//! What a command's HTTP engines went through, counted across all of them:
//! retries, and the time requests waited for a rate-limit slot, per account
//! and endpoint group. The progress bar shows it as the run goes; import and
//! export say once, in their summary, when a rate limit held the run back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The counters, shared by every engine built from one [`super::HttpEnv`].
#[derive(Debug, Default)]
pub struct Stats {
    retries: AtomicU64,
    waits: Mutex<Vec<GroupWait>>,
}

/// The time one endpoint group's rate limit held requests back.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupWait {
    /// The account file whose `rateLimit` sets the limit.
    pub source: String,
    /// The endpoint group (`default` for requests that match none).
    pub group: String,
    /// Its limit, in requests per second.
    pub rps: f64,
    pub waited: Duration,
}

/// The wait after which `-v` says a rate limit is what slows the run.
pub const NOTABLE_WAIT: Duration = Duration::from_secs(1);

impl Stats {
    /// A request is tried again.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times requests were tried again.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// A request of `group` (under `source`'s limit of `rps`) waited
    /// `waited` for its slot. Answers whether the group's waits just
    /// passed [`NOTABLE_WAIT`] in all, so the caller says so once.
    pub fn waited(&self, source: &str, group: &str, rps: f64, waited: Duration) -> bool {
        let Ok(mut waits) = self.waits.lock() else {
            return false;
        };
        let at = match waits
            .iter()
            .position(|w| w.source == source && w.group == group)
        {
            Some(i) => i,
            None => {
                waits.push(GroupWait {
                    source: source.to_string(),
                    group: group.to_string(),
                    rps,
                    waited: Duration::ZERO,
                });
                waits.len() - 1
            }
        };
        let before = waits[at].waited;
        waits[at].waited += waited;
        before < NOTABLE_WAIT && waits[at].waited >= NOTABLE_WAIT
    }

    /// The groups that waited, longest wait first.
    pub fn waits(&self) -> Vec<GroupWait> {
        let mut waits = self.waits.lock().map(|w| w.clone()).unwrap_or_default();
        waits.sort_by_key(|w| std::cmp::Reverse(w.waited));
        waits
    }

    /// Every group's waits added up.
    pub fn total_wait(&self) -> Duration {
        self.waits().iter().map(|w| w.waited).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_add_up_per_group_and_pass_the_notable_mark_once() {
        let s = Stats::default();
        let half = Duration::from_millis(600);
        assert!(!s.waited("a.json", "default", 50.0, half));
        assert!(s.waited("a.json", "default", 50.0, half));
        assert!(!s.waited("a.json", "default", 50.0, half));
        assert!(!s.waited("a.json", "bulk", 5.0, half));
        let waits = s.waits();
        assert_eq!(waits[0].group, "default");
        assert_eq!(waits[0].waited, Duration::from_millis(1800));
        assert_eq!(s.total_wait(), Duration::from_millis(2400));
        s.retried();
        assert_eq!(s.retries(), 1);
    }
}
