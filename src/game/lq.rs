//! The linear-quadratic game (DESIGN §1 `lq`):
//! J = ½θᵀAθ + θᵀCω − ½ωᵀDω − θᵀz_i + ωᵀx_j, so
//! g_θ = Aθ + Cω − z_i and g_ω = Cᵀθ − Dω + x_j. SGA is linear with additive
//! noise and the SDEs are Ornstein–Uhlenbeck: the closed-form ground truth.

use super::{Game, Scratch};
use crate::data::Samples;
use crate::linalg::Mat;

/// The `lq` game on fixed latent samples z (dim θ) and real samples x (dim ω).
#[derive(Clone, Debug)]
pub struct Lq {
    pub a: Mat,
    pub c: Mat,
    pub d: Mat,
    pub z: Samples,
    pub x: Samples,
    z_mean: Vec<f64>,
    x_mean: Vec<f64>,
}

impl Lq {
    /// The game with matrices A (dθ×dθ), C (dθ×dω), D (dω×dω); shapes are
    /// checked by the job validation before this is called.
    pub fn new(a: Mat, c: Mat, d: Mat, z: Samples, x: Samples) -> Self {
        let z_mean = z.column_means();
        let x_mean = x.column_means();
        Lq { a, c, d, z, x, z_mean, x_mean }
    }

    /// Mean of the latent samples z̄.
    pub fn z_mean(&self) -> &[f64] {
        &self.z_mean
    }

    /// Mean of the real samples x̄.
    pub fn x_mean(&self) -> &[f64] {
        &self.x_mean
    }

    /// The Jacobian of the full gradient, [[A, C], [Cᵀ, −D]] (constant).
    pub fn grad_jacobian(&self) -> Mat {
        let (p, q) = (self.a.rows, self.d.rows);
        let mut j = Mat::zeros(p + q, p + q);
        j.set_block(0, 0, &self.a);
        j.set_block(0, p, &self.c);
        j.set_block(p, 0, &self.c.t());
        j.set_block(p, p, &self.d.scale(-1.0));
        j
    }

    fn lin(&self, u: &[f64], out: &mut [f64]) {
        let p = self.a.rows;
        let (th, om) = u.split_at(p);
        let (gt, gw) = out.split_at_mut(p);
        for r in 0..p {
            gt[r] = (0..p).map(|k| self.a[(r, k)] * th[k]).sum::<f64>() + (0..om.len()).map(|k| self.c[(r, k)] * om[k]).sum::<f64>();
        }
        for r in 0..om.len() {
            gw[r] = (0..p).map(|k| self.c[(k, r)] * th[k]).sum::<f64>() - (0..om.len()).map(|k| self.d[(r, k)] * om[k]).sum::<f64>();
        }
    }
}

impl Game for Lq {
    fn dim_theta(&self) -> usize {
        self.a.rows
    }
    fn dim_omega(&self) -> usize {
        self.d.rows
    }
    fn n_latent(&self) -> usize {
        self.z.n
    }
    fn n_real(&self) -> usize {
        self.x.n
    }
    fn scratch(&self) -> Scratch {
        Scratch::new(self.dim(), self.dim())
    }

    fn add_latent_grad(&self, u: &[f64], i: usize, w: f64, g: &mut [f64], s: &mut Scratch) {
        let p = self.a.rows;
        let lin = &mut s.f;
        self.lin(u, lin);
        let zi = self.z.row(i);
        for k in 0..g.len() {
            let zk = if k < p { zi[k] } else { 0.0 };
            g[k] += w * (lin[k] - zk);
        }
    }

    fn add_real_grad(&self, _u: &[f64], j: usize, w: f64, g: &mut [f64], _s: &mut Scratch) {
        let p = self.a.rows;
        for (k, xk) in self.x.row(j).iter().enumerate() {
            g[p + k] += w * xk;
        }
    }

    fn grad_jvp2(&self, u: &[f64], v1: &[f64], v2: &[f64], g: &mut [f64], dg1: &mut [f64], dg2: &mut [f64], s: &mut Scratch) {
        self.full_grad(u, g, s);
        self.lin(v1, dg1);
        self.lin(v2, dg2);
    }

    fn full_grad(&self, u: &[f64], g: &mut [f64], _s: &mut Scratch) {
        self.lin(u, g);
        let p = self.a.rows;
        for k in 0..p {
            g[k] -= self.z_mean[k];
        }
        for k in 0..self.x_mean.len() {
            g[p + k] += self.x_mean[k];
        }
    }

    fn loss(&self, u: &[f64]) -> f64 {
        let p = self.a.rows;
        let (th, om) = u.split_at(p);
        let q = om.len();
        let mut l = 0.0;
        for r in 0..p {
            for k in 0..p {
                l += 0.5 * th[r] * self.a[(r, k)] * th[k];
            }
            for k in 0..q {
                l += th[r] * self.c[(r, k)] * om[k];
            }
            l -= th[r] * self.z_mean[r];
        }
        for r in 0..q {
            for k in 0..q {
                l -= 0.5 * om[r] * self.d[(r, k)] * om[k];
            }
            l += om[r] * self.x_mean[r];
        }
        l
    }

    fn constant_noise(&self) -> bool {
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::game::testing::*;

    pub fn example() -> Lq {
        let a = Mat::from_rows(&[vec![1.0, 0.2], vec![0.2, 0.6]]);
        let c = Mat::from_rows(&[vec![0.9, -0.4], vec![0.3, 0.7]]);
        let d = Mat::from_rows(&[vec![0.8, -0.1], vec![-0.1, 0.5]]);
        let z = Samples::from_rows(&[vec![0.1, 0.5], vec![-0.3, 0.2], vec![1.2, -0.4]]);
        let x = Samples::from_rows(&[vec![0.7, -0.1], vec![0.0, 0.9]]);
        Lq::new(a, c, d, z, x)
    }

    #[test]
    fn gradients_match_loss_and_jvp_matches_jacobian() {
        let g = example();
        let u = [0.3, -0.2, 0.8, 0.1];
        assert!(grad_vs_loss_fd(&g, &u) < 1e-8);
        assert!(jvp_vs_fd(&g, &u, &[0.5, 1.0, -0.3, 0.2]) < 1e-8);
        // Full gradient by the per-sample default equals the closed form.
        let mut s = g.scratch();
        let mut a = vec![0.0; 4];
        let mut b = vec![0.0; 4];
        g.full_grad(&u, &mut a, &mut s);
        crate::game::grad_by_samples(&g, &u, &mut b, &mut s);
        for k in 0..4 {
            assert!((a[k] - b[k]).abs() < 1e-14);
        }
    }
}
