//! Sizing a study before running it (`gansde check`): chain-steps, memory per
//! rank, output size, and wall time from a short timed pilot.

use std::time::Instant;

use crate::job::Job;

use super::block::Plan;
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
    // Time a few chains of each group; extrapolate each group's cost.
    let start = Instant::now();
    let ns_per_chain = plan.pilot(pilot)?;
    let pilot_seconds = start.elapsed().as_secs_f64();
    let chains_of = |g: usize| items.iter().filter(|x| x.group == g).map(|x| x.count).sum::<u64>();
    let seconds: f64 = (0..ng).map(|g| ns_per_chain[g] as f64 * 1e-9 * chains_of(g) as f64).sum();
    let pilot_chains: u64 = (0..ng).map(|g| pilot.min(plan.item(g, 0).count).max(1)).sum();
    let (_, sde) = plan.work();
    let d = game.dim() as u64;
    let work_space = sde.bytes() as u64 + 4 * d * 8 + 4096;
    let per_block = (2 * plan.ncells as u64 * 3 + 1) * 8;
    let data = (job.latent.data.len() + job.real.data.len()) as u64 * 8;
    let memory_per_rank = threads as u64 * work_space + items.len().div_ceil(ranks) as u64 * per_block * 2 + data + BASELINE;
    let cells = (job.schemes.len() * job.etas.len() * plan.ncells) as u64;
    let output_bytes = cells * 14 * 8 + data + 64 * 1024;
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
