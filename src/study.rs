//! The weak-error study (DESIGN §1 "What a study reports"): SGA chains and SDE
//! paths per scheme and η, grouped into fixed blocks, run on all local cores,
//! combined along a fixed tree over block indices, and turned into weak
//! errors, bias estimates and observed orders. The engine never prints: it
//! reports through an [`Observer`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use crate::cluster::{self, Comm};
use crate::game::Game;
use crate::job::{Drift, Integrator, Job, Noise, Scheme};
use crate::rng::{stream, Role};
use crate::sde::{SdeSetup, SdeWork};
use crate::sga::{run_chain, SgaWork};
use crate::stats::{fit_order, normal_quantile, Moments, OrderFit};

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
    /// Stopped by a signal after saving the completed blocks.
    #[error("stopped by a signal after saving {saved} of {total} blocks to {dir}; run again with --resume to continue")]
    Stopped { saved: usize, total: usize, dir: String },
    /// A failure on another rank, as that rank described it (shown by rank 0).
    #[error("{message}")]
    OnRank { code: u8, message: String },
    /// This rank stopped because another one failed (rank 0 reports why).
    #[error("stopped: another rank failed")]
    Elsewhere { code: u8 },
    /// Saved state that cannot be used.
    #[error(transparent)]
    State(#[from] crate::io::StateError),
    /// Saving state failed.
    #[error("cannot save state in {dir}: {reason}")]
    Save { dir: String, reason: String },
}

/// Exit code of a diverged study.
pub const EXIT_DIVERGED: u8 = 3;
/// Exit code of a study stopped by a signal after saving its state.
pub const EXIT_STOPPED: u8 = 75;

impl StudyError {
    /// The documented exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            StudyError::Diverged { .. } => EXIT_DIVERGED,
            StudyError::Stopped { .. } => EXIT_STOPPED,
            StudyError::OnRank { code, .. } | StudyError::Elsewhere { code } => *code,
            StudyError::State(_) => 2,
            StudyError::Save { .. } => 1,
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

/// SGA or SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Sga,
    Sde,
}

/// One unit of scheduled work: a block of chains.
#[derive(Clone, Copy, Debug)]
struct Item {
    /// (scheme, η, kind) group: blocks of one group are merged together.
    group: usize,
    block: usize,
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

impl BlockResult {
    /// The statistics of two adjacent block ranges together (one tree node).
    fn merge(&self, o: &BlockResult) -> BlockResult {
        BlockResult {
            value: self.value.iter().zip(&o.value).map(|(a, b)| a.merge(b)).collect(),
            bias: self.bias.iter().zip(&o.bias).map(|(a, b)| a.merge(b)).collect(),
            diverged: self.diverged + o.diverged,
        }
    }

    /// Appends (group, lo, hi, this node) as little-endian f64s (counts are
    /// below 2⁵³, so exact); the bits of every mean and M2 travel unchanged.
    fn encode(&self, group: usize, lo: usize, hi: usize, out: &mut Vec<u8>) {
        let mut put = |x: f64| out.extend_from_slice(&x.to_le_bytes());
        put(group as f64);
        put(lo as f64);
        put(hi as f64);
        put(self.diverged as f64);
        for m in self.value.iter().chain(&self.bias) {
            put(m.count as f64);
            put(m.mean);
            put(m.m2);
        }
    }

