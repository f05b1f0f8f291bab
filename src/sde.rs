//! SDE approximations of SGA (DESIGN §1 "SDEs"): the drifts b0, b0 + η b1 and
//! b0 − (η/2)(∇b0) b0, the noise factor with independent θ and ω blocks, and
//! the integrators (Euler–Maruyama on coupled levels, Richardson, exact OU).

use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;

use crate::game::{Game, Scratch};
use crate::job::{Drift, Integrator, Noise};
use crate::linalg::{cholesky_psd, Mat, OuTransition};
use crate::rng::normal;
use crate::sga::{in_bounds, Divergence};

/// Per-thread buffers for drift and noise evaluation, allocated once.
pub struct SdeWork {
    g: Vec<f64>,
    dg: Vec<f64>,
    dg2: Vec<f64>,
    b0: Vec<f64>,
    v: Vec<f64>,
    tmp: Vec<f64>,
    mean_l: Vec<f64>,
    mean_r: Vec<f64>,
    acc: Vec<f64>,
    pub drift: Vec<f64>,
    pub noise: Vec<f64>,
    pub scratch: Scratch,
    /// The coupled level states.
    pub levels: Levels,
}

impl SdeWork {
    /// Buffers for `game` with `ncols` noise columns and `nlevels` coupled levels.
    pub fn new(game: &dyn Game, ncols: usize, nlevels: usize) -> Self {
        let d = game.dim();
        let z = || vec![0.0; d];
        SdeWork {
            g: z(),
            dg: z(),
            dg2: z(),
            b0: z(),
            v: z(),
            tmp: z(),
            mean_l: z(),
            mean_r: z(),
            acc: z(),
            drift: z(),
            noise: z(),
            scratch: game.scratch(),
            levels: Levels::new(d, ncols, nlevels),
        }
    }
}

impl SdeWork {
    /// Heap bytes held (for memory estimates).
    pub fn bytes(&self) -> usize {
        8 * (11 * self.g.len() + self.levels.states.iter().map(Vec::len).sum::<usize>() + self.levels.dw_len())
    }
}

/// The drift b(u) of the chosen SDE at learning rate η into `w.drift`.
pub fn drift(game: &dyn Game, kind: Drift, eta: f64, u: &[f64], w: &mut SdeWork) {
    game.full_grad(u, &mut w.g, &mut w.scratch);
    drift_from_grad(game, kind, eta, u, w);
}

/// The drift from the full gradient already in `w.g`:
/// b0 = (−g_θ, g_ω); (∇b0) b0 = Db0[b0]; (∇_ω g_θ) g_ω = Dg_θ[(0, g_ω)];
/// b1 = −½ (∇b0) b0 − ((∇_ω g_θ) g_ω ; 0)  (Theorem 1). The two JVPs share one
/// forward-mode pass.
pub fn drift_from_grad(game: &dyn Game, kind: Drift, eta: f64, u: &[f64], w: &mut SdeWork) {
    let dt = game.dim_theta();
    let d = u.len();
    for k in 0..d {
        w.b0[k] = if k < dt { -w.g[k] } else { w.g[k] };
    }
    match kind {
        Drift::FirstOrder => w.drift.copy_from_slice(&w.b0),
        Drift::Modified => {
            game.grad_jvp(u, &w.b0, &mut w.tmp, &mut w.dg, &mut w.scratch);
            for k in 0..d {
                let db0 = if k < dt { -w.dg[k] } else { w.dg[k] };
                w.drift[k] = w.b0[k] - 0.5 * eta * db0;
            }
        }
        Drift::SecondOrder => {
            for k in 0..d {
                w.v[k] = if k < dt { 0.0 } else { w.g[k] };
            }
            game.grad_jvp2(u, &w.b0, &w.v, &mut w.tmp, &mut w.dg, &mut w.dg2, &mut w.scratch);
            for k in 0..d {
                let db0 = if k < dt { -w.dg[k] } else { w.dg[k] };
                w.drift[k] = w.b0[k] - 0.5 * eta * db0;
                if k < dt {
                    w.drift[k] -= eta * w.dg2[k];
                }
            }
        }
    }
}

