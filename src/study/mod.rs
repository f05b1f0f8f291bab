//! The weak-error study (DESIGN §1 "What a study reports"): SGA chains and SDE
//! paths per scheme and η, grouped into fixed blocks, run on all local cores,
//! combined along a fixed tree over block indices, and turned into weak
//! errors, bias estimates and observed orders. The engine never prints: it
//! reports through an [`Observer`].

mod block;
mod estimate;
pub mod long_run;
pub mod observables;
mod runner;

pub use estimate::{estimate, Estimate};

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::cluster::{self, Comm};
use crate::job::{Drift, Job, Noise, Scheme, Target};
use crate::stats::{fit_order, normal_quantile, Moments, OrderFit};

use block::{BlockResult, Kind, Plan};
use runner::{reduce_round, run_items, save_state, Failure};

/// Receives progress and warnings from a running study.
pub trait Observer: Sync {
    /// `done` of `total` work units (η-steps weighted by their cost) are complete.
    fn progress(&self, _done: u64, _total: u64) {}
    /// Something the researcher should know that does not stop the study.
    fn warning(&self, _message: &str) {}
    /// A round of `chain_steps` finest-level η-steps (over all ranks) starts.
    fn round(&self, _chain_steps: u64) {}
}

/// An observer that ignores everything (tests, quiet runs).
pub struct Silent;
impl Observer for Silent {}

/// Why a study stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{kind} chain {chain} diverged at η = {eta}, step {step} of {steps} (|u| not finite or above the bound {bound}); the study stopped. {}", divergence_advice(*may_count))]
    Diverged { kind: String, chain: u64, eta: f64, step: usize, steps: usize, bound: f64, may_count: bool },
    /// Stopped by a signal after saving the completed blocks.
    #[error("stopped by a signal; completed blocks are saved in {dir} ({saved} by this rank); run again with --resume to continue")]
    Stopped { saved: usize, dir: String },
    /// Stopped by a signal during a long-run analysis (the samples are complete).
    #[error("stopped by a signal during the analysis; the samples are complete in {dir}; run again with --resume to finish the analysis")]
    AnalysisStopped { dir: String },
    /// A failure on another rank, as that rank described it (shown by rank 0).
    #[error("{message}")]
    OnRank { code: u8, message: String },
    /// This rank stopped because another one failed (rank 0 reports why).
    #[error("stopped: another rank failed")]
    Elsewhere { code: u8 },
    /// Saved state that cannot be used.
    #[error(transparent)]
    State(#[from] crate::io::StateError),
    /// The sample store holds blocks that cannot be used.
    #[error("{0}")]
    Samples(String),
    /// Writing long-run samples failed.
    #[error("cannot write samples in {dir}: {reason}")]
    Write { dir: String, reason: String },
    /// Saving state failed.
    #[error("cannot save state in {dir}: {reason}")]
    Save { dir: String, reason: String },
}

/// What to change after a divergence: a weak-error study may also skip such
/// chains; a long-run study may not (its samples would have holes).
fn divergence_advice(may_count: bool) -> &'static str {
    if may_count {
        "Lower η, raise divergence.bound, or set divergence.action = \"count\" to skip such chains"
    } else {
        "Lower η or raise divergence.bound (a long-run study cannot skip chains)"
    }
}

/// Chains per group timed to balance ranks.
const PILOT_CHAINS: u64 = 8;

/// Exit code of a diverged study.
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of a study stopped by a signal after saving its state.
pub const EXIT_STOPPED: u8 = 75;

impl StudyError {
    /// The documented exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            StudyError::Diverged { .. } => EXIT_DIVERGED,
            StudyError::Stopped { .. } | StudyError::AnalysisStopped { .. } => EXIT_STOPPED,
            StudyError::OnRank { code, .. } | StudyError::Elsewhere { code } => *code,
            StudyError::State(_) | StudyError::Samples(_) => 2,
            StudyError::Save { .. } | StudyError::Write { .. } => 1,
        }
    }
}

