//! Blocks of chains: the unit of scheduling, saving and reduction. A block
//! is named by its group (scheme, η, SGA or SDE) and index; its chains are
//! run in index order, so its statistics do not depend on who ran it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::game::Game;
use crate::job::{Integrator, Job};
use crate::rng::{stream, Role};
use crate::sde::{SdeSetup, SdeWork};
use crate::sga::{run_chain, SgaWork};
use crate::stats::Moments;

use super::StudyError;

/// SGA or SDE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Sga,
    Sde,
}

/// One unit of scheduled work: a block of chains.
#[derive(Clone, Copy, Debug)]
pub(super) struct Item {
    /// (scheme, η, kind) group: blocks of one group are merged together.
    pub(super) group: usize,
    pub(super) block: usize,
    pub(super) scheme: usize,
    pub(super) eta: usize,
    pub(super) kind: Kind,
    pub(super) first: u64,
    pub(super) count: u64,
    pub(super) cost: u64,
}

impl Item {
    /// The key of this block in saved state.
    pub(super) fn key(&self) -> u64 {
        ((self.group as u64) << 32) | self.block as u64
    }
}

/// Statistics of one block: per (record, f) cell, the SGA values, or the SDE
/// estimator and its bias difference; and the diverged chains skipped.
#[derive(Clone, Debug)]
pub(super) struct BlockResult {
    pub(super) value: Vec<Moments>,
    pub(super) bias: Vec<Moments>,
    pub(super) diverged: u64,
}

impl BlockResult {
    /// No chains yet (the identity of `merge`).
    pub(super) fn empty(ncells: usize) -> Self {
        BlockResult { value: vec![Moments::default(); ncells], bias: vec![Moments::default(); ncells], diverged: 0 }
    }

    /// The statistics of two adjacent block ranges together (one tree node).
    pub(super) fn merge(&self, o: &BlockResult) -> BlockResult {
        BlockResult {
            value: self.value.iter().zip(&o.value).map(|(a, b)| a.merge(b)).collect(),
            bias: self.bias.iter().zip(&o.bias).map(|(a, b)| a.merge(b)).collect(),
            diverged: self.diverged + o.diverged,
        }
    }