/// The diffusion factor F(u) with σσᵀ = (η/B) F Fᵀ, applied to increments.
#[derive(Clone, Debug)]
pub enum NoiseFactor {
    /// Block noise from per-sample gradients: N columns for θ (latent part of
    /// g_θ), then M (real part of g_ω) and N (latent part of g_ω) for ω, all
    /// independent, so F Fᵀ = blockdiag(Σ_θ, Σ_ω) with no cross term.
    Block,
    /// Full noise: N latent columns (−(ℓ_θ,i − ℓ̄_θ), ℓ_ω,i − ℓ̄_ω) and M real
    /// columns (0, r_j − r̄), so F Fᵀ = Cov(−g_θ^{IJ}, g_ω^{IJ}).
    Full,
    /// A d × d Cholesky factor of the constant F Fᵀ (games with constant noise).
    Constant(Mat),
}

impl NoiseFactor {
    /// The factor for `game` and noise kind, precomputed at u0 if the game's noise is constant.
    pub fn new(game: &dyn Game, noise: Noise, u0: &[f64]) -> Self {
        let general = match noise {
            Noise::Block => NoiseFactor::Block,
            Noise::Full => NoiseFactor::Full,
        };
        if game.constant_noise() {
            let cov = general.covariance(game, u0);
            NoiseFactor::Constant(cholesky_psd(&cov).expect("a covariance matrix is positive semi-definite"))
        } else {
            general
        }
    }

    /// The number of noise columns (Brownian components).
    pub fn ncols(&self, game: &dyn Game) -> usize {
        match self {
            NoiseFactor::Block => 2 * game.n_latent() + game.n_real(),
            NoiseFactor::Full => game.n_latent() + game.n_real(),
            NoiseFactor::Constant(l) => l.cols,
        }
    }

    /// Writes F(u)·dw into `w.noise` and the full gradient g(u) into `w.g`
    /// (the per-sample factors visit every sample gradient anyway, so the
    /// drift's gradient comes for free).
    pub fn apply(&self, game: &dyn Game, u: &[f64], dw: &[f64], w: &mut SdeWork) {
        let d = u.len();
        let dt = game.dim_theta();
        if let NoiseFactor::Constant(l) = self {
            game.full_grad(u, &mut w.g, &mut w.scratch);
            let out = &mut w.noise;
            for r in 0..d {
                let mut s = 0.0;
                for c in 0..=r {
                    s += l[(r, c)] * dw[c];
                }
                out[r] = s;
            }
            return;
        }
        let out = &mut w.noise;
        let (n, m) = (game.n_latent(), game.n_real());
        let (sn, sm) = ((n as f64).sqrt().recip(), (m as f64).sqrt().recip());
        out.iter_mut().for_each(|x| *x = 0.0);
        w.mean_l.iter_mut().for_each(|x| *x = 0.0);
        w.mean_r.iter_mut().for_each(|x| *x = 0.0);
        let full = matches!(self, NoiseFactor::Full);
        // Σ_i a_i (ℓ_i − ℓ̄) = Σ_i a_i ℓ_i − (Σ_i a_i) ℓ̄, one pass over the samples.
        let (mut sum_t, mut sum_w) = (0.0, 0.0);
        for i in 0..n {
            w.acc.iter_mut().for_each(|x| *x = 0.0);
            game.add_latent_grad(u, i, 1.0, &mut w.acc, &mut w.scratch);
            let (at, aw) = if full { (-dw[i], dw[i]) } else { (dw[i], dw[n + m + i]) };
            sum_t += at;
            sum_w += aw;
            for k in 0..d {
                w.mean_l[k] += w.acc[k];
                out[k] += if k < dt { at * w.acc[k] } else { aw * w.acc[k] };
            }
        }
        for k in 0..d {
            out[k] -= (if k < dt { sum_t } else { sum_w }) * w.mean_l[k] / n as f64;
            out[k] *= sn;
        }
        let mut sum_r = 0.0;
        for j in 0..m {
            w.acc.iter_mut().for_each(|x| *x = 0.0);
            game.add_real_grad(u, j, 1.0, &mut w.acc, &mut w.scratch);
            let a = dw[n + j];
            sum_r += a;
            for k in dt..d {
                w.mean_r[k] += w.acc[k];
                out[k] += sm * a * w.acc[k];
            }
        }
        for k in dt..d {
            out[k] -= sm * sum_r * w.mean_r[k] / m as f64;
        }
        for k in 0..d {
            w.g[k] = w.mean_l[k] / n as f64 + if k < dt { 0.0 } else { w.mean_r[k] / m as f64 };
        }
    }