/// How a running study is steered from outside: a stop request (set by the
/// CLI's signal handler) and where to save completed blocks.
pub struct Control<'a> {
    /// When set, workers stop at the next chain boundary and state is saved.
    pub stop: &'a AtomicBool,
    /// The state store (None: no saving, no resume).
    pub state: Option<&'a crate::io::StateStore>,
    /// Reuse blocks already saved in the store.
    pub resume: bool,
    /// Time between state saves.
    pub interval: Duration,
}

static NEVER: AtomicBool = AtomicBool::new(false);

impl Control<'static> {
    /// No stop requests, no saved state (library use and tests).
    pub fn unattended() -> Self {
        Control { stop: &NEVER, state: None, resume: false, interval: Duration::MAX }
    }
}

/// Weak-error statistics for one (η, record time, test function).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cell {
    /// f(θ_t, ω_t) over SGA chains.
    pub sga: Moments,
    /// The SDE estimator per path (Richardson 2f_{h/2} − f_h at 2m, Euler f at 2m, or exact).
    pub sde: Moments,
    /// The per-path difference of the estimator at m and at 2m substeps.
    pub bias: Moments,
    /// e = E f SGA − E f SDE.
    pub weak_error: f64,
    /// Its standard error (independent ensembles).
    pub std_error: f64,
    /// |R_m − R_2m| (0 for the exact integrator).
    pub bias_estimate: f64,
    /// |e| ≥ 4 SE and bias estimate ≤ 0.1 |e|.
    pub resolved: bool,
}

/// All results for one scheme.
#[derive(Clone, Debug)]
pub struct SchemeResult {
    pub scheme: Scheme,
    pub drift: Drift,
    pub noise: Noise,
    pub paper_order: f64,
    /// cells[eta][record][f].
    pub cells: Vec<Vec<Vec<Cell>>>,
    /// Fitted orders [record][f] (None with fewer than two resolved points).
    pub orders: Vec<Vec<Option<OrderFit>>>,
    /// Diverged chains skipped per η: (SGA, SDE).
    pub diverged: Vec<(u64, u64)>,
    /// Per η, whether the precision target was met (None without a target).
    pub target_met: Option<Vec<bool>>,
}

/// The outcome of a weak-error study.
#[derive(Clone, Debug)]
pub struct WeakErrorResult {
    pub schemes: Vec<SchemeResult>,
    /// Normal quantile for the intervals (from the confidence level).
    pub z: f64,
    pub ranks: usize,
    pub threads: usize,
    pub elapsed: Duration,
    pub chain_steps: u64,
    /// Rounds of blocks run (1 without a precision target).
    pub rounds: usize,
    /// Chain-steps computed by this run (the rest came from saved state).
    pub chain_steps_run: u64,
    /// Rank 0's time spent saving state (periodic saves).
    pub save_time: Duration,
    /// Rank 0's time in the reductions (including waiting for other ranks).
    pub reduce_time: Duration,
}

/// Ratio |e|/SE at and above which a weak error counts as resolved.
pub const RESOLVED_Z: f64 = 4.0;
/// Largest bias estimate, as a fraction of |e|, for a resolved weak error.
pub const RESOLVED_BIAS: f64 = 0.1;

