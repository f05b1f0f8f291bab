//! Games Φ(θ, ω) = (1/NM) Σ_i Σ_j J(θ, ω; z_i, x_j) with a separable loss
//! J = a(ω; x_j) + c(θ, ω; z_i) (DESIGN §1). The generator θ descends, the
//! discriminator ω ascends: g_θ = ∇_θ Φ, g_ω = ∇_ω Φ, u = (θ, ω).

pub mod lq;
pub mod mlp;
pub mod tanh_wgan;

use crate::dual::Dual;

pub use lq::Lq;
pub use mlp::{Activation, Mlp, MlpConfig, MlpLoss};
pub use tanh_wgan::TanhWgan;

/// Per-thread work space for gradient code, sized once at job start so that
/// hot loops allocate nothing.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    /// Plain work buffer (e.g. a generator output).
    pub f: Vec<f64>,
    /// Dual work buffer (the same, with tangents).
    pub d: Vec<Dual>,
    /// The point with its tangent.
    pub ud: Vec<Dual>,
    /// The gradient with its derivative.
    pub gd: Vec<Dual>,
    /// A spare plain buffer of length dim.
    pub spare: Vec<f64>,
}

impl Scratch {
    /// A scratch for a game of parameter dimension `dim` needing `work` extra slots.
    pub fn new(dim: usize, work: usize) -> Self {
        Scratch { f: vec![0.0; work], d: vec![Dual::default(); work], ud: vec![Dual::default(); dim], gd: vec![Dual::default(); dim], spare: vec![0.0; dim] }
    }
}

/// A two-player game with separable per-sample gradients.
///
/// The required surface is the per-sample gradient parts (for minibatches
/// and the noise factor), the full gradient with its directional derivative
/// (for the drifts b0 and b1), and the loss (a test function).
pub trait Game: Send + Sync {
    /// dim θ.
    fn dim_theta(&self) -> usize;
    /// dim ω.
    fn dim_omega(&self) -> usize;
    /// N, the number of latent samples z_i.
    fn n_latent(&self) -> usize;
    /// M, the number of real samples x_j.
    fn n_real(&self) -> usize;
    /// A scratch big enough for this game's gradient code.
    fn scratch(&self) -> Scratch;
    /// Adds w·∇_u c(θ, ω; z_i) to g (length dim θ + dim ω); sample-free
    /// terms (ridge, quadratic parts) live here too.
    fn add_latent_grad(&self, u: &[f64], i: usize, w: f64, g: &mut [f64], s: &mut Scratch);
    /// Adds w·∇_ω a(ω; x_j) to the ω part of g.
    fn add_real_grad(&self, u: &[f64], j: usize, w: f64, g: &mut [f64], s: &mut Scratch);
    /// The full gradient g(u) = (∇_θ Φ, ∇_ω Φ) and its derivatives Dg(u)[v1]
    /// and Dg(u)[v2] along two directions, exact (forward mode), in one pass.
    #[allow(clippy::too_many_arguments)]
    fn grad_jvp2(&self, u: &[f64], v1: &[f64], v2: &[f64], g: &mut [f64], dg1: &mut [f64], dg2: &mut [f64], s: &mut Scratch);
    /// Φ(u).
    fn loss(&self, u: &[f64]) -> f64;
    /// Whether the per-sample gradient covariance does not depend on u
    /// (then a d × d Cholesky factor computed once is the cheapest noise).
    fn constant_noise(&self) -> bool {
        false
    }

    /// The full gradient g(u) and its derivative Dg(u)[v] along one direction.
    fn grad_jvp(&self, u: &[f64], v: &[f64], g: &mut [f64], dg: &mut [f64], s: &mut Scratch) {
        let mut spare = std::mem::take(&mut s.spare);
        self.grad_jvp2(u, v, v, g, dg, &mut spare, s);
        s.spare = spare;
    }

    /// dim θ + dim ω.
    fn dim(&self) -> usize {
        self.dim_theta() + self.dim_omega()
    }

    /// The full gradient g(u), by averaging the per-sample parts.
    fn full_grad(&self, u: &[f64], g: &mut [f64], s: &mut Scratch) {
        grad_by_samples(self, u, g, s);
    }
}

/// The full gradient by averaging per-sample parts, ignoring any closed-form
/// override; used to cross-check closed forms.
pub fn grad_by_samples<G: Game + ?Sized>(game: &G, u: &[f64], g: &mut [f64], s: &mut Scratch) {
    g.iter_mut().for_each(|x| *x = 0.0);
    let (n, m) = (game.n_latent(), game.n_real());
    for i in 0..n {
        game.add_latent_grad(u, i, 1.0 / n as f64, g, s);
    }
    for j in 0..m {
        game.add_real_grad(u, j, 1.0 / m as f64, g, s);
    }
}