    /// Appends (group, lo, hi, this node) as little-endian f64s (counts are
    /// below 2⁵³, so exact); the bits of every mean and M2 travel unchanged.
    pub(super) fn encode(&self, group: usize, lo: usize, hi: usize, out: &mut Vec<u8>) {
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
    pub(super) fn decode_all(bytes: &[u8], ncells: usize) -> Vec<(usize, usize, usize, BlockResult)> {
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

/// Everything fixed for a study: the game, the SDE setups per (scheme, η)
/// and the shape of the per-block statistics.
pub(super) struct Plan<'a> {
    pub(super) job: &'a Job,
    pub(super) game: &'a dyn Game,
    pub(super) setups: Vec<Vec<SdeSetup>>,
    pub(super) ncells: usize,
    /// Blocks are always full (precision targets grow studies by whole blocks).
    pub(super) whole_blocks: bool,
    /// Measured nanoseconds per chain of each group (empty: use the model).
    measured: Vec<u64>,
}

impl<'a> Plan<'a> {
    /// Precomputes the SDE setups (noise factors, exact transitions).
    pub(super) fn new(job: &'a Job, game: &'a dyn Game) -> Self {
        let setups = job
            .schemes
            .iter()
            .map(|&s| {
                job.etas
                    .iter()
                    .map(|&eta| {
                        SdeSetup::new(game, job.sde.drift_for(s), job.sde.noise, job.sde.integrator, eta, job.batch, job.sde.substeps_for(eta), &job.init)
                    })
                    .collect()
            })
            .collect();
        Plan { job, game, setups, ncells: job.record_times.len() * job.functions.len(), whole_blocks: job.target.is_some(), measured: Vec::new() }
    }

    /// The number of (scheme, η, kind) groups.
    pub(super) fn ngroups(&self) -> usize {
        self.job.schemes.len() * self.job.etas.len() * 2
    }

    /// The group of (scheme, η, kind).
    pub(super) fn group(&self, scheme: usize, eta: usize, kind: Kind) -> usize {
        (scheme * self.job.etas.len() + eta) * 2 + (kind == Kind::Sde) as usize
    }

    /// (scheme, η, kind) of a group.
    fn parts(&self, group: usize) -> (usize, usize, Kind) {
        let kind = if group % 2 == 1 { Kind::Sde } else { Kind::Sga };
        let se = group / 2;
        (se / self.job.etas.len(), se % self.job.etas.len(), kind)
    }

    /// The paths a group asks for at the start.
    pub(super) fn initial_blocks(&self, group: usize) -> usize {
        let paths = match self.parts(group).2 {
            Kind::Sga => self.job.paths,
            Kind::Sde => self.job.sde_paths,
        };
        paths.div_ceil(self.job.block) as usize
    }

    /// Cost of one chain of the group (planning weight only): measured
    /// nanoseconds when calibrated, else η-steps times drift evaluations.
    fn chain_cost(&self, group: usize, scheme: usize, eta: usize, kind: Kind) -> u64 {
        if let Some(c) = self.measured.get(group) {
            return (*c).max(1);
        }
        let steps = self.job.steps[eta] as u64;
        match kind {
            Kind::Sga => steps,
            Kind::Sde => steps * self.setups[scheme][eta].cost_per_step() as u64,
        }
    }

    /// Per-thread work space big enough for every (scheme, η) of the study.
    pub(super) fn work(&self) -> (SgaWork, SdeWork) {
        let max_cols = self.setups.iter().flatten().map(|s| s.noise.ncols(self.game)).max().unwrap_or(1);
        let max_levels = self.setups.iter().flatten().map(|s| s.levels()).max().unwrap_or(1);
        (SgaWork::new(self.game), SdeWork::new(self.game, max_cols, max_levels))
    }

    /// Times `chains` chains of every group on this thread (results
    /// discarded) and returns nanoseconds per chain, for balancing ranks
    /// and for `gansde check`.
    pub(super) fn pilot(&self, chains: u64) -> Result<Vec<u64>, StudyError> {
        let (mut sga, mut sde) = self.work();
        let (sga, sde) = (&mut sga, &mut sde);
        let (done, stop) = (AtomicU64::new(0), AtomicBool::new(false));
        (0..self.ngroups())
            .map(|g| {
                let mut it = self.item(g, 0);
                it.count = chains.min(it.count).max(1);
                let t = std::time::Instant::now();
                self.run(&it, sga, sde, &done, &stop)?;
                Ok((t.elapsed().as_nanos() as u64 / it.count).max(1))
            })
            .collect()
    }

    /// Uses measured per-chain costs from now on.
    pub(super) fn calibrate(&mut self, ns_per_chain: Vec<u64>) {
        self.measured = ns_per_chain;
    }

    /// Block `b` of a group.
    pub(super) fn item(&self, group: usize, b: usize) -> Item {
        let (scheme, eta, kind) = self.parts(group);
        let paths = match kind {
            Kind::Sga => self.job.paths,
            Kind::Sde => self.job.sde_paths,
        };
        let first = b as u64 * self.job.block;
        let count = if self.whole_blocks { self.job.block } else { self.job.block.min(paths - first) };
        Item { group, block: b, scheme, eta, kind, first, count, cost: self.chain_cost(group, scheme, eta, kind) * count }
    }

    /// The blocks `ranges[g]` of every group g, group by group.
    pub(super) fn items(&self, ranges: &[std::ops::Range<usize>]) -> Vec<Item> {
        ranges.iter().enumerate().flat_map(|(g, r)| r.clone().map(move |b| self.item(g, b))).collect()
    }

    /// Finest-level η-steps of an item (for the chain-step count).
    pub(super) fn chain_steps(&self, it: &Item) -> u64 {
        let per = match it.kind {
            Kind::Sga => 1,
            Kind::Sde => (self.setups[it.scheme][it.eta].substeps << (self.setups[it.scheme][it.eta].levels() - 1)) as u64,
        };
        it.count * self.job.steps[it.eta] as u64 * per
    }
}

impl Plan<'_> {
    fn record_steps(&self, e: usize) -> Vec<usize> {
        (0..self.job.record_times.len()).map(|r| self.job.record_step(e, r)).collect()
    }

    /// Runs one block; chains are visited in index order so the block's
    /// statistics do not depend on who ran it.
    /// None when `stop` interrupted the block (a partial block is never kept).
    pub(super) fn run(&self, it: &Item, sga: &mut SgaWork, sde: &mut SdeWork, done: &AtomicU64, stop: &AtomicBool) -> Result<Option<BlockResult>, StudyError> {
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
                    run_chain(game, scheme, eta, job.batch, &job.init, steps, &rec, job.divergence.bound, &mut rng, sga, stop, |r, u| {
                        for (fi, f) in job.functions.iter().enumerate() {
                            vals[r * nf + fi] = f.eval(u, game);
                        }
                    })
                }
                Kind::Sde => {
                    let mut rng = stream(job.seed, it.eta, Role::Sde(it.scheme as u8), c);
                    setup.run_path(game, &job.init, steps, &rec, job.divergence.bound, &mut rng, sde, stop, |r, l, u| {
                        for (fi, f) in job.functions.iter().enumerate() {
                            vals[(r * nf + fi) * nl + l] = f.eval(u, game);
                        }
                    })
                }
            };
            match outcome {
                Ok(false) => return Ok(None),
                Ok(true) => {
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
                            Kind::Sde => format!("SDE path for {} ({} drift)", scheme.name(), setup.drift.name()),
                        },
                        chain: c,
                        eta,
                        step: d.step,
                        steps,
                        bound: job.divergence.bound,
                        may_count: true,
                    });
                }
                Err(_) => diverged += 1,
            }
            done.fetch_add(per_chain, Ordering::Relaxed);
        }
        Ok(Some(BlockResult { value, bias, diverged }))
    }
}
