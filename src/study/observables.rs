//! Per-sample terms of the generator identities (DESIGN §1 "Generator
//! identities"), evaluated at each stored long-run sample so that FDR1
//! (Theorem 4) and FDR2 (Theorem 5) can be checked from the samples alone.
//!
//! For an SDE with drift b and diffusion σσᵀ = (η/B) Σ, E_μ[𝒜f] = 0 with
//! 𝒜f = bᵀ∇f + ½ Tr(σσᵀ ∇²f). Writing b = b0 + (b − b0), b0 = (−g_θ, g_ω):
//! - f = Φ:       E[|g_θ|² − |g_ω|²] = β⁻¹ E[Tr(Σ ∇²Φ)] + E[(b − b0)ᵀ ∇Φ]   (FDR1)
//! - f = |u|²/2:  E[θᵀg_θ − ωᵀg_ω]   = β⁻¹ E[Tr Σ]        + E[(b − b0)ᵀ u]    (FDR2)
//!
//! with β⁻¹ = η/(2B). For the ALT-SDE, (b − b0)ᵀ∇Φ = η b1ᵀ∇Φ equals
//! −(η/2)(g_θᵀH_θθ g_θ + g_ωᵀH_ωω g_ω) pointwise (the θω terms cancel), the
//! paper's form; for the modified SML-SDE it carries −2 g_θᵀH_θω g_ω inside
//! the bracket; for the SML-SDE it is 0. Computing (b − b0) from the drift
//! that was simulated gives the matching form in every case.

use rand::Rng;

use crate::game::Game;
use crate::job::{Drift, Noise, TraceMethod};
use crate::rng::normal;
use crate::sde::{drift, NoiseFactor, SdeWork};

/// Names of the stored per-sample terms, in column order.
pub const OBSERVABLES: [&str; 6] = [
    "grad_theta_sq_minus_grad_omega_sq",
    "trace_sigma_hessian",
    "drift_correction_dot_grad",
    "theta_grad_theta_minus_omega_grad_omega",
    "trace_sigma",
    "drift_correction_dot_u",
];

/// Per-thread buffers (allocated once).
pub struct ObsWork {
    g: Vec<f64>,
    b0: Vec<f64>,
    ell: Vec<f64>,
    mean_l: Vec<f64>,
    mean_r: Vec<f64>,
    sigma: Vec<f64>,
    hess: Vec<f64>,
    e1: Vec<f64>,
    e2: Vec<f64>,
    dg1: Vec<f64>,
    dg2: Vec<f64>,
    probe: Vec<f64>,
    sde: SdeWork,
}

impl ObsWork {
    /// Buffers for `game` with the noise factor `factor`.
    pub fn new(game: &dyn Game, factor: &NoiseFactor) -> Self {
        let d = game.dim();
        let z = || vec![0.0; d];
        ObsWork {
            g: z(),
            b0: z(),
            ell: z(),
            mean_l: z(),
            mean_r: z(),
            sigma: vec![0.0; d * d],
            hess: vec![0.0; d * d],
            e1: z(),
            e2: z(),
            dg1: z(),
            dg2: z(),
            probe: vec![0.0; factor.ncols(game)],
            sde: SdeWork::new(game, factor.ncols(game), 1),
        }
    }
}

/// What the per-sample terms depend on besides u.
pub struct ObsSetup<'a> {
    pub game: &'a dyn Game,
    /// The drift of the SDE whose identities are checked (for SGA samples: the SDE approximating the scheme).
    pub drift: Drift,
    pub eta: f64,
    pub noise: Noise,
    pub factor: &'a NoiseFactor,
    pub trace: TraceMethod,
}

