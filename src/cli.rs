//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Monte Carlo convergence studies of stochastic-gradient GAN training
/// against its SDE approximations (Cao & Guo 2023).
#[derive(Parser, Debug)]
#[command(name = "gansde", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, for batch scripts.
pub const EXIT_CODES: &str = "Exit codes: 0 done (or already complete with --resume); 1 failed (I/O or internal error); 2 bad input (job file, data file, flag, existing results file or foreign state); 3 stopped because a chain diverged; 75 stopped by SIGTERM/SIGUSR1/SIGINT after saving state (run again with --resume).";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Weak error of SGA against its SDE at each η, with the observed order in η.
    WeakError(StudyArgs),
    /// Long-run study: invariant measure, mixing and fluctuation–dissipation
    /// relations from long SGA chains and SDE paths (samples streamed to HDF5).
    LongRun(StudyArgs),
    /// Analyse a long-run results file (again) and store the numbers in it.
    Analyze(AnalyzeArgs),
    /// Draw the plots (PNG and SVG) of a results file (weak-error or long-run).
    Plot(PlotArgs),
    /// Validate a job without running it and estimate its cost on a layout.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The TOML job file.
    pub job: PathBuf,
    /// Override a job key (repeatable), as for weak-error.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// MPI ranks planned.
    #[arg(long, default_value_t = 1)]
    pub ranks: usize,
    /// Threads per rank planned (default: the CPUs of this machine).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Chains timed per (scheme, η, SGA/SDE) in the pilot; for a long-run job, whole paths (to T) per ensemble.
    #[arg(long, default_value_t = 20)]
    pub pilot: u64,
}

#[derive(clap::Args, Debug)]
pub struct StudyArgs {
    /// The TOML job file.
    pub job: PathBuf,
    /// Override a job key, e.g. --set estimate.paths=20000 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Output folder (default: results/<job name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (default: the CPUs this process may use, or SLURM_CPUS_PER_TASK).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Replace an existing results file (and discard saved state).
    #[arg(long)]
    pub force: bool,
    /// Continue from the state saved by an interrupted run (any rank/thread
    /// layout); a finished study does nothing.
    #[arg(long)]
    pub resume: bool,
    /// Seconds between saves of completed blocks (default 300; weak-error only:
    /// long-run writes every block as soon as it is complete).
    #[arg(long, value_name = "SECONDS")]
    pub checkpoint_every: Option<u64>,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// Long-run only: write the samples and the study file but leave the
    /// analysis (which holds a kind's samples in memory) to a later `gansde analyze`.
    #[arg(long)]
    pub skip_analysis: bool,
}

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    /// A long_run.h5 written by `gansde long-run`.
    pub results: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A weak_error.h5 or long_run.h5.
    pub results: PathBuf,
    /// Folder for the plots (default: plots/ beside the results file).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
