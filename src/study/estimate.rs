//! Sizing a study before running it (`gansde check`): chain-steps, memory per
//! rank, output size, and wall time from a short timed pilot.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use crate::job::Job;
use crate::sde::SdeWork;
use crate::sga::SgaWork;

use super::block::{Kind, Plan};
use super::StudyError;

/// Resident memory of the process before any study state (binary, HDF5,
/// MPI, thread stacks), as measured on the development machine.
const BASELINE: u64 = 16 << 20;

/// What a study will cost on a given layout.
#[derive(Clone, Debug)]
pub struct Estimate {
    /// Finest-level η-steps of all chains and paths (first round under a target).
    pub chain_steps: u64,
    /// Blocks in the first round.
    pub blocks: usize,
    /// Bytes per rank: per-thread work space, block statistics and data.
    pub memory_per_rank: u64,
    /// Approximate size of the results file in bytes.
    pub output_bytes: u64,
    /// Estimated wall time in seconds (pilot rate × work / (ranks × threads)).
    pub wall_seconds: f64,
    /// Seconds the pilot took.
    pub pilot_seconds: f64,
    /// Chains the pilot ran.
    pub pilot_chains: u64,
}

/// Sizes `job` for `ranks` × `threads` by running `pilot` chains of every
/// (scheme, η, kind) group on this thread (results discarded).
pub fn estimate(job: &Job, ranks: usize, threads: usize, pilot: u64) -> Result<Estimate, StudyError> {
    let game = job.game();
    let plan = Plan::new(job, game.as_ref());
    let ng = plan.ngroups();
    let items = plan.items(&(0..ng).map(|g| 0..plan.initial_blocks(g)).collect::<Vec<_>>());
    let chain_steps: u64 = items.iter().map(|it| plan.chain_steps(it)).sum();
    let max_cols = plan.setups.iter().flatten().map(|s| s.noise.ncols(game.as_ref())).max().unwrap_or(1);
    let max_levels = plan.setups.iter().flatten().map(|s| s.levels()).max().unwrap_or(1);
    let mut sga = SgaWork::new(game.as_ref());
    let mut sde = SdeWork::new(game.as_ref(), max_cols, max_levels);
    // Time a few chains of each group; extrapolate each group's cost.
    let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let start = Instant::now();
    let mut seconds = 0.0;
    let mut pilot_chains = 0;
    for g in 0..ng {
        let mut it = plan.item(g, 0);
        let total: u64 = items.iter().filter(|x| x.group == g).map(|x| x.count).sum();
        it.count = pilot.min(it.count).max(1);
        let t = Instant::now();
        plan.run(&it, &mut sga, &mut sde, &done, &stop)?;
        seconds += t.elapsed().as_secs_f64() / it.count as f64 * total as f64;
        pilot_chains += it.count;
    }
    let pilot_seconds = start.elapsed().as_secs_f64();
    let d = game.dim() as u64;
    let work_space = (max_cols << (max_levels - 1)) as u64 * 8 + (12 + max_levels as u64) * d * 8 + 4096;
    let per_block = (2 * plan.ncells as u64 * 3 + 1) * 8;
    let data = (job.latent.data.len() + job.real.data.len()) as u64 * 8;
    let memory_per_rank = threads as u64 * work_space + items.len().div_ceil(ranks) as u64 * per_block * 2 + data + BASELINE;
    let cells = (job.schemes.len() * job.etas.len() * plan.ncells) as u64;
    let output_bytes = cells * 14 * 8 + data + 64 * 1024;
    let _ = Kind::Sga;
    Ok(Estimate {
        chain_steps,
        blocks: items.len(),
        memory_per_rank,
        output_bytes,
        wall_seconds: seconds / (ranks * threads).max(1) as f64,
        pilot_seconds,
        pilot_chains,
    })
}
