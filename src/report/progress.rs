//! One progress display for the whole job: an indicatif bar with ETA on a
//! terminal, a plain line every few seconds in a batch log, nothing with --quiet.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::study::Observer;

/// The CLI's observer.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last: Mutex<Option<Instant>>,
    start: Instant,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise; `quiet` shows neither (warnings still go to stderr).
    pub fn new(quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::new(1);
            b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% ETA {eta}").unwrap());
            b
        });
        Progress { bar, plain: !quiet && !tty, last: Mutex::new(None), start: Instant::now() }
    }

    /// Clears the bar before the report is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn progress(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total.max(1));
            b.set_position(done);
        } else if self.plain {
            let mut last = self.last.lock().unwrap();
            let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) || done == total;
            if due {
                let el = self.start.elapsed().as_secs_f64();
                let frac = done as f64 / total.max(1) as f64;
                let eta = if frac > 0.0 { format!("{:.0}s", el * (1.0 - frac) / frac) } else { "?".into() };
                eprintln!("progress: {:5.1}% after {:.0}s, ETA {eta}", 100.0 * frac, el);
                *last = Some(Instant::now());
            }
        }
    }

    fn warning(&self, message: &str) {
        match &self.bar {
            Some(b) => b.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}