    /// F(u) F(u)ᵀ, column by column (for tests and for the constant factor).
    pub fn covariance(&self, game: &dyn Game, u: &[f64]) -> Mat {
        let d = game.dim();
        let nc = self.ncols(game);
        let mut w = SdeWork::new(game, nc, 1);
        let mut f = Mat::zeros(d, nc);
        let mut e = vec![0.0; nc];
        for c in 0..nc {
            e.iter_mut().for_each(|x| *x = 0.0);
            e[c] = 1.0;
            self.apply(game, u, &e, &mut w);
            for r in 0..d {
                f[(r, c)] = w.noise[r];
            }
        }
        f.mul(&f.t())
    }
}

/// Everything fixed for one (scheme, η) SDE ensemble.
#[derive(Clone, Debug)]
pub struct SdeSetup {
    pub drift: Drift,
    pub eta: f64,
    /// σ scale √(η/B).
    pub sigma: f64,
    pub substeps: usize,
    pub integrator: Integrator,
    pub noise: NoiseFactor,
    /// Exact OU transition over one η with the Cholesky factor of its covariance.
    pub exact: Option<(OuTransition, Mat)>,
    /// Euler–Maruyama with a single level (step η/m only): long-run paths
    /// without the coupled half-step path.
    pub single_level: bool,
}

impl SdeSetup {
    /// Precomputes the noise factor (and the exact transition for `exact`).
    pub fn new(game: &dyn Game, drift_kind: Drift, noise: Noise, integrator: Integrator, eta: f64, batch: usize, substeps: usize, u0: &[f64]) -> Self {
        let factor = NoiseFactor::new(game, noise, u0);
        let sigma = (eta / batch as f64).sqrt();
        let exact = (integrator == Integrator::Exact).then(|| {
            // The drift is affine for `lq`: read K and k off evaluations at 0 and unit vectors.
            let d = game.dim();
            let mut w = SdeWork::new(game, 1, 1);
            let zero = vec![0.0; d];
            drift(game, drift_kind, eta, &zero, &mut w);
            let k0 = w.drift.clone();
            let mut km = Mat::zeros(d, d);
            for c in 0..d {
                let mut e = zero.clone();
                e[c] = 1.0;
                drift(game, drift_kind, eta, &e, &mut w);
                for r in 0..d {
                    km[(r, c)] = w.drift[r] - k0[r];
                }
            }
            let s = factor.covariance(game, u0).scale(sigma * sigma);
            let tr = OuTransition::new(&km, &k0, &s, eta);
            let l = cholesky_psd(&tr.q).expect("OU covariance is positive semi-definite");
            (tr, l)
        });
        SdeSetup { drift: drift_kind, eta, sigma, substeps, integrator, noise: factor, exact, single_level: false }
    }

    /// Coupled levels simulated: 3 (m, 2m, 4m substeps) for Richardson with
    /// its bias estimate, 2 (m, 2m) for Euler–Maruyama, 1 for exact.
    pub fn levels(&self) -> usize {
        match self.integrator {
            Integrator::Richardson => 3,
            Integrator::Euler if self.single_level => 1,
            Integrator::Euler => 2,
            Integrator::Exact => 1,
        }
    }

    /// Evaluations of the drift per η for one path (a cost measure for planning).
    pub fn cost_per_step(&self) -> usize {
        match self.integrator {
            Integrator::Richardson => 7 * self.substeps,
            Integrator::Euler if self.single_level => self.substeps,
            Integrator::Euler => 3 * self.substeps,
            Integrator::Exact => 1,
        }
    }

