//! The long-run study (paper §4, DESIGN §1 "Long run"): many long SGA chains
//! and SDE paths from one start, recorded every few η-steps, written block by
//! block through a [`SampleSink`] as they are produced. A block of paths is a
//! pure function of (seed, ensemble, path indices), so the stored samples are
//! bit-identical on any ranks × threads layout and after a resume: blocks
//! already in the sink are skipped, a block cut short is never written.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::cluster::Comm;
use crate::game::Game;
use crate::job::{Drift, Integrator, Job, LongRun, Scheme};
use crate::rng::{stream, Role};
use crate::sde::{NoiseFactor, SdeSetup, SdeWork};
use crate::sga::{in_bounds, sml_step_scheduled, step, Remark4, ScheduleState, SgaWork};

use super::observables::{ObsSetup, ObsWork, OBSERVABLES};
use super::runner::Coordinated;
use super::{agree_failure, Control, Observer, StudyError};

/// What produced a set of stored paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// SGA chains at constant η.
    Sga,
    /// SML chains under the Remark 4 scheduler (η stored per record).
    Scheduled,
    /// SDE paths (Euler–Maruyama at the job's step, or exact for `lq`).
    Sde,
}

/// One stored sample dataset: [path, record, coordinate].
#[derive(Clone, Debug, PartialEq)]
pub struct SampleKind {
    /// Dataset name, e.g. "sga_alt", "sde_alt", "sde_alt_half".
    pub name: String,
    pub source: Source,
    pub scheme: Scheme,
    /// The drift whose generator identities are checked on these samples
    /// (for SGA chains: the SDE that approximates the scheme).
    pub drift: Drift,
    /// The time step of the dynamics: η for SGA, η/m (or η/2m) for the SDE, η for exact.
    pub step: f64,
    /// Number of paths.
    pub paths: u64,
    /// Whether the per-sample FDR terms are stored.
    pub observed: bool,
}

/// A group of paths simulated together: an SGA ensemble, or an SDE ensemble
/// whose coupled levels (step h and h/2) give one or two kinds.
struct Ensemble {
    source: Source,
    scheme_index: usize,
    kinds: Vec<usize>,
    setup: Option<SdeSetup>,
}

/// Records per write: a path's records go out in pieces of this many (also
/// the HDF5 chunk length), so memory does not grow with the horizon.
pub const CHUNK_RECORDS: usize = 1024;

/// Receives one block of one kind, piece by piece, and publishes it only
/// when complete (dropping it unfinished leaves nothing behind).
pub trait BlockWriter: Send {
    /// Records `first..first + n` of path `path` (block-relative): u [n, d],
    /// the FDR terms [n, terms] (empty when the kind has none) and η [n]
    /// (scheduled chains only, else empty).
    fn write(&mut self, path: usize, first: usize, u: &[f64], obs: &[f64], eta: &[f64]) -> Result<(), String>;
    /// Publishes the block (atomically: all or nothing).
    fn finish(self: Box<Self>) -> Result<(), String>;
}

/// Where blocks of samples go (the HDF5 sample store in the CLI).
pub trait SampleSink: Sync {
    /// Whether block `block` of `kind` is already stored by this study
    /// (an error for a block stored by another study).
    fn has(&self, kind: &SampleKind, block: u64) -> Result<bool, String>;
    /// Where blocks go (for messages).
    fn location(&self) -> String;
    /// Starts block `block` of `kind` with `paths` paths.
    fn open(&self, kind: &SampleKind, block: u64, paths: usize) -> Result<Box<dyn BlockWriter>, String>;
}

/// One level's pending records of the current path and its writer.
struct LevelOut {
    writer: Box<dyn BlockWriter>,
    u: Vec<f64>,
    obs: Vec<f64>,
    eta: Vec<f64>,
    error: Option<String>,
}

