//! Progress of long runs on stderr. Engines report to the small [`Progress`]
//! trait; [`for_stderr`] answers an indicatif bar when stderr is a terminal
//! and a silent listener otherwise, so pipes and logs never get bar noise.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a run tells whoever watches it.
pub trait Progress: Send + Sync {
    /// The run starts; `total` is the number of records when the source knows it.
    fn start(&self, done: u64, total: Option<u64>);
    /// `done` records handled so far (written or rejected), `rejected` of them rejected.
    fn update(&self, done: u64, rejected: u64);
    /// The run is over; clear the bar.
    fn finish(&self);
}

/// A listener that shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: u64, _: Option<u64>) {}
    fn update(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// An indicatif bar: records done, records per second, ETA when the total
/// is known, rejects.
pub struct Bar {
    bar: ProgressBar,
}

impl Progress for Bar {
    fn start(&self, done: u64, total: Option<u64>) {
        let style = match total {
            Some(t) => {
                self.bar.set_length(t);
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} records, {per_sec}, ETA {eta} {msg}"
            }
            None => "{spinner} [{elapsed_precise}] {pos} records, {per_sec} {msg}",
        };
        if let Ok(style) = ProgressStyle::with_template(style) {
            self.bar.set_style(style);
        }
        self.bar.set_position(done);
        self.bar.enable_steady_tick(Duration::from_millis(200));
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
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Box::new(Bar { bar })
    } else {
        Box::new(Silent)
    }
}