/// Runs the weak-error study. Each round, every rank runs its cost-balanced
/// share of the round's blocks on `threads` worker threads and the round is
/// reduced along the fixed tree at rank 0; with a precision target, rank 0
/// then decides (from those deterministic statistics) which (scheme, η) need
/// more blocks. Rank 0 returns the result, other ranks None. The result
/// depends on neither the number of ranks nor `threads`, nor on how often the
/// run was stopped and resumed.
pub fn weak_error(job: &Job, threads: usize, comm: &dyn Comm, control: &Control, observer: &dyn Observer) -> Result<Option<WeakErrorResult>, StudyError> {
    let start = Instant::now();
    let game = job.game();
    let mut plan = Plan::new(job, game.as_ref());
    let root = comm.rank() == 0;
    if root {
        for w in &job.warnings {
            observer.warning(w);
        }
    }
    if comm.size() > 1 {
        // Balance ranks by measured cost: rank 0 times a few chains of every
        // group and all ranks adopt its figures (the split never affects results).
        let pilot = if root { plan.pilot(PILOT_CHAINS) } else { Ok(vec![0; plan.ngroups()]) };
        let ok = comm.max(pilot.is_err() as u64) == 0;
        let costs = match (ok, pilot) {
            (true, Ok(c)) => c,
            // A chain diverged in the pilot: the model weights will do; the run reports it.
            _ => vec![0; plan.ngroups()],
        };
        let costs: Vec<u64> = costs.iter().map(|&c| comm.max(c)).collect();
        if costs.iter().all(|&c| c > 0) {
            plan.calibrate(costs);
        }
    }
    // Blocks saved by any rank of an earlier run (every rank reads them all).
    let mut saved: HashMap<u64, BlockResult> = HashMap::new();
    let mut load_error = None;
    if let (Some(store), true) = (control.state, control.resume) {
        match store.load() {
            Ok(map) => {
                for (key, bytes) in map {
                    if let Some((_, _, _, r)) = BlockResult::decode_all(&bytes, plan.ncells).pop() {
                        saved.insert(key, r);
                    }
                }
            }
            Err(e) => load_error = Some(StudyError::from(e)),
        }
    }
    if comm.max(load_error.is_some() as u64) == 1 {
        // Every rank read the same files: rank 0 reports one failure, the others stay silent.
        return Err(agree_failure(comm, load_error.map(|e| (0, e)), 2));
    }
    let ng = plan.ngroups();
    let mut done = vec![0usize; ng];
    let mut want: Vec<usize> = (0..ng).map(|g| plan.initial_blocks(g)).collect();
    let mut totals = vec![BlockResult::empty(plan.ncells); ng];
    let (mut rounds, mut chain_steps, mut run_steps) = (0, 0u64, 0u64);
    let (mut save_time, mut reduce_time) = (Duration::ZERO, Duration::ZERO);
    let silent = Silent;
    loop {
        let blocks: Vec<Range<usize>> = (0..ng).map(|g| done[g]..want[g]).collect();
        let items = plan.items(&blocks);
        if items.is_empty() {
            break;
        }
        rounds += 1;
        let round_steps: u64 = items.iter().map(|it| plan.chain_steps(it)).sum();
        chain_steps += round_steps;
        run_steps += items.iter().filter(|it| !saved.contains_key(&it.key())).map(|it| plan.chain_steps(it)).sum::<u64>();
        if root {
            observer.round(round_steps);
        }
        // Balance the work still to do; each rank owns a contiguous range for the reduction.
        let costs: Vec<u64> = items.iter().map(|it| if saved.contains_key(&it.key()) { 0 } else { it.cost }).collect();
        let mine = cluster::plan::partition(&costs, comm.size())[comm.rank()].clone();
        let round_total: u64 = costs.iter().sum();
        let (results, failure) = run_items(
            &plan,
            &items,
            mine.clone(),
            threads,
            &saved,
            comm.rank(),
            control,
            if root { observer } else { &silent },
            &mut save_time,
            comm,
            round_total,
        );

        // Agree on failure before anything else, so no rank waits for nodes that never come.
        let code = comm.max(failure.as_ref().map_or(0, |(_, e)| e.exit_code() as u64)) as u8;
        if code != 0 {
            let own_stop = matches!(failure, Some((_, StudyError::Stopped { .. })));
            if let (true, false, Some(store)) = (code == EXIT_STOPPED, own_stop, control.state) {
                // A signal stopped the study elsewhere: keep this rank's finished share for the resume.
                let computed = results.iter().enumerate().filter_map(|(k, r)| r.as_ref().map(|r| (items[mine.start + k].key(), r)));
                let _ = save_state(store, comm.rank(), computed, &saved);
            }
            return Err(agree_failure(comm, failure, code));
        }
        let results: Vec<BlockResult> = results.into_iter().map(|r| r.expect("every block of this rank ran")).collect();
        if control.state.is_some() {
            // Later rounds save these too.
            for (k, r) in results.iter().enumerate() {
                saved.insert(items[mine.start + k].key(), r.clone());
            }
        }
        let t = Instant::now();
        let round = reduce_round(&plan, &items, mine, &results, &blocks, comm);
        reduce_time += t.elapsed();
        if let Some(round) = round {
            for (t, r) in totals.iter_mut().zip(round) {
                if let Some(r) = r {
                    *t = t.merge(&r);
                }
            }
        }
        done = want.clone();
        let Some(target) = job.target else { break };
        let proposal = if root { more_blocks(&plan, &totals, &done, target) } else { vec![0; ng] };
        want = proposal.iter().map(|&p| comm.max(p as u64) as usize).collect();
    }
    if !root {
        return Ok(None);
    }
    let mut result = assemble(job, &totals, comm.size(), threads, start.elapsed(), chain_steps);
    result.rounds = rounds;
    result.chain_steps_run = run_steps;
    result.save_time = save_time;
    result.reduce_time = reduce_time;
    if let Some(t) = job.target {
        for (s, sr) in result.schemes.iter_mut().enumerate() {
            sr.target_met = Some((0..job.etas.len()).map(|e| shortfall(&plan, &totals, s, e, t) <= 1.0).collect());
        }
    }
    Ok(Some(result))
}