/// The long-run plan: kinds, ensembles and the fixed record grid.
pub struct LongRunPlan<'a> {
    pub job: &'a Job,
    pub lr: &'a LongRun,
    pub game: &'a dyn Game,
    pub kinds: Vec<SampleKind>,
    ensembles: Vec<Ensemble>,
    factor: NoiseFactor,
    /// Steps after which records 1.. are taken (record 0 is the start).
    record_steps: Vec<usize>,
}

/// What a finished (or already complete) long run reports.
#[derive(Clone, Debug)]
pub struct LongRunSummary {
    pub kinds: Vec<SampleKind>,
    /// Blocks per kind.
    pub blocks: Vec<u64>,
    /// η-steps simulated now over all ranks (SDE steps counted per η).
    pub chain_steps_run: u64,
    pub elapsed: Duration,
}

/// The kind of SGA chains of `scheme`.
fn sga_kind(scheme: Scheme) -> String {
    format!("sga_{}", scheme.name())
}

/// The kind of SML chains under the Remark 4 scheduler.
const SCHEDULED_KIND: &str = "sga_sml_scheduled";

/// The kind of SDE paths for `scheme` at level 0 (the job's step) or 1 (half of it).
fn sde_kind(scheme: Scheme, level: usize) -> String {
    format!("sde_{}{}", scheme.name(), if level == 0 { "" } else { "_half" })
}

/// Every kind name a long-run study of any job can store: the folders of the
/// sample store that gansde owns.
pub fn all_kind_names() -> Vec<String> {
    let mut names = vec![SCHEDULED_KIND.to_string()];
    for scheme in [Scheme::Alt, Scheme::Sml] {
        names.extend([sga_kind(scheme), sde_kind(scheme, 0), sde_kind(scheme, 1)]);
    }
    names
}

impl<'a> LongRunPlan<'a> {
    /// The plan for `job` (which must have a `[long_run]` table).
    pub fn new(job: &'a Job, game: &'a dyn Game) -> Self {
        let lr = job.long_run.as_ref().expect("a long-run job");
        let eta = lr.eta;
        let mut kinds = Vec::new();
        let mut ensembles = Vec::new();
        for (si, &scheme) in job.schemes.iter().enumerate() {
            let drift = job.sde.drift_for(scheme);
            kinds.push(SampleKind { name: sga_kind(scheme), source: Source::Sga, scheme, drift, step: eta, paths: lr.chains, observed: true });
            ensembles.push(Ensemble { source: Source::Sga, scheme_index: si, kinds: vec![kinds.len() - 1], setup: None });
            if scheme == Scheme::Sml && lr.scheduler.is_some() {
                let name = SCHEDULED_KIND.to_string();
                kinds.push(SampleKind { name, source: Source::Scheduled, scheme, drift, step: eta, paths: lr.chains, observed: false });
                ensembles.push(Ensemble { source: Source::Scheduled, scheme_index: si, kinds: vec![kinds.len() - 1], setup: None });
            }
        }
        for (si, &scheme) in job.schemes.iter().enumerate() {
            let drift = job.sde.drift_for(scheme);
            let m = job.sde.substeps_for(eta);
            let mut setup = SdeSetup::new(game, drift, job.sde.noise, job.sde.integrator, eta, job.batch, m, &job.init);
            setup.single_level = !lr.half_step;
            let h = if job.sde.integrator == Integrator::Exact { eta } else { eta / m as f64 };
            let mut ks = Vec::new();
            for level in 0..setup.levels() {
                let name = sde_kind(scheme, level);
                kinds.push(SampleKind { name, source: Source::Sde, scheme, drift, step: h / (1 << level) as f64, paths: lr.sde_paths, observed: true });
                ks.push(kinds.len() - 1);
            }
            ensembles.push(Ensemble { source: Source::Sde, scheme_index: si, kinds: ks, setup: Some(setup) });
        }
        let factor = NoiseFactor::new(game, job.sde.noise, &job.init);
        let record_steps = (1..lr.records).map(|r| r * lr.record_every).collect();
        LongRunPlan { job, lr, game, kinds, ensembles, factor, record_steps }
    }

