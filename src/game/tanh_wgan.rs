//! The tanh Wasserstein GAN of the paper's §4.2.2: discriminator
//! D_ω(x) = tanh(ω·x), generator G_θ(z) = tanh(θ z) elementwise with θ a
//! d_x × d_z matrix (row-major in u), loss J = D_ω(x_j) − D_ω(G_θ(z_i)),
//! with optional ridge terms + λθ/2 |θ|² − λω/2 |ω|².

use super::{load_dual, Game, Scratch};
use crate::data::Samples;
use crate::dual::Scalar;

/// The `tanh-wgan` game on latent samples z (dim d_z) and real samples x (dim d_x).
#[derive(Clone, Debug)]
pub struct TanhWgan {
    pub z: Samples,
    pub x: Samples,
    pub ridge_theta: f64,
    pub ridge_omega: f64,
}

impl TanhWgan {
    /// The game; dim θ = d_x·d_z, dim ω = d_x.
    pub fn new(z: Samples, x: Samples, ridge_theta: f64, ridge_omega: f64) -> Self {
        TanhWgan { z, x, ridge_theta, ridge_omega }
    }

    fn dx(&self) -> usize {
        self.x.dim
    }
    fn dz(&self) -> usize {
        self.z.dim
    }

    /// Adds w·∇c(θ, ω; z_i) for c = −tanh(ω·G_θ(z_i)) (+ ridge), over any scalar.
    fn latent<S: Scalar>(&self, u: &[S], i: usize, w: f64, g: &mut [S], gen: &mut [S]) {
        let (dx, dz) = (self.dx(), self.dz());
        let p = dx * dz;
        let z = self.z.row(i);
        let mut s = S::cst(0.0);
        for k in 0..dx {
            let mut a = S::cst(0.0);
            for l in 0..dz {
                a += u[k * dz + l].scale(z[l]);
            }
            gen[k] = a.tanh();
            s += u[p + k] * gen[k];
        }
        let t = s.tanh();
        // ∂c/∂s = −(1 − t²)
        let dcds = (S::cst(1.0) - t * t).scale(-w);
        for k in 0..dx {
            g[p + k] += dcds * gen[k];
            let back = dcds * u[p + k] * (S::cst(1.0) - gen[k] * gen[k]);
            for l in 0..dz {
                g[k * dz + l] += back.scale(z[l]);
            }
        }
        if self.ridge_theta != 0.0 {
            for k in 0..p {
                g[k] += u[k].scale(w * self.ridge_theta);
            }
        }
        if self.ridge_omega != 0.0 {
            for k in 0..dx {
                g[p + k] += u[p + k].scale(-w * self.ridge_omega);
            }
        }
    }

    /// Adds w·∇_ω a(ω; x_j) for a = tanh(ω·x_j), over any scalar.
    fn real<S: Scalar>(&self, u: &[S], j: usize, w: f64, g: &mut [S]) {
        let dx = self.dx();
        let p = dx * self.dz();
        let x = self.x.row(j);
        let mut s = S::cst(0.0);
        for k in 0..dx {
            s += u[p + k].scale(x[k]);
        }
        let t = s.tanh();
        let dads = (S::cst(1.0) - t * t).scale(w);
        for k in 0..dx {
            g[p + k] += dads.scale(x[k]);
        }
    }
}

impl Game for TanhWgan {
    fn dim_theta(&self) -> usize {
        self.dx() * self.dz()
    }
    fn dim_omega(&self) -> usize {
        self.dx()
    }
    fn n_latent(&self) -> usize {
        self.z.n
    }
    fn n_real(&self) -> usize {
        self.x.n
    }
    fn scratch(&self) -> Scratch {
        Scratch::new(self.dim(), self.dx())
    }

    fn add_latent_grad(&self, u: &[f64], i: usize, w: f64, g: &mut [f64], s: &mut Scratch) {
        self.latent(u, i, w, g, &mut s.f);
    }

    fn add_real_grad(&self, u: &[f64], j: usize, w: f64, g: &mut [f64], _s: &mut Scratch) {
        self.real(u, j, w, g);
    }

    fn grad_jvp2(&self, u: &[f64], v1: &[f64], v2: &[f64], g: &mut [f64], dg1: &mut [f64], dg2: &mut [f64], s: &mut Scratch) {
        load_dual(u, v1, v2, s);
        let (n, m) = (self.z.n, self.x.n);
        let Scratch { d, ud, gd, .. } = s;
        for i in 0..n {
            self.latent(ud, i, 1.0 / n as f64, gd, d);
        }
        for j in 0..m {
            self.real(ud, j, 1.0 / m as f64, gd);
        }
        for k in 0..g.len() {
            g[k] = gd[k].v;
            dg1[k] = gd[k].d;
            dg2[k] = gd[k].d2;
        }
    }

    fn loss(&self, u: &[f64]) -> f64 {
        let (dx, dz) = (self.dx(), self.dz());
        let p = dx * dz;
        let om = &u[p..];
        let mut real = 0.0;
        for j in 0..self.x.n {
            let x = self.x.row(j);
            real += (0..dx).map(|k| om[k] * x[k]).sum::<f64>().tanh();
        }
        let mut fake = 0.0;
        for i in 0..self.z.n {
            let z = self.z.row(i);
            let s: f64 = (0..dx).map(|k| om[k] * (0..dz).map(|l| u[k * dz + l] * z[l]).sum::<f64>().tanh()).sum();
            fake += s.tanh();
        }
        let rt: f64 = u[..p].iter().map(|a| a * a).sum();
        let ro: f64 = om.iter().map(|a| a * a).sum();
        real / self.x.n as f64 - fake / self.z.n as f64 + 0.5 * self.ridge_theta * rt - 0.5 * self.ridge_omega * ro
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::game::testing::*;
    use crate::rng::{normal, stream, Role};

    /// A small random instance (d_x = 3, d_z = 2, N = 7, M = 5).
    pub fn example(ridge: f64) -> TanhWgan {
        let mut r = stream(99, 0, Role::Data(0), 0);
        let z = Samples::from_rows(&(0..7).map(|_| (0..2).map(|_| normal(&mut r)).collect()).collect::<Vec<_>>());
        let x = Samples::from_rows(&(0..5).map(|_| (0..3).map(|_| normal(&mut r) + 0.5).collect()).collect::<Vec<_>>());
        TanhWgan::new(z, x, ridge, ridge)
    }

    #[test]
    fn gradient_matches_loss_differences() {
        for ridge in [0.0, 0.3] {
            let g = example(ridge);
            let u = [0.4, -0.7, 1.1, 0.2, -0.5, 0.9, 0.8, -0.3, 0.6];
            assert!(grad_vs_loss_fd(&g, &u) < 1e-8, "ridge {ridge}");
        }
    }

    #[test]
    fn jvp_matches_central_differences() {
        let g = example(0.1);
        let u = [0.4, -0.7, 1.1, 0.2, -0.5, 0.9, 0.8, -0.3, 0.6];
        let v = [0.3, 0.1, -0.8, 0.5, 0.2, -0.4, 1.0, 0.7, -0.2];
        assert!(jvp_vs_fd(&g, &u, &v) < 1e-6);
    }
}