/// The error every rank returns once some rank failed: rank 0 gets the
/// failure of the lowest block (as a single-process run would report it).
fn agree_failure(comm: &dyn Comm, failure: Failure, code: u8) -> StudyError {
    let mut message = Vec::new();
    if let Some((idx, e)) = &failure {
        message.extend_from_slice(&(*idx as u64).to_le_bytes());
        message.extend_from_slice(e.to_string().as_bytes());
    }
    match comm.gather(&message) {
        Some(all) => {
            let first = all.iter().filter(|m| m.len() >= 8).min_by_key(|m| u64::from_le_bytes(m[..8].try_into().unwrap())).expect("a rank failed");
            match failure {
                Some((_, e)) if comm.size() == 1 => e,
                _ => StudyError::OnRank { code, message: String::from_utf8_lossy(&first[8..]).into_owned() },
            }
        }
        None => StudyError::Elsewhere { code },
    }
}

/// How far a (scheme, η) is from the target: the largest (SE/target)² (or
/// (z·SE / (r·|e|))²) over its record times and test functions; ≤ 1 when met.
fn shortfall(plan: &Plan, totals: &[BlockResult], scheme: usize, eta: usize, target: Target) -> f64 {
    let z = normal_quantile(0.5 + plan.job.confidence / 2.0);
    let (sga, sde) = (&totals[plan.group(scheme, eta, Kind::Sga)], &totals[plan.group(scheme, eta, Kind::Sde)]);
    (0..plan.ncells)
        .map(|c| {
            let (a, b) = (sga.value[c], sde.value[c]);
            let se = (a.variance() / a.count as f64 + b.variance() / b.count as f64).sqrt();
            match target {
                Target::StdError(t) => (se / t).powi(2),
                Target::RelativeCi(r) => (z * se / (r * (a.mean - b.mean).abs())).powi(2),
            }
        })
        .fold(0.0, |m: f64, x| if x.is_nan() { f64::INFINITY } else { m.max(x) })
}