    /// Blocks of a kind.
    pub fn blocks(&self, kind: usize) -> u64 {
        self.kinds[kind].paths.div_ceil(self.lr.block)
    }

    /// Work items (ensemble, block) in a fixed order.
    fn items(&self) -> Vec<(usize, u64)> {
        let mut items = Vec::new();
        for (e, ens) in self.ensembles.iter().enumerate() {
            for b in 0..self.blocks(ens.kinds[0]) {
                items.push((e, b));
            }
        }
        items
    }

    /// Cost of one path of an ensemble in work units (drift evaluations per η, times steps).
    fn path_cost(&self, e: usize) -> u64 {
        let per = self.ensembles[e].setup.as_ref().map_or(1, |s| s.cost_per_step()) as u64;
        per * self.lr.steps as u64
    }

    /// Whether the per-sample terms are evaluated at record r.
    fn observe_at(&self, r: usize) -> bool {
        let first = self.lr.first_stationary();
        r >= first && (r - first) % self.lr.observe_every == 0
    }

    /// Simulates block `b` of ensemble `e`; None when `stop` interrupted it.
    fn run_block(&self, e: usize, b: u64, w: &mut Work, sink: &dyn SampleSink, done: &AtomicU64, stop: &AtomicBool) -> Result<bool, StudyError> {
        let (job, lr, game) = (self.job, self.lr, self.game);
        let ens = &self.ensembles[e];
        let kind0 = &self.kinds[ens.kinds[0]];
        let first = b * lr.block;
        let n = (kind0.paths - first).min(lr.block) as usize;
        let (d, rec) = (game.dim(), lr.records);
        let nk = OBSERVABLES.len();
        let ch = CHUNK_RECORDS.min(rec);
        let mut out = Vec::new();
        for &k in &ens.kinds {
            let kind = &self.kinds[k];
            out.push(LevelOut {
                writer: sink.open(kind, b, n).map_err(|reason| StudyError::Write { dir: sink.location(), reason })?,
                u: vec![0.0; ch * d],
                obs: if kind.observed { vec![f64::NAN; ch * nk] } else { Vec::new() },
                eta: if kind.source == Source::Scheduled { vec![0.0; ch] } else { Vec::new() },
                error: None,
            });
        }
        let si = ens.scheme_index as u8;
        let cost = self.path_cost(e);
        for p in 0..n {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let chain = first + p as u64;
            // Hutchinson probes have their own stream, so they never shift the dynamics' draws.
            let mut probes = stream(job.seed, 0, Role::Data(8 + e as u8), chain);
            let obs_setup = ObsSetup { game, drift: kind0.drift, eta: lr.eta, noise: job.sde.noise, factor: &self.factor, trace: lr.trace };
            let mut keep = |level: usize, r: usize, u: &[f64], eta: f64, w_obs: &mut ObsWork, probes: &mut rand_pcg::Pcg64| {
                let o = &mut out[level];
                let i = r % ch;
                o.u[i * d..(i + 1) * d].copy_from_slice(u);
                if !o.eta.is_empty() {
                    o.eta[i] = eta;
                }
                if !o.obs.is_empty() {
                    let slot = &mut o.obs[i * nk..(i + 1) * nk];
                    if self.observe_at(r) {
                        obs_setup.observe(u, probes, w_obs, slot);
                    } else {
                        slot.fill(f64::NAN);
                    }
                }
                if (i + 1 == ch || r + 1 == rec) && o.error.is_none() {
                    let n = i + 1;
                    let res = o.writer.write(
                        p,
                        r + 1 - n,
                        &o.u[..n * d],
                        if o.obs.is_empty() { &[] } else { &o.obs[..n * nk] },
                        if o.eta.is_empty() { &[] } else { &o.eta[..n] },
                    );
                    o.error = res.err();
                }
            };
            let diverged = match ens.source {
                Source::Sga | Source::Scheduled => {
                    let scheduled = ens.source == Source::Scheduled;
                    let role = if scheduled { Role::Sga(8 + si) } else { Role::Sga(si) };
                    let mut rng = stream(job.seed, 0, role, chain);
                    w.sga.u.copy_from_slice(&job.init);
                    let mut eta = lr.eta;
                    let rule = w.rule;
                    w.schedule.reset();
                    let mut bad = None;
                    keep(0, 0, &job.init, eta, &mut w.obs, &mut probes);
                    for s in 1..=lr.steps {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(false);
                        }
                        if scheduled {
                            sml_step_scheduled(game, &mut eta, job.batch, &mut rng, &mut w.sga, &rule, &mut w.schedule);
                        } else {
                            step(game, kind0.scheme, eta, job.batch, &mut rng, &mut w.sga);
                        }
                        if !in_bounds(&w.sga.u, job.divergence.bound) {
                            bad = Some(s);
                            break;
                        }
                        if s % lr.record_every == 0 {
                            let r = s / lr.record_every;
                            keep(0, r, &w.sga.u, eta, &mut w.obs, &mut probes);
                        }
                    }
                    bad
                }
                Source::Sde => {
                    let setup = ens.setup.as_ref().expect("SDE ensembles have a setup");
                    let mut rng = stream(job.seed, 0, Role::Sde(si), chain);
                    for level in 0..ens.kinds.len() {
                        keep(level, 0, &job.init, lr.eta, &mut w.obs, &mut probes);
                    }
                    let Work { sde, obs, .. } = w;
                    let res = setup.run_path(game, &job.init, lr.steps, &self.record_steps, job.divergence.bound, &mut rng, sde, stop, |r, level, u| {
                        keep(level, r + 1, u, lr.eta, obs, &mut probes)
                    });
                    match res {
                        Ok(true) => None,
                        Ok(false) => return Ok(false),
                        Err(dv) => Some(dv.step),
                    }
                }
            };
            if let Some(step) = diverged {
                let kind = match ens.source {
                    Source::Sde => format!("SDE path for {} ({} drift)", kind0.scheme.name(), kind0.drift.name()),
                    Source::Scheduled => "scheduled SML chain".into(),
                    Source::Sga => format!("SGA ({})", kind0.scheme.name()),
                };
                return Err(StudyError::Diverged { kind, chain, eta: lr.eta, step, steps: lr.steps, bound: job.divergence.bound, may_count: false });
            }
            if let Some(reason) = out.iter_mut().find_map(|o| o.error.take()) {
                return Err(StudyError::Write { dir: sink.location(), reason });
            }
            done.fetch_add(cost, Ordering::Relaxed);
        }
        for o in out {
            o.writer.finish().map_err(|reason| StudyError::Write { dir: sink.location(), reason })?;
        }
        Ok(true)
    }
}

