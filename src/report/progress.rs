//! One progress display for the whole job (all ranks' work, reported to rank
//! 0): an indicatif bar with rate and ETA on a terminal, a plain line every
//! few seconds in a batch log, nothing with --quiet.

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
    start: Mutex<Instant>,
    steps: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise; `quiet` shows neither (warnings still go to stderr).
    pub fn new(quiet: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let b = ProgressBar::new(1);
            b.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg} ETA {eta}").unwrap());
            b
        });
        Progress { bar, plain: !quiet && !tty, last: Mutex::new(None), start: Mutex::new(Instant::now()), steps: Default::default() }
    }

    /// Clears the bar before the report is printed.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn round(&self, chain_steps: u64) {
        self.steps.store(chain_steps, std::sync::atomic::Ordering::Relaxed);
        *self.start.lock().unwrap() = Instant::now();
        if let Some(b) = &self.bar {
            b.reset();
        }
    }

    fn progress(&self, done: u64, total: u64) {
        let el = self.start.lock().unwrap().elapsed().as_secs_f64();
        let frac = done as f64 / total.max(1) as f64;
        // Work units are cost-weighted; chain-steps/s assumes they track chain-steps.
        let rate = self.steps.load(std::sync::atomic::Ordering::Relaxed) as f64 * frac / el.max(1e-9);
        if let Some(b) = &self.bar {
            b.set_length(total.max(1));
            b.set_position(done);
            b.set_message(format!("{rate:.2e} chain-steps/s"));
        } else if self.plain {
            let mut last = self.last.lock().unwrap();
            let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) || done == total;
            if due {
                let eta = if frac > 0.0 { format!("{:.0}s", el * (1.0 - frac) / frac) } else { "?".into() };
                eprintln!("progress: {:5.1}% after {:.0}s, {rate:.2e} chain-steps/s, ETA {eta}", 100.0 * frac, el);
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