/// Helper for `grad_jvp2` implementations: loads u + ε₁ v1 + ε₂ v2 into the dual scratch.
pub(crate) fn load_dual(u: &[f64], v1: &[f64], v2: &[f64], s: &mut Scratch) {
    for (k, d) in s.ud.iter_mut().enumerate() {
        *d = Dual::new2(u[k], v1[k], v2[k]);
    }
    s.gd.iter_mut().for_each(|d| *d = Dual::default());
}

#[cfg(test)]
pub(crate) mod testing {
    //! Finite-difference and covariance checks shared by the model tests.
    use super::*;
    use crate::linalg::Mat;

    /// Max relative deviation of the JVP from central differences of the full gradient.
    pub fn jvp_vs_fd(game: &dyn Game, u: &[f64], v: &[f64]) -> f64 {
        let d = game.dim();
        let mut s = game.scratch();
        let (mut g, mut dg) = (vec![0.0; d], vec![0.0; d]);
        game.grad_jvp(u, v, &mut g, &mut dg, &mut s);
        let mut g0 = vec![0.0; d];
        game.full_grad(u, &mut g0, &mut s);
        for k in 0..d {
            assert!((g[k] - g0[k]).abs() <= 1e-12 * (1.0 + g0[k].abs()), "grad_jvp value != full_grad");
        }
        let h = 1e-5;
        let up: Vec<f64> = u.iter().zip(v).map(|(a, b)| a + h * b).collect();
        let um: Vec<f64> = u.iter().zip(v).map(|(a, b)| a - h * b).collect();
        let (mut gp, mut gm) = (vec![0.0; d], vec![0.0; d]);
        game.full_grad(&up, &mut gp, &mut s);
        game.full_grad(&um, &mut gm, &mut s);
        let scale = dg.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        let err1 = (0..d).map(|k| ((gp[k] - gm[k]) / (2.0 * h) - dg[k]).abs() / scale).fold(0.0, f64::max);
        // The two-direction pass: (v, reversed v) must give the same as two single passes.
        let w: Vec<f64> = v.iter().rev().copied().collect();
        let (mut g2, mut d1, mut d2, mut dw) = (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        game.grad_jvp2(u, v, &w, &mut g2, &mut d1, &mut d2, &mut s);
        game.grad_jvp(u, &w, &mut g2, &mut dw, &mut s);
        let err2 = (0..d).map(|k| (d1[k] - dg[k]).abs().max((d2[k] - dw[k]).abs()) / scale).fold(0.0, f64::max);
        err1.max(err2)
    }

    /// Population covariances of the per-sample gradient parts, computed
    /// directly: (blockdiag(Σ_θ, Σ_ω), the θ–ω cross block, and the full
    /// Cov(−g_θ^{IJ}, g_ω^{IJ})), with Cov(g^{IJ}) = Cov_I(latent) + Cov_J(real).
    pub fn sample_covariances(game: &dyn Game, u: &[f64]) -> (Mat, Mat, Mat) {
        let d = game.dim();
        let dt = game.dim_theta();
        let mut s = game.scratch();
        let mut parts = |n: usize, add: &mut dyn FnMut(usize, &mut [f64], &mut Scratch)| -> Vec<Vec<f64>> {
            (0..n)
                .map(|i| {
                    let mut g = vec![0.0; d];
                    add(i, &mut g, &mut s);
                    g
                })
                .collect()
        };
        let lat = parts(game.n_latent(), &mut |i, g, s| game.add_latent_grad(u, i, 1.0, g, s));
        let real = parts(game.n_real(), &mut |j, g, s| game.add_real_grad(u, j, 1.0, g, s));
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
        let total = cov(&lat).add_scaled(1.0, &cov(&real));
        let (mut block, mut cross, mut full) = (Mat::zeros(d, d), Mat::zeros(dt, d - dt), total.clone());
        for a in 0..d {
            for b in 0..d {
                if (a < dt) == (b < dt) {
                    block[(a, b)] = total[(a, b)];
                } else {
                    full[(a, b)] = -total[(a, b)];
                    if a < dt {
                        cross[(a, b - dt)] = total[(a, b)];
                    }
                }
            }
        }
        (block, cross, full)
    }

    /// Max relative deviation of the loss gradient (central differences of Φ) from g.
    pub fn grad_vs_loss_fd(game: &dyn Game, u: &[f64]) -> f64 {
        let d = game.dim();
        let mut s = game.scratch();
        let mut g = vec![0.0; d];
        game.full_grad(u, &mut g, &mut s);
        let h = 1e-5;
        let scale = g.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        (0..d)
            .map(|k| {
                let mut up = u.to_vec();
                let mut um = u.to_vec();
                up[k] += h;
                um[k] -= h;
                ((game.loss(&up) - game.loss(&um)) / (2.0 * h) - g[k]).abs() / scale
            })
            .fold(0.0, f64::max)
    }
}