/// Per-thread buffers.
struct Work {
    sga: SgaWork,
    sde: SdeWork,
    obs: ObsWork,
    rule: Remark4,
    schedule: ScheduleState,
}

/// Runs the long-run study: every rank simulates the blocks i with
/// i ≡ rank (mod ranks) that the sink does not hold yet and puts them there.
/// Returns None on ranks other than 0.
pub fn long_run(
    job: &Job,
    threads: usize,
    comm: &dyn Comm,
    control: &Control,
    observer: &dyn Observer,
    sink: &dyn SampleSink,
) -> Result<Option<LongRunSummary>, StudyError> {
    let start = Instant::now();
    let game = job.game();
    let plan = LongRunPlan::new(job, game.as_ref());
    let lr = plan.lr;
    let items = plan.items();
    // Which blocks are stored already (a resume); a foreign block is bad input.
    let mut pending = Vec::new();
    let mut check = Ok(());
    for (i, &(e, b)) in items.iter().enumerate() {
        let mut all = true;
        for &k in &plan.ensembles[e].kinds {
            match sink.has(&plan.kinds[k], b) {
                Ok(h) => all &= h,
                Err(m) => {
                    check = Err(m);
                    break;
                }
            }
        }
        if !all {
            pending.push(i);
        }
    }
    if let Err(m) = check {
        let failure = Some((0, StudyError::Samples(m)));
        return Err(agree_failure(comm, failure, 2));
    }
    if !control.resume && pending.len() < items.len() {
        let failure =
            Some((0, StudyError::Samples("the sample store already holds blocks of this study; pass --resume to continue or --force to start over".into())));
        return Err(agree_failure(comm, failure, 2));
    }
    let paths_in = |i: usize| (plan.kinds[plan.ensembles[items[i].0].kinds[0]].paths - items[i].1 * lr.block).min(lr.block);
    let total: u64 = pending.iter().map(|&i| plan.path_cost(items[i].0) * paths_in(i)).sum();
    let mine: Vec<usize> = pending.iter().copied().filter(|&i| i % comm.size() == comm.rank()).collect();
    // The display shows chain-steps/s; its fraction of work done is cost-weighted.
    observer.round(pending.iter().map(|&i| lr.steps as u64 * paths_in(i)).sum());
    let slots: Vec<OnceLock<()>> = mine.iter().map(|_| OnceLock::new()).collect();
    let order: Vec<usize> = (0..mine.len()).collect();
    let run = Coordinated { threads, control, observer, comm, round_total: total };
    let rule0 = lr.scheduler.map(|s| Remark4::new(s.epsilon, s.delta, s.window, job.batch).expect("validated with the job"));
    let make_work = || {
        let rule = rule0.unwrap_or_else(|| Remark4::new(1.0, 0.5, 1, 2).expect("a valid placeholder rule"));
        Work {
            sga: SgaWork::new(game.as_ref()),
            sde: SdeWork::new(game.as_ref(), plan.factor.ncols(game.as_ref()), 2),
            obs: ObsWork::new(game.as_ref(), &plan.factor),
            rule,
            schedule: ScheduleState::new(&rule),
        }
    };
    let compute = |k: usize, w: &mut Work, done: &AtomicU64, stop: &AtomicBool| -> Result<Option<()>, StudyError> {
        let (e, b) = items[mine[k]];
        Ok(plan.run_block(e, b, w, sink, done, stop)?.then_some(()))
    };
    let (slots, mut failure) = run.run(slots, &order, &make_work, &compute, &mut |_| {});
    let complete = slots.iter().all(|s| s.get().is_some());
    failure = failure.map(|(k, e)| (if k == usize::MAX { k } else { mine[k] }, e));
    if failure.is_none() && !complete && control.stop.load(Ordering::Relaxed) {
        let saved = slots.iter().filter(|s| s.get().is_some()).count();
        failure = Some((usize::MAX, StudyError::Stopped { saved, dir: sink.location() }));
    }
    let code = comm.max(failure.as_ref().map_or(0, |(_, e)| e.exit_code() as u64)) as u8;
    if code != 0 {
        if matches!(failure, Some((_, StudyError::Stopped { .. }))) && comm.size() == 1 {
            return Err(failure.unwrap().1);
        }
        return Err(agree_failure(comm, failure, code));
    }
    let run_units: u64 = mine.iter().map(|&i| lr.steps as u64 * paths_in(i)).sum();
    let steps_run = comm.gather(&run_units.to_le_bytes()).map(|all| all.iter().map(|b| u64::from_le_bytes(b[..8].try_into().unwrap())).sum());
    Ok(steps_run.map(|chain_steps_run| LongRunSummary {
        blocks: (0..plan.kinds.len()).map(|k| plan.blocks(k)).collect(),
        kinds: plan.kinds.clone(),
        chain_steps_run,
        elapsed: start.elapsed(),
    }))
}

