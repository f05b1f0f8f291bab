//! The weak-error study (DESIGN §1 "What a study reports"): SGA chains and SDE
//! paths per scheme and η, grouped into fixed blocks, run on all local cores,
//! combined along a fixed tree over block indices, and turned into weak
//! errors, bias estimates and observed orders. The engine never prints: it
//! reports through an [`Observer`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::game::Game;
use crate::job::{Drift, Integrator, Job, Noise, Scheme};
use crate::rng::{stream, Role};
use crate::sde::{SdeSetup, SdeWork};
use crate::sga::{run_chain, SgaWork};
use crate::stats::{fit_order, normal_quantile, tree_merge, Moments, OrderFit};

/// Receives progress and warnings from a running study.
pub trait Observer: Sync {
    /// `done` of `total` work units (η-steps weighted by their cost) are complete.
    fn progress(&self, _done: u64, _total: u64) {}
    /// Something the researcher should know that does not stop the study.
    fn warning(&self, _message: &str) {}
}

/// An observer that ignores everything (tests, quiet runs).
pub struct Silent;
impl Observer for Silent {}

/// Why a study stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error("{kind} chain {chain} diverged at η = {eta}, step {step} of {steps} (|u| not finite or above the bound {bound}); the study stopped. Lower η, raise divergence.bound, or set divergence.action = \"count\" to skip such chains")]
    Diverged { kind: String, chain: u64, eta: f64, step: usize, steps: usize, bound: f64 },
}

/// SGA or SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sga,
    Sde,
}

/// One unit of scheduled work: a block of chains.
#[derive(Clone, Copy, Debug)]
struct Item {
    scheme: usize,
    eta: usize,
    kind: Kind,
    first: u64,
    count: u64,
    cost: u64,
}

/// Statistics of one block: per (record, f) cell, the SGA values, or the SDE
/// estimator and its bias difference; and the diverged chains skipped.
#[derive(Clone, Debug)]
struct BlockResult {
    value: Vec<Moments>,
    bias: Vec<Moments>,
    diverged: u64,
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
}

/// The outcome of a weak-error study.
#[derive(Clone, Debug)]
pub struct WeakErrorResult {
    pub schemes: Vec<SchemeResult>,
    /// Normal quantile for the intervals (from the confidence level).
    pub z: f64,
    pub threads: usize,
    pub elapsed: Duration,
    pub chain_steps: u64,
}

/// Ratio |e|/SE at and above which a weak error counts as resolved.
pub const RESOLVED_Z: f64 = 4.0;
/// Largest bias estimate, as a fraction of |e|, for a resolved weak error.
pub const RESOLVED_BIAS: f64 = 0.1;

struct Plan<'a> {
    job: &'a Job,
    game: &'a dyn Game,
    setups: Vec<Vec<SdeSetup>>,
    items: Vec<Item>,
    ncells: usize,
}

fn plan<'a>(job: &'a Job, game: &'a dyn Game) -> Plan<'a> {
    let setups: Vec<Vec<SdeSetup>> = job
        .schemes
        .iter()
        .map(|&s| {
            job.etas
                .iter()
                .map(|&eta| SdeSetup::new(game, job.sde.drift_for(s), job.sde.noise, job.sde.integrator, eta, job.batch, job.sde.substeps_for(eta), &job.init))
                .collect()
        })
        .collect();
    let mut items = Vec::new();
    for s in 0..job.schemes.len() {
        for (e, &steps) in job.steps.iter().enumerate() {
            for (kind, paths) in [(Kind::Sga, job.paths), (Kind::Sde, job.sde_paths)] {
                let per = match kind {
                    Kind::Sga => steps as u64,
                    Kind::Sde => (steps * setups[s][e].cost_per_step()) as u64,
                };
                let nblocks = paths.div_ceil(job.block);
                for b in 0..nblocks {
                    let first = b * job.block;
                    let count = job.block.min(paths - first);
                    items.push(Item { scheme: s, eta: e, kind, first, count, cost: per * count });
                }
            }
        }
    }
    Plan { job, game, setups, items, ncells: job.record_times.len() * job.functions.len() }
}

