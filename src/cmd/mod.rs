//! The subcommands: each turns its parsed arguments into a validated job,
//! runs the engine and renders what it returns. Errors go up to `main`.

pub mod check;
pub mod long_run;
pub mod output;
pub mod results;
pub mod weak_error;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;

/// Threads this process may use: SLURM_CPUS_PER_TASK when set, else the
/// CPUs in our affinity mask / cgroup quota.
pub fn default_threads() -> usize {
    let avail = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => avail,
    }
}

/// A flag raised by SIGTERM, SIGUSR1 or SIGINT; a second signal ends the process at once.
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop)).context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }
    Ok(stop)
}