/// A writer that keeps nothing (the pilot of [`estimate_long_run`]).
struct Discard;
impl BlockWriter for Discard {
    fn write(&mut self, _: usize, _: usize, _: &[f64], _: &[f64], _: &[f64]) -> Result<(), String> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}
impl SampleSink for Discard {
    fn has(&self, _: &SampleKind, _: u64) -> Result<bool, String> {
        Ok(false)
    }
    fn location(&self) -> String {
        "(pilot: nowhere)".into()
    }
    fn open(&self, _: &SampleKind, _: u64, _: usize) -> Result<Box<dyn BlockWriter>, String> {
        Ok(Box::new(Discard))
    }
}

/// What a long-run study will cost on a layout (`gansde check`).
#[derive(Clone, Debug)]
pub struct LongRunEstimate {
    /// η-steps of all chains and paths (an SDE path counts once per η whatever its substeps).
    pub chain_steps: u64,
    /// Sample scalars stored (u, FDR terms, η).
    pub stored_scalars: u64,
    /// Uncompressed bytes of the sample files.
    pub sample_bytes: u64,
    /// Block files.
    pub block_files: u64,
    /// Estimated wall time: pilot time per path × paths / (ranks × threads), at least the longest block.
    pub wall_seconds: f64,
    pub pilot_seconds: f64,
    /// Paths timed per ensemble.
    pub pilot_paths: u64,
}