impl Plan<'_> {
    fn record_steps(&self, e: usize) -> Vec<usize> {
        (0..self.job.record_times.len()).map(|r| self.job.record_step(e, r)).collect()
    }

    /// Runs one block; chains are visited in index order so the block's
    /// statistics do not depend on who ran it.
    fn run(&self, it: &Item, sga: &mut SgaWork, sde: &mut SdeWork, done: &AtomicU64, stop: &AtomicBool) -> Result<BlockResult, StudyError> {
        let job = self.job;
        let game = self.game;
        let nf = job.functions.len();
        let mut value = vec![Moments::default(); self.ncells];
        let mut bias = vec![Moments::default(); self.ncells];
        let mut diverged = 0;
        let steps = job.steps[it.eta];
        let rec = self.record_steps(it.eta);
        let eta = job.etas[it.eta];
        let scheme = job.schemes[it.scheme];
        let setup = &self.setups[it.scheme][it.eta];
        let nl = setup.levels();
        let mut vals = vec![0.0; self.ncells * nl];
        let per_chain = it.cost / it.count;
        for c in it.first..it.first + it.count {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let outcome = match it.kind {
                Kind::Sga => {
                    let mut rng = stream(job.seed, it.eta, Role::Sga(it.scheme as u8), c);
                    run_chain(game, scheme, eta, job.batch, &job.init, steps, &rec, job.divergence.bound, &mut rng, sga, |r, u| {
                        for (fi, f) in job.functions.iter().enumerate() {
                            vals[r * nf + fi] = f.eval(u, game);
                        }
                    })
                }
                Kind::Sde => {
                    let mut rng = stream(job.seed, it.eta, Role::Sde(it.scheme as u8), c);
                    setup.run_path(game, &job.init, steps, &rec, job.divergence.bound, &mut rng, sde, |r, l, u| {
                        for (fi, f) in job.functions.iter().enumerate() {
                            vals[(r * nf + fi) * nl + l] = f.eval(u, game);
                        }
                    })
                }
            };
            match outcome {
                Ok(()) => {
                    for cell in 0..self.ncells {
                        match (it.kind, job.sde.integrator) {
                            (Kind::Sga, _) => value[cell].push(vals[cell]),
                            (Kind::Sde, Integrator::Richardson) => {
                                let f = &vals[cell * 3..cell * 3 + 3];
                                let r2m = 2.0 * f[2] - f[1];
                                let rm = 2.0 * f[1] - f[0];
                                value[cell].push(r2m);
                                bias[cell].push(rm - r2m);
                            }
                            (Kind::Sde, Integrator::Euler) => {
                                let f = &vals[cell * 2..cell * 2 + 2];
                                value[cell].push(f[1]);
                                bias[cell].push(f[0] - f[1]);
                            }
                            (Kind::Sde, Integrator::Exact) => {
                                value[cell].push(vals[cell]);
                                bias[cell].push(0.0);
                            }
                        }
                    }
                }
                Err(d) if job.divergence.stop => {
                    return Err(StudyError::Diverged {
                        kind: match it.kind {
                            Kind::Sga => format!("SGA ({})", scheme.name()),
                            Kind::Sde => format!("SDE ({} drift)", setup.drift.name()),
                        },
                        chain: c,
                        eta,
                        step: d.step,
                        steps,
                        bound: job.divergence.bound,
                    });
                }
                Err(_) => diverged += 1,
            }
            done.fetch_add(per_chain, Ordering::Relaxed);
        }
        Ok(BlockResult { value, bias, diverged })
    }
}

