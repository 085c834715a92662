//! Progress of long runs on stderr. Engines report to the small [`Progress`]
//! trait; [`for_stderr`] answers an indicatif bar when stderr is a terminal
//! and a silent listener otherwise, so pipes and logs never get bar noise.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::http::Stats;

/// What a run tells whoever watches it.
pub trait Progress: Send + Sync {
    /// The run starts; `total` is the number of records when the source knows it.
    fn start(&self, done: u64, total: Option<u64>);
    /// The source said how many records it holds, so an ETA can be shown.
    fn total(&self, total: u64);
    /// `done` records handled so far (written or rejected), `rejected` of them rejected.
    fn update(&self, done: u64, rejected: u64);
    /// The run is over; clear the bar.
    fn finish(&self);
}

/// A listener that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64, _: Option<u64>) {}
    fn total(&self, _: u64) {}
    fn update(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

const KNOWN_TOTAL: &str =
    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} records, {rate}, ETA {eta} {msg}";
const UNKNOWN_TOTAL: &str = "{spinner} [{elapsed_precise}] {pos} records, {rate} {msg}";

/// An indicatif bar: records done, records per second, ETA when the total
/// is known, and beside them rejects, retries and rate-limit waits.
pub struct Bar {
    bar: ProgressBar,
    /// The command's HTTP retries and waits, read at each update.
    stats: Arc<Stats>,
}

impl Bar {
    fn style(&self, template: &str) {
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.with_key(
                "rate",
                |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} records/s", s.per_sec());
                },
            ));
        }
    }
}

impl Progress for Bar {
    fn start(&self, done: u64, total: Option<u64>) {
        // Drawn from here on only: a bar dropped before its run started
        // (an error or a dry run) leaves nothing on the terminal.
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
        match total {
            Some(t) => self.total(t),
            None => self.style(UNKNOWN_TOTAL),
        }
        self.bar.set_position(done);
        // A resumed run starts at its offset: that is not speed.
        self.bar.reset_eta();
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn total(&self, total: u64) {
        if self.bar.length() != Some(total) {
            self.bar.set_length(total);
            self.style(KNOWN_TOTAL);
        }
    }

    fn update(&self, done: u64, rejected: u64) {
        self.bar.set_position(done);
        let note = note(rejected, self.stats.retries(), self.stats.total_wait());
        if !note.is_empty() {
            self.bar.set_message(note);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What the bar shows beside the count: `(3 rejected, 2 retries, 12 s
/// waiting for rate limits)`, leaving out what is zero.
fn note(rejected: u64, retries: u64, waited: Duration) -> String {
    let mut parts = Vec::new();
    if rejected > 0 {
        parts.push(format!("{rejected} rejected"));
    }
    match retries {
        0 => {}
        1 => parts.push("1 retry".to_string()),
        n => parts.push(format!("{n} retries")),
    }
    if waited >= Duration::from_secs(1) {
        parts.push(format!("{} s waiting for rate limits", waited.as_secs()));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The listener for a run: a bar on a terminal, silence elsewhere or with
/// `-q`; the bar reads the command's HTTP `stats`.
pub fn for_stderr(stderr_tty: bool, quiet: bool, stats: Arc<Stats>) -> Box<dyn Progress> {
    if stderr_tty && !quiet {
        Box::new(Bar {
            bar: ProgressBar::hidden(),
            stats,
        })
    } else {
        Box::new(Silent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_shows_what_is_not_zero() {
        assert_eq!(note(0, 0, Duration::ZERO), "");
        assert_eq!(note(3, 0, Duration::from_millis(400)), "(3 rejected)");
        assert_eq!(
            note(0, 1, Duration::from_secs(12)),
            "(1 retry, 12 s waiting for rate limits)"
        );
        assert_eq!(note(2, 5, Duration::ZERO), "(2 rejected, 5 retries)");
    }
}