/// Times `pilot` paths of every ensemble (written nowhere) and scales them to the study.
pub fn estimate_long_run(job: &Job, ranks: usize, threads: usize, pilot: u64) -> Result<LongRunEstimate, StudyError> {
    let lr = job.long_run.as_ref().expect("a long-run job");
    let game = job.game();
    let plan = LongRunPlan::new(job, game.as_ref());
    let mut small = job.clone();
    if let Some(l) = small.long_run.as_mut() {
        l.block = pilot;
        l.chains = l.chains.min(pilot).max(1);
        l.sde_paths = l.sde_paths.min(pilot).max(1);
    }
    let pilot_plan = LongRunPlan::new(&small, game.as_ref());
    let rule = lr
        .scheduler
        .map(|s| Remark4::new(s.epsilon, s.delta, s.window, job.batch).expect("validated"))
        .unwrap_or_else(|| Remark4::new(1.0, 0.5, 1, 2).expect("a valid rule"));
    let mut w = Work {
        sga: SgaWork::new(game.as_ref()),
        sde: SdeWork::new(game.as_ref(), plan.factor.ncols(game.as_ref()), 2),
        obs: ObsWork::new(game.as_ref(), &plan.factor),
        rule,
        schedule: ScheduleState::new(&rule),
    };
    let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
    let start = Instant::now();
    let (mut seconds, mut longest_block) = (0.0, 0.0f64);
    for (e, ens) in pilot_plan.ensembles.iter().enumerate() {
        let paths = pilot_plan.kinds[ens.kinds[0]].paths;
        let t = Instant::now();
        pilot_plan.run_block(e, 0, &mut w, &Discard, &done, &stop)?;
        let per_path = t.elapsed().as_secs_f64() / paths as f64;
        let all = plan.kinds[plan.ensembles[e].kinds[0]].paths;
        seconds += per_path * all as f64;
        // A block is the unit of work: no layout finishes faster than its longest block.
        longest_block = longest_block.max(per_path * all.min(lr.block) as f64);
    }
    let d = game.dim() as u64;
    let mut stored = 0;
    for k in &plan.kinds {
        let per = d + if k.observed { OBSERVABLES.len() as u64 } else { 0 } + if k.source == Source::Scheduled { 1 } else { 0 };
        stored += k.paths * lr.records as u64 * per;
    }
    Ok(LongRunEstimate {
        chain_steps: plan.ensembles.iter().map(|e| plan.kinds[e.kinds[0]].paths * lr.steps as u64).sum(),
        stored_scalars: stored,
        sample_bytes: 8 * stored,
        block_files: (0..plan.kinds.len()).map(|k| plan.blocks(k)).sum(),
        wall_seconds: (seconds / (ranks * threads).max(1) as f64).max(longest_block),
        pilot_seconds: start.elapsed().as_secs_f64(),
        pilot_paths: pilot,
    })
}