/// Runs the weak-error study on `threads` worker threads. The result does not
/// depend on `threads`.
pub fn weak_error(job: &Job, threads: usize, observer: &dyn Observer) -> Result<WeakErrorResult, StudyError> {
    let start = Instant::now();
    let game = job.game();
    let plan = plan(job, game.as_ref());
    for w in &job.warnings {
        observer.warning(w);
    }
    let total: u64 = plan.items.iter().map(|i| i.cost).sum();
    // Costliest blocks first keeps threads busy to the end; order of execution never affects results.
    let mut order: Vec<usize> = (0..plan.items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(plan.items[i].cost));
    let slots: Vec<OnceLock<BlockResult>> = (0..plan.items.len()).map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<(usize, StudyError)>> = Mutex::new(None);
    let threads = threads.max(1);
    let max_cols = plan.setups.iter().flatten().map(|s| s.noise.ncols(game.as_ref())).max().unwrap_or(1);
    let max_levels = plan.setups.iter().flatten().map(|s| s.levels()).max().unwrap_or(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut sga = SgaWork::new(game.as_ref());
                let mut sde = SdeWork::new(game.as_ref(), max_cols, max_levels);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= order.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let idx = order[k];
                    match plan.run(&plan.items[idx], &mut sga, &mut sde, &done, &stop) {
                        Ok(r) => {
                            let _ = slots[idx].set(r);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            let mut f = failure.lock().unwrap();
                            // Keep the failure of the lowest item so the message is reproducible when several fail.
                            if f.as_ref().is_none_or(|(i, _)| idx < *i) {
                                *f = Some((idx, e));
                            }
                        }
                    }
                }
            });
        }
        loop {
            let finished = slots.iter().all(|s| s.get().is_some()) || stop.load(Ordering::Relaxed);
            observer.progress(done.load(Ordering::Relaxed), total);
            if finished {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    if let Some((_, e)) = failure.into_inner().unwrap() {
        return Err(e);
    }
    observer.progress(total, total);
    let results: Vec<BlockResult> = slots.into_iter().map(|s| s.into_inner().expect("every block ran")).collect();
    let chain_steps: u64 = plan
        .items
        .iter()
        .map(|it| it.count * job.steps[it.eta] as u64 * if it.kind == Kind::Sde { (plan.setups[it.scheme][it.eta].substeps << (plan.setups[it.scheme][it.eta].levels() - 1)) as u64 } else { 1 })
        .sum();
    Ok(assemble(job, &plan, &results, threads, start.elapsed(), chain_steps))
}

fn assemble(job: &Job, plan: &Plan, results: &[BlockResult], threads: usize, elapsed: Duration, chain_steps: u64) -> WeakErrorResult {
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
                    let pick = |kind: Kind| -> Vec<&BlockResult> {
                        // Items were created in block order for each (scheme, η, kind).
                        plan.items.iter().zip(results).filter(|(it, _)| it.scheme == s && it.eta == e && it.kind == kind).map(|(_, r)| r).collect()
                    };
                    let (sga_blocks, sde_blocks) = (pick(Kind::Sga), pick(Kind::Sde));
                    diverged[e] = (sga_blocks.iter().map(|b| b.diverged).sum(), sde_blocks.iter().map(|b| b.diverged).sum());
                    (0..nr)
                        .map(|r| {
                            (0..nf)
                                .map(|f| {
                                    let c = r * nf + f;
                                    let sga = tree_merge(&sga_blocks.iter().map(|b| b.value[c]).collect::<Vec<_>>());
                                    let sde = tree_merge(&sde_blocks.iter().map(|b| b.value[c]).collect::<Vec<_>>());
                                    let bias = tree_merge(&sde_blocks.iter().map(|b| b.bias[c]).collect::<Vec<_>>());
                                    let weak_error = sga.mean - sde.mean;
                                    let std_error = (sga.variance() / sga.count as f64 + sde.variance() / sde.count as f64).sqrt();
                                    let bias_estimate = bias.mean.abs();
                                    let resolved = weak_error.abs() >= RESOLVED_Z * std_error && bias_estimate <= RESOLVED_BIAS * weak_error.abs() && std_error > 0.0;
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
                paper_order: job.sde.paper_order(scheme),
                cells,
                orders,
                diverged,
            }
        })
        .collect();
    WeakErrorResult { schemes, z, threads, elapsed, chain_steps }
}