/// Rank 0's decision after a round: the block counts each group should reach
/// (unchanged where the target is met or the cap reached). Growth is the
/// estimated shortfall ×1.1, at most 4× per round, at least one block.
fn more_blocks(plan: &Plan, totals: &[BlockResult], done: &[usize], target: Target) -> Vec<usize> {
    let job = plan.job;
    let mut want = done.to_vec();
    for s in 0..job.schemes.len() {
        for e in 0..job.etas.len() {
            let k = shortfall(plan, totals, s, e, target);
            if k <= 1.0 {
                continue;
            }
            let factor = (k * 1.1).min(4.0);
            for (kind, cap_paths) in [(Kind::Sga, job.max_paths), (Kind::Sde, job.max_paths * job.sde_paths / job.paths)] {
                let g = plan.group(s, e, kind);
                // Whole blocks, never beyond the cap (the first round may already be there).
                let cap = ((cap_paths / job.block) as usize).max(done[g]);
                want[g] = (((done[g] as f64) * factor).ceil() as usize).max(done[g] + 1).min(cap).max(done[g]);
            }
        }
    }
    want
}

fn assemble(job: &Job, totals: &[BlockResult], ranks: usize, threads: usize, elapsed: Duration, chain_steps: u64) -> WeakErrorResult {
    let z = normal_quantile(0.5 + job.confidence / 2.0);
    let (nr, nf) = (job.record_times.len(), job.functions.len());
    let schemes = job
        .schemes
        .iter()
        .enumerate()
        .map(|(s, &scheme)| {
            let mut diverged = vec![(0, 0); job.etas.len()];
            let cells: Vec<Vec<Vec<Cell>>> = (0..job.etas.len())
                .map(|e| {
                    let (sga_t, sde_t) = (&totals[(s * job.etas.len() + e) * 2], &totals[(s * job.etas.len() + e) * 2 + 1]);
                    diverged[e] = (sga_t.diverged, sde_t.diverged);
                    (0..nr)
                        .map(|r| {
                            (0..nf)
                                .map(|f| {
                                    let c = r * nf + f;
                                    let (sga, sde, bias) = (sga_t.value[c], sde_t.value[c], sde_t.bias[c]);
                                    let weak_error = sga.mean - sde.mean;
                                    // Fewer than two values (e.g. all but one chain diverged) give no standard error.
                                    let std_error = if sga.count < 2 || sde.count < 2 {
                                        f64::NAN
                                    } else {
                                        (sga.variance() / sga.count as f64 + sde.variance() / sde.count as f64).sqrt()
                                    };
                                    let bias_estimate = bias.mean.abs();
                                    let resolved =
                                        std_error > 0.0 && weak_error.abs() >= RESOLVED_Z * std_error && bias_estimate <= RESOLVED_BIAS * weak_error.abs();
                                    Cell { sga, sde, bias, weak_error, std_error, bias_estimate, resolved }
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
            let orders = (0..nr)
                .map(|r| {
                    (0..nf)
                        .map(|f| {
                            let pts: Vec<(f64, f64, f64)> = (0..job.etas.len())
                                .filter(|&e| cells[e][r][f].resolved)
                                .map(|e| (job.etas[e], cells[e][r][f].weak_error, cells[e][r][f].std_error))
                                .collect();
                            fit_order(&pts, job.confidence)
                        })
                        .collect()
                })
                .collect();
            SchemeResult {
                scheme,
                drift: job.sde.drift_for(scheme),
                noise: job.sde.noise,
                paper_order: job.sde.paper_order(scheme, matches!(job.model, crate::job::ModelSpec::Lq { .. })),
                cells,
                orders,
                diverged,
                target_met: None,
            }
        })
        .collect();
    WeakErrorResult {
        schemes,
        z,
        ranks,
        threads,
        elapsed,
        chain_steps,
        chain_steps_run: chain_steps,
        rounds: 1,
        save_time: Duration::ZERO,
        reduce_time: Duration::ZERO,
    }
}