    /// Reads nodes written by [`BlockResult::encode`].
    fn decode_all(bytes: &[u8], ncells: usize) -> Vec<(usize, usize, usize, BlockResult)> {
        let vals: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
        let width = 4 + 6 * ncells;
        vals.chunks_exact(width)
            .map(|v| {
                let cell = |k: usize| Moments { count: v[4 + 3 * k] as u64, mean: v[5 + 3 * k], m2: v[6 + 3 * k] };
                let r = BlockResult { value: (0..ncells).map(cell).collect(), bias: (ncells..2 * ncells).map(cell).collect(), diverged: v[3] as u64 };
                (v[0] as usize, v[1] as usize, v[2] as usize, r)
            })
            .collect()
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
                let group = (s * job.etas.len() + e) * 2 + (kind == Kind::Sde) as usize;
                for b in 0..nblocks {
                    let first = b * job.block;
                    let count = job.block.min(paths - first);
                    items.push(Item { group, block: b as usize, scheme: s, eta: e, kind, first, count, cost: per * count });
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
    /// None when `stop` interrupted the block (a partial block is never kept).
    fn run(&self, it: &Item, sga: &mut SgaWork, sde: &mut SdeWork, done: &AtomicU64, stop: &AtomicBool) -> Result<Option<BlockResult>, StudyError> {
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
                return Ok(None);
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
        Ok(Some(BlockResult { value, bias, diverged }))
    }
}

/// Runs the weak-error study: this rank's share of the blocks on `threads`
/// worker threads, then the fixed-tree reduction at rank 0. Rank 0 returns
/// the result, other ranks None. The result depends on neither the number of
/// ranks nor `threads`, nor on how often the run was stopped and resumed.
pub fn weak_error(job: &Job, threads: usize, comm: &dyn Comm, control: &Control, observer: &dyn Observer) -> Result<Option<WeakErrorResult>, StudyError> {
    let start = Instant::now();
    let game = job.game();
    let plan = plan(job, game.as_ref());
    if comm.rank() == 0 {
        for w in &job.warnings {
            observer.warning(w);
        }
    }
    // Blocks saved by any rank of an earlier run (every rank reads them all).
    let mut saved: HashMap<usize, BlockResult> = HashMap::new();
    let mut load_error = None;
    if let (Some(store), true) = (control.state, control.resume) {
        match store.load() {
            Ok(map) => {
                for (idx, bytes) in map {
                    if let Some((_, _, _, r)) = BlockResult::decode_all(&bytes, plan.ncells).pop() {
                        if (idx as usize) < plan.items.len() {
                            saved.insert(idx as usize, r);
                        }
                    }
                }
            }
            Err(e) => load_error = Some(StudyError::from(e)),
        }
    }
    if comm.max(load_error.is_some() as u64) == 1 {
        return Err(load_error.unwrap_or(StudyError::Elsewhere { code: 2 }));
    }
    // Balance the work still to do; each rank owns a contiguous range for the reduction.
    let costs: Vec<u64> = plan.items.iter().enumerate().map(|(i, it)| if saved.contains_key(&i) { 0 } else { it.cost }).collect();
    let mine = cluster::plan::partition(&costs, comm.size())[comm.rank()].clone();
    let (results, failure) = run_items(&plan, mine.clone(), threads, game.as_ref(), &saved, comm.rank(), control, if comm.rank() == 0 { observer } else { &Silent });

    // Agree on failure before anything else, so no rank waits for nodes that never come.
    let code = comm.max(failure.as_ref().map_or(0, |(_, e)| e.exit_code() as u64)) as u8;
    if code != 0 {
        if let (None, Some(store)) = (&failure, control.state) {
            // Another rank stopped: keep this rank's finished share for the resume.
            let _ = save_state(store, comm.rank(), &mine, results.iter().map(|r| r.as_ref()), &saved);
        }
        let mut message = Vec::new();
        if let Some((idx, e)) = &failure {
            message.extend_from_slice(&(*idx as u64).to_le_bytes());
            message.extend_from_slice(e.to_string().as_bytes());
        }
        return match comm.gather(&message) {
            Some(all) => {
                // The failure of the lowest item, as the single-process run would report it.
                let first = all.iter().filter(|m| m.len() >= 8).min_by_key(|m| u64::from_le_bytes(m[..8].try_into().unwrap())).expect("a rank failed");
                match failure {
                    Some((idx, e)) if idx as u64 == u64::from_le_bytes(first[..8].try_into().unwrap()) && comm.size() == 1 => Err(e),
                    _ => Err(StudyError::OnRank { code, message: String::from_utf8_lossy(&first[8..]).into_owned() }),
                }
            }
            None => Err(StudyError::Elsewhere { code }),
        };
    }

    // This rank's maximal tree nodes, group by group.
    let results: Vec<BlockResult> = results.into_iter().map(|r| r.expect("every block of this rank ran")).collect();
    let merge = |a: &BlockResult, b: &BlockResult| a.merge(b);
    let ngroups = job.schemes.len() * job.etas.len() * 2;
    let mut nblocks = vec![0usize; ngroups];
    for it in &plan.items {
        nblocks[it.group] += 1;
    }
    let mut bytes = Vec::new();
    let mut g0 = mine.start;
    while g0 < mine.end {
        let group = plan.items[g0].group;
        let mut g1 = g0;
        while g1 < mine.end && plan.items[g1].group == group {
            g1 += 1;
        }
        let owned = plan.items[g0].block..plan.items[g1 - 1].block + 1;
        for node in cluster::plan::owned_nodes(nblocks[group], owned.clone()) {
            let local = &results[node.start - owned.start + g0 - mine.start..node.end - owned.start + g0 - mine.start];
            cluster::plan::tree_fold(local, &merge).encode(group, node.start, node.end, &mut bytes);
        }
        g0 = g1;
    }
    let Some(all) = comm.gather(&bytes) else {
        return Ok(None);
    };
    let mut known: Vec<HashMap<(usize, usize), BlockResult>> = vec![HashMap::new(); ngroups];
    for part in &all {
        for (group, lo, hi, r) in BlockResult::decode_all(part, plan.ncells) {
            known[group].insert((lo, hi), r);
        }
    }
    let totals: Vec<BlockResult> = (0..ngroups)
        .map(|g| cluster::plan::eval_tree(nblocks[g], &known[g], &merge).expect("every block reached rank 0"))
        .collect();
    let chain_steps: u64 = plan
        .items
        .iter()
        .map(|it| it.count * job.steps[it.eta] as u64 * if it.kind == Kind::Sde { (plan.setups[it.scheme][it.eta].substeps << (plan.setups[it.scheme][it.eta].levels() - 1)) as u64 } else { 1 })
        .sum();
    Ok(Some(assemble(job, &totals, comm.size(), threads, start.elapsed(), chain_steps)))
}

type Failure = Option<(usize, StudyError)>;

/// Saves this rank's completed blocks (saved earlier or computed now).
fn save_state<'r>(store: &crate::io::StateStore, rank: usize, range: &std::ops::Range<usize>, completed: impl Iterator<Item = Option<&'r BlockResult>>, saved: &HashMap<usize, BlockResult>) -> Result<usize, StudyError> {
    let mut map = std::collections::BTreeMap::new();
    for (idx, r) in saved {
        let mut b = Vec::new();
        r.encode(0, 0, 0, &mut b);
        map.insert(*idx as u64, b);
    }
    for (k, slot) in completed.enumerate() {
        if let Some(r) = slot {
            let mut b = Vec::new();
            r.encode(0, 0, 0, &mut b);
            map.insert((range.start + k) as u64, b);
        }
    }
    let n = map.len();
    store.save(rank, &map).map_err(|e| StudyError::Save { dir: store.dir().display().to_string(), reason: e.to_string() })?;
    Ok(n)
}

/// Runs the items in `range` not already in `saved` on `threads` threads;
/// results indexed from range.start. Saves state every `control.interval`
/// and when stopped by `control.stop`.
#[allow(clippy::too_many_arguments)]
fn run_items(
    plan: &Plan,
    range: std::ops::Range<usize>,
    threads: usize,
    game: &dyn Game,
    saved: &HashMap<usize, BlockResult>,
    rank: usize,
    control: &Control,
    observer: &dyn Observer,
) -> (Vec<Option<BlockResult>>, Failure) {
    let slots: Vec<OnceLock<BlockResult>> = range.clone().map(|_| OnceLock::new()).collect();
    for idx in range.clone() {
        if let Some(r) = saved.get(&idx) {
            let _ = slots[idx - range.start].set(r.clone());
        }
    }
    let todo: Vec<usize> = range.clone().filter(|i| !saved.contains_key(i)).collect();
    let total: u64 = todo.iter().map(|&i| plan.items[i].cost).sum();
    // Costliest blocks first keeps threads busy to the end; order of execution never affects results.
    let mut order = todo;
    order.sort_by_key(|&i| std::cmp::Reverse(plan.items[i].cost));
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Failure> = Mutex::new(None);
    let threads = threads.max(1);
    let max_cols = plan.setups.iter().flatten().map(|s| s.noise.ncols(game)).max().unwrap_or(1);
    let max_levels = plan.setups.iter().flatten().map(|s| s.levels()).max().unwrap_or(1);
    let mut last_save = Instant::now();
    let mut save_error = None;
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut sga = SgaWork::new(game);
                let mut sde = SdeWork::new(game, max_cols, max_levels);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= order.len() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let idx = order[k];
                    match plan.run(&plan.items[idx], &mut sga, &mut sde, &done, &stop) {
                        Ok(Some(r)) => {
                            let _ = slots[idx - range.start].set(r);
                        }
                        Ok(None) => break,
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
            if control.stop.load(Ordering::Relaxed) {
                stop.store(true, Ordering::Relaxed);
            }
            let finished = slots.iter().all(|s| s.get().is_some()) || stop.load(Ordering::Relaxed);
            observer.progress(done.load(Ordering::Relaxed), total.max(1));
            if finished {
                break;
            }
            if let Some(store) = control.state {
                if last_save.elapsed() >= control.interval {
                    if let Err(e) = save_state(store, rank, &range, slots.iter().map(|s| s.get()), saved) {
                        save_error.get_or_insert(e);
                    }
                    last_save = Instant::now();
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut failure = failure.into_inner().unwrap();
    let complete = slots.iter().all(|s| s.get().is_some());
    if failure.is_none() && !complete && control.stop.load(Ordering::Relaxed) {
        // Stopped by a signal: keep what is complete.
        failure = Some((usize::MAX, match control.state {
            Some(store) => match save_state(store, rank, &range, slots.iter().map(|s| s.get()), saved) {
                Ok(n) => StudyError::Stopped { saved: n, total: plan.items.len(), dir: store.dir().display().to_string() },
                Err(e) => e,
            },
            None => StudyError::Stopped { saved: 0, total: plan.items.len(), dir: "(nowhere: no state folder)".into() },
        }));
    }
    if failure.is_none() {
        if let Some(e) = save_error {
            failure = Some((usize::MAX, e));
        }
    }
    (slots.into_iter().map(|s| s.into_inner()).collect(), failure)
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
    WeakErrorResult { schemes, z, ranks, threads, elapsed, chain_steps }
}