impl ObsSetup<'_> {
    /// Writes the six terms of [`OBSERVABLES`] at u into `out`; `rng` feeds
    /// the Hutchinson probes (unused by the exact trace).
    pub fn observe<R: Rng>(&self, u: &[f64], rng: &mut R, w: &mut ObsWork, out: &mut [f64]) {
        let game = self.game;
        let (d, dt) = (game.dim(), game.dim_theta());
        game.full_grad(u, &mut w.g, &mut w.sde.scratch);
        for k in 0..d {
            w.b0[k] = if k < dt { -w.g[k] } else { w.g[k] };
        }
        let (mut lhs1, mut lhs2, mut corr1, mut corr2) = (0.0, 0.0, 0.0, 0.0);
        drift(game, self.drift, self.eta, u, &mut w.sde);
        for k in 0..d {
            let sign = if k < dt { 1.0 } else { -1.0 };
            lhs1 += sign * w.g[k] * w.g[k];
            lhs2 += sign * u[k] * w.g[k];
            let db = w.sde.drift[k] - w.b0[k];
            corr1 += db * w.g[k];
            corr2 += db * u[k];
        }
        let trace_sigma = self.covariance(u, w);
        let trace_sh = match self.trace {
            TraceMethod::Exact => {
                // Column pairs of the Hessian ∇²Φ = ∇g, two directions per forward pass.
                for k in (0..d).step_by(2) {
                    w.e1.iter_mut().for_each(|x| *x = 0.0);
                    w.e2.iter_mut().for_each(|x| *x = 0.0);
                    w.e1[k] = 1.0;
                    if k + 1 < d {
                        w.e2[k + 1] = 1.0;
                    }
                    game.grad_jvp2(u, &w.e1, &w.e2, &mut w.ell, &mut w.dg1, &mut w.dg2, &mut w.sde.scratch);
                    for r in 0..d {
                        w.hess[r * d + k] = w.dg1[r];
                        if k + 1 < d {
                            w.hess[r * d + k + 1] = w.dg2[r];
                        }
                    }
                }
                w.sigma.iter().zip(&w.hess).map(|(s, h)| s * h).sum()
            }
            TraceMethod::Hutchinson(probes) => {
                // E_z[(F z)ᵀ H (F z)] = Tr(F Fᵀ H) for z ~ N(0, I).
                let mut acc = 0.0;
                for _ in 0..probes {
                    for z in w.probe.iter_mut() {
                        *z = normal(rng);
                    }
                    self.factor.apply(game, u, &w.probe, &mut w.sde);
                    let v = &w.sde.noise;
                    game.grad_jvp(u, v, &mut w.ell, &mut w.dg1, &mut w.sde.scratch);
                    acc += v.iter().zip(&w.dg1).map(|(a, b)| a * b).sum::<f64>();
                }
                acc / probes as f64
            }
        };
        out[..6].copy_from_slice(&[lhs1, trace_sh, corr1, lhs2, trace_sigma, corr2]);
    }

    /// Σ = Cov_I(latent part) + Cov_J(real part) of the per-pair gradient,
    /// restricted to the noise kind (block: no θω block; full: the θω block of
    /// Cov(−g_θ, g_ω)) into `w.sigma` (only for the exact trace); returns Tr Σ.
    fn covariance(&self, u: &[f64], w: &mut ObsWork) -> f64 {
        let game = self.game;
        let (d, dt) = (game.dim(), game.dim_theta());
        let (n, m) = (game.n_latent(), game.n_real());
        let exact = self.trace == TraceMethod::Exact;
        w.mean_l.iter_mut().for_each(|x| *x = 0.0);
        w.mean_r.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..n {
            w.ell.iter_mut().for_each(|x| *x = 0.0);
            game.add_latent_grad(u, i, 1.0 / n as f64, &mut w.ell, &mut w.sde.scratch);
            w.mean_l.iter_mut().zip(&w.ell).for_each(|(a, b)| *a += b);
        }
        for j in 0..m {
            w.ell.iter_mut().for_each(|x| *x = 0.0);
            game.add_real_grad(u, j, 1.0 / m as f64, &mut w.ell, &mut w.sde.scratch);
            w.mean_r.iter_mut().zip(&w.ell).for_each(|(a, b)| *a += b);
        }
        // Second pass on centred gradients (the means are known now): no cancellation.
        w.sigma.iter_mut().for_each(|x| *x = 0.0);
        let mut trace = 0.0;
        let full = self.noise == Noise::Full;
        for (count, real) in [(n, false), (m, true)] {
            for i in 0..count {
                w.ell.iter_mut().for_each(|x| *x = 0.0);
                let mean = if real {
                    game.add_real_grad(u, i, 1.0, &mut w.ell, &mut w.sde.scratch);
                    &w.mean_r
                } else {
                    game.add_latent_grad(u, i, 1.0, &mut w.ell, &mut w.sde.scratch);
                    &w.mean_l
                };
                let wt = 1.0 / count as f64;
                for k in 0..d {
                    w.ell[k] -= mean[k];
                    trace += wt * w.ell[k] * w.ell[k];
                }
                if exact {
                    for a in 0..d {
                        for b in 0..d {
                            let same = (a < dt) == (b < dt);
                            if same || full {
                                let sign = if same { 1.0 } else { -1.0 };
                                w.sigma[a * d + b] += sign * wt * w.ell[a] * w.ell[b];
                            }
                        }
                    }
                }
            }
        }
        trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Drift, Noise, TraceMethod};
    use crate::linalg::Mat;

    /// For `lq`, the per-sample terms have closed forms: H = J (constant), Σ constant.
    #[test]
    fn lq_terms_match_closed_forms() {
        let game = crate::game::lq::tests::example();
        let u = [0.3, -0.2, 0.8, 0.1];
        let d = 4;
        let factor = NoiseFactor::new(&game, Noise::Block, &u);
        let mut w = ObsWork::new(&game, &factor);
        let mut out = [0.0; 6];
        let mut rng = crate::rng::stream(1, 0, crate::rng::Role::Data(9), 0);
        let eta = 0.1;
        let setup = ObsSetup { game: &game, drift: Drift::SecondOrder, eta, noise: Noise::Block, factor: &factor, trace: TraceMethod::Exact };
        setup.observe(&u, &mut rng, &mut w, &mut out);
        let j = game.grad_jacobian();
        let sigma = NoiseFactor::Block.covariance(&game, &u);
        let want_tr: f64 = (0..d).flat_map(|a| (0..d).map(move |b| (a, b))).map(|(a, b)| sigma[(a, b)] * j[(b, a)]).sum();
        assert!((out[1] - want_tr).abs() < 1e-12, "Tr(ΣH) {} vs {want_tr}", out[1]);
        let want_trs: f64 = (0..d).map(|a| sigma[(a, a)]).sum();
        assert!((out[4] - want_trs).abs() < 1e-12);
        // ALT-SDE correction: −(η/2)(g_θᵀH_θθ g_θ + g_ωᵀH_ωω g_ω), the paper's Theorem 4 form.
        let mut g = vec![0.0; d];
        game.full_grad(&u, &mut g, &mut game.scratch());
        let hg = |lo: usize, hi: usize| -> f64 {
            let mut s = 0.0;
            for a in lo..hi {
                for b in lo..hi {
                    s += g[a] * j[(a, b)] * g[b];
                }
            }
            s
        };
        let want_c1 = -0.5 * eta * (hg(0, 2) + hg(2, 4));
        assert!((out[2] - want_c1).abs() < 1e-12, "correction {} vs {want_c1}", out[2]);
        assert!((out[0] - (g[0] * g[0] + g[1] * g[1] - g[2] * g[2] - g[3] * g[3])).abs() < 1e-12);
        // The SML-SDE has no correction.
        let sml = ObsSetup { drift: Drift::FirstOrder, ..setup };
        sml.observe(&u, &mut rng, &mut w, &mut out);
        assert_eq!((out[2], out[5]), (0.0, 0.0));
        let _ = Mat::zeros(1, 1);
    }

    /// Hutchinson's estimate is unbiased: its mean over many probes approaches the exact trace.
    #[test]
    fn hutchinson_trace_is_unbiased_on_tanh_wgan() {
        let game = crate::game::tanh_wgan::tests::example(0.05);
        let u = [0.4, -0.7, 1.1, 0.2, -0.5, 0.9, 0.8, -0.3, 0.6];
        let factor = NoiseFactor::new(&game, Noise::Block, &u);
        let mut w = ObsWork::new(&game, &factor);
        let mut rng = crate::rng::stream(2, 0, crate::rng::Role::Data(9), 0);
        let mut exact = [0.0; 6];
        let base = ObsSetup { game: &game, drift: Drift::Modified, eta: 0.1, noise: Noise::Block, factor: &factor, trace: TraceMethod::Exact };
        base.observe(&u, &mut rng, &mut w, &mut exact);
        let hut = ObsSetup { trace: TraceMethod::Hutchinson(1), ..base };
        let n = 20000;
        let (mut s, mut s2) = (0.0, 0.0);
        let mut out = [0.0; 6];
        for _ in 0..n {
            hut.observe(&u, &mut rng, &mut w, &mut out);
            s += out[1];
            s2 += out[1] * out[1];
            assert_eq!(out[4], exact[4]);
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        assert!((mean - exact[1]).abs() < 4.0 * se, "Hutchinson {mean} ± {se} vs exact {}", exact[1]);
        assert!(se < 0.1 * exact[1].abs().max(1e-3) || se < 1e-3, "the test needs a resolving sample: se {se}");
    }
}