    /// Runs one path to `steps` η-steps, calling `record(r, level, u)` for every
    /// level after step `record_steps[r]`. `Ok(false)`: `stop` was raised and
    /// the path is incomplete.
    #[allow(clippy::too_many_arguments)]
    pub fn run_path<R: Rng>(
        &self,
        game: &dyn Game,
        init: &[f64],
        steps: usize,
        record_steps: &[usize],
        bound: f64,
        rng: &mut R,
        w: &mut SdeWork,
        stop: &AtomicBool,
        mut record: impl FnMut(usize, usize, &[f64]),
    ) -> Result<bool, Divergence> {
        let nl = self.levels();
        let mut levels = std::mem::take(&mut w.levels);
        levels.reset(init, nl);
        let sys = GameSde { game, setup: self };
        let mut next = 0;
        let mut outcome = Ok(true);
        'steps: for n in 1..=steps {
            // One SDE step of a large game can take milliseconds and a path minutes:
            // a requested stop must not wait for the path to end.
            if stop.load(Ordering::Relaxed) {
                outcome = Ok(false);
                break;
            }
            if let Some((tr, l)) = &self.exact {
                let u = &mut levels.states[0];
                let d = u.len();
                for k in 0..d {
                    w.v[k] = normal(rng);
                }
                for r in 0..d {
                    let mut s = tr.psi[r];
                    for c in 0..d {
                        s += tr.phi[(r, c)] * u[c] + l[(r, c)] * w.v[c];
                    }
                    w.tmp[r] = s;
                }
                u.copy_from_slice(&w.tmp);
            } else {
                levels.advance(&sys, self.eta, self.substeps, rng, w);
            }
            for l in 0..nl {
                if !in_bounds(&levels.states[l], bound) {
                    outcome = Err(Divergence { step: n });
                    break 'steps;
                }
            }
            while next < record_steps.len() && record_steps[next] == n {
                for l in 0..nl {
                    record(next, l, &levels.states[l]);
                }
                next += 1;
            }
        }
        w.levels = levels;
        outcome
    }
}

/// An Itô SDE dX = a(X) dt + B(X) dW with `ncols` Brownian components, as the
/// coupled-level integrator sees it: one Euler–Maruyama step.
pub trait SdeSystem {
    /// Per-thread buffers.
    type Work;
    /// The number of Brownian components.
    fn ncols(&self) -> usize;
    /// x ← x + h a(x) + B(x) dw, with a and B evaluated at the old x.
    fn em_step(&self, x: &mut [f64], h: f64, dw: &[f64], work: &mut Self::Work);
}

/// The SDE of a game: drift from the setup, diffusion √(η/B) F(u).
struct GameSde<'a> {
    game: &'a dyn Game,
    setup: &'a SdeSetup,
}

impl SdeSystem for GameSde<'_> {
    type Work = SdeWork;
    fn ncols(&self) -> usize {
        self.setup.noise.ncols(self.game)
    }
    #[inline]
    fn em_step(&self, u: &mut [f64], h: f64, dw: &[f64], w: &mut SdeWork) {
        self.setup.noise.apply(self.game, u, dw, w);
        drift_from_grad(self.game, self.setup.drift, self.setup.eta, u, w);
        let sigma = self.setup.sigma;
        for k in 0..u.len() {
            u[k] += h * w.drift[k] + sigma * w.noise[k];
        }
    }
}

/// States of one path at several coupled step sizes: level l uses substep
/// τ/(m·2^l); the finest level draws the Brownian increments and each coarser
/// level uses sums of pairs of the next finer level's increments, so all
/// levels follow one Brownian path (the coupling that makes Richardson
/// extrapolation and the bias estimate R_m − R_2m low-variance).
#[derive(Clone, Debug, Default)]
pub struct Levels {
    /// Level states, coarsest first.
    pub states: Vec<Vec<f64>>,
    dw: Vec<f64>,
    nlevels: usize,
}

impl Levels {
    /// Room for up to `nlevels` levels of a `dim`-dimensional SDE with `ncols` Brownian components.
    pub fn new(dim: usize, ncols: usize, nlevels: usize) -> Self {
        Levels { states: vec![vec![0.0; dim]; nlevels], dw: vec![0.0; ncols << (nlevels - 1)], nlevels }
    }

