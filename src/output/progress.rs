//! Progress of long runs on stderr. Engines report to the small [`Progress`]
//! trait; [`for_stderr`] answers an indicatif bar when stderr is a terminal
//! and a silent listener otherwise, so pipes and logs never get bar noise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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
/// is known, rejects.
pub struct Bar {
    bar: ProgressBar,
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
        if rejected > 0 {
            self.bar.set_message(format!("({rejected} rejected)"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The listener for a run: a bar on a terminal, silence elsewhere or with `-q`.
pub fn for_stderr(stderr_tty: bool, quiet: bool) -> Box<dyn Progress> {
    if stderr_tty && !quiet {
        Box::new(Bar {
            bar: ProgressBar::hidden(),
        })
    } else {
        Box::new(Silent)
    }
}
