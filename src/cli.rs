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
pub const EXIT_CODES: &str = "Exit codes: 0 done; 1 failed (I/O or internal error); 2 bad input (job file, data file, flag, existing results file); 3 stopped because a chain diverged.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Weak error of SGA against its SDE at each η, with the observed order in η.
    WeakError(WeakErrorArgs),
}

#[derive(clap::Args, Debug)]
pub struct WeakErrorArgs {
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
    /// Replace an existing results file.
    #[arg(long)]
    pub force: bool,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}