    /// Length of the Brownian-increment buffer.
    pub fn dw_len(&self) -> usize {
        self.dw.len()
    }

    /// Sets the first `nlevels` levels to x0.
    pub fn reset(&mut self, x0: &[f64], nlevels: usize) {
        assert!(nlevels <= self.states.len());
        self.nlevels = nlevels;
        for s in &mut self.states[..nlevels] {
            s.copy_from_slice(x0);
        }
    }

    /// Advances every level by time τ in m coarse substeps; each coarse
    /// substep is 2^(L−1) finest substeps.
    pub fn advance<S: SdeSystem, R: Rng>(&mut self, sys: &S, tau: f64, m: usize, rng: &mut R, work: &mut S::Work) {
        let nl = self.nlevels;
        let ncols = sys.ncols();
        let fine = 1usize << (nl - 1);
        let sq = (tau / (m * fine) as f64).sqrt();
        for _ in 0..m {
            for x in self.dw[..fine * ncols].iter_mut() {
                *x = sq * normal(rng);
            }
            let mut count = fine;
            for level in (0..nl).rev() {
                let h = tau / (m << level) as f64;
                for s in 0..count {
                    sys.em_step(&mut self.states[level], h, &self.dw[s * ncols..(s + 1) * ncols], work);
                }
                if level > 0 {
                    for s in 0..count / 2 {
                        for c in 0..ncols {
                            self.dw[s * ncols + c] = self.dw[2 * s * ncols + c] + self.dw[(2 * s + 1) * ncols + c];
                        }
                    }
                    count /= 2;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::Game;

    #[test]
    fn a_raised_stop_ends_the_path_at_the_next_step() {
        let game = crate::game::lq::tests::example();
        let init = [0.3, -0.2, 0.8, 0.1];
        let setup = SdeSetup::new(&game, Drift::SecondOrder, Noise::Block, Integrator::Richardson, 0.1, 4, 2, &init);
        let mut w = SdeWork::new(&game, setup.noise.ncols(&game), setup.levels());
        let stop = AtomicBool::new(false);
        let records: Vec<usize> = (1..=40).collect();
        let mut rng = crate::rng::stream(3, 0, crate::rng::Role::Sde(0), 7);
        let mut last = 0;
        let done = setup.run_path(&game, &init, 40, &records, 1e6, &mut rng, &mut w, &stop, |r, _, _| {
            last = r;
            if r == 4 {
                stop.store(true, Ordering::Relaxed);
            }
        });
        assert_eq!(done, Ok(false));
        assert_eq!(last, 4, "no step after the stop");
    }

    #[test]
    fn lq_second_order_drift_equals_closed_form() {
        let game = crate::game::lq::tests::example();
        let d = game.dim();
        let eta = 0.1;
        let u = [0.3, -0.2, 0.8, 0.1];
        let mut w = SdeWork::new(&game, 4, 1);
        drift(&game, Drift::SecondOrder, eta, &u, &mut w);
        // Closed form: b0 = S (J u + c), S = diag(−1, −1, 1, 1); ∇b0 = S J;
        // b1 = −½ S J b0 − (C g_ω; 0).
        let j = game.grad_jacobian();
        let mut g = vec![0.0; d];
        let mut s = game.scratch();
        game.full_grad(&u, &mut g, &mut s);
        let sign = |k: usize| if k < 2 { -1.0 } else { 1.0 };
        let b0: Vec<f64> = (0..d).map(|k| sign(k) * g[k]).collect();
        let jb0 = j.mul_vec(&b0);
        let gw = [0.0, 0.0, g[2], g[3]];
        let cg = j.mul_vec(&gw);
        for k in 0..d {
            let b1 = -0.5 * sign(k) * jb0[k] - if k < 2 { cg[k] } else { 0.0 };
            let want = b0[k] + eta * b1;
            assert!((w.drift[k] - want).abs() < 1e-14, "k {k}: {} vs {want}", w.drift[k]);
        }
    }

    /// Population covariance of the per-sample parts, computed directly.
    fn direct_covariances(game: &dyn Game, u: &[f64]) -> (Mat, Mat, Mat) {
        let d = game.dim();
        let dt = game.dim_theta();
        let (n, m) = (game.n_latent(), game.n_real());
        let mut s = game.scratch();
        let lat: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut g = vec![0.0; d];
                game.add_latent_grad(u, i, 1.0, &mut g, &mut s);
                g
            })
            .collect();
        let real: Vec<Vec<f64>> = (0..m)
            .map(|j| {
                let mut g = vec![0.0; d];
                game.add_real_grad(u, j, 1.0, &mut g, &mut s);
                g
            })
            .collect();
        let cov = |xs: &Vec<Vec<f64>>| {
            let k = xs.len() as f64;
            let mean: Vec<f64> = (0..d).map(|a| xs.iter().map(|x| x[a]).sum::<f64>() / k).collect();
            let mut c = Mat::zeros(d, d);
            for x in xs {
                for a in 0..d {
                    for b in 0..d {
                        c[(a, b)] += (x[a] - mean[a]) * (x[b] - mean[b]) / k;
                    }
                }
            }
            c
        };
        let (cl, cr) = (cov(&lat), cov(&real));
        // Per-pair gradient covariance Cov(g^{IJ}) = Cov_I(latent) + Cov_J(real).
        let total = cl.add_scaled(1.0, &cr);
        let mut block = Mat::zeros(d, d);
        let mut cross = Mat::zeros(dt, d - dt);
        for a in 0..d {
            for b in 0..d {
                if (a < dt) == (b < dt) {
                    block[(a, b)] = total[(a, b)];
                } else if a < dt {
                    cross[(a, b - dt)] = total[(a, b)];
                }
            }
        }
        let mut full = total.clone();
        for a in 0..d {
            for b in 0..d {
                if (a < dt) != (b < dt) {
                    full[(a, b)] = -total[(a, b)];
                }
            }
        }
        (block, cross, full)
    }

    #[test]
    fn tanh_wgan_block_factor_reproduces_blockdiag_covariance() {
        let game = crate::game::tanh_wgan::tests::example(0.05);
        let u = [0.4, -0.7, 1.1, 0.2, -0.5, 0.9, 0.8, -0.3, 0.6];
        let (block, cross, full) = direct_covariances(&game, &u);
        let cross_norm = cross.data.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        assert!(cross_norm > 1e-3, "the test needs a non-zero θ–ω cross covariance, got {cross_norm}");
        let scale = block.data.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let ff = NoiseFactor::Block.covariance(&game, &u);
        let err = ff.data.iter().zip(&block.data).fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        assert!(err <= 1e-12 * scale, "block: FFᵀ deviates by {err:e}");
        // The noise pass also yields the full gradient.
        let mut w = SdeWork::new(&game, NoiseFactor::Block.ncols(&game), 1);
        let dw = vec![0.3; NoiseFactor::Block.ncols(&game)];
        NoiseFactor::Block.apply(&game, &u, &dw, &mut w);
        let mut g = vec![0.0; 9];
        game.full_grad(&u, &mut g, &mut game.scratch());
        for k in 0..9 {
            assert!((w.g[k] - g[k]).abs() < 1e-14, "gradient from the noise pass");
        }
        let ff = NoiseFactor::Full.covariance(&game, &u);
        let err = ff.data.iter().zip(&full.data).fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
        assert!(err <= 1e-12 * scale, "full: FFᵀ deviates by {err:e}");
    }

    #[test]
    fn lq_constant_factor_matches_block_covariance() {
        let game = crate::game::lq::tests::example();
        let u = [0.3, -0.2, 0.8, 0.1];
        let f = NoiseFactor::new(&game, Noise::Block, &u);
        assert!(matches!(f, NoiseFactor::Constant(_)));
        let a = f.covariance(&game, &[1.0, 2.0, 3.0, 4.0]);
        let b = NoiseFactor::Block.covariance(&game, &u);
        for (x, y) in a.data.iter().zip(&b.data) {
            assert!((x - y).abs() < 1e-14);
        }
    }
}
