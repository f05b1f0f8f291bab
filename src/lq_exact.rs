//! Closed-form expectations for the `lq` game, the ground truth of the tests:
//! the SGA chains are affine recursions with additive minibatch noise (exact
//! mean and covariance recursions), and the SDEs are Ornstein–Uhlenbeck
//! processes (mean and covariance by matrix exponentials). Written from the
//! matrices A, C, D directly, not through the engine's drift code.

use crate::game::Lq;
use crate::job::{Drift, Scheme, TestFunction};
use crate::linalg::{Mat, OuTransition};

/// Gaussian-free moments of u: mean and covariance.
#[derive(Clone, Debug)]
pub struct Moments2 {
    pub mean: Vec<f64>,
    pub cov: Mat,
}

fn population_cov(s: &crate::data::Samples) -> Mat {
    let m = s.column_means();
    let mut c = Mat::zeros(s.dim, s.dim);
    for i in 0..s.n {
        let r = s.row(i);
        for a in 0..s.dim {
            for b in 0..s.dim {
                c[(a, b)] += (r[a] - m[a]) * (r[b] - m[b]) / s.n as f64;
            }
        }
    }
    c
}

fn blockdiag(a: &Mat, b: &Mat) -> Mat {
    let mut m = Mat::zeros(a.rows + b.rows, a.cols + b.cols);
    m.set_block(0, 0, a);
    m.set_block(a.rows, a.cols, b);
    m
}

/// E and Cov of u after `steps` SGA steps from `init` (minibatch B).
pub fn sga_moments(g: &Lq, scheme: Scheme, eta: f64, batch: usize, init: &[f64], steps: usize) -> Moments2 {
    let (p, q) = (g.a.rows, g.d.rows);
    let d = p + q;
    let sz = population_cov(&g.z).scale(1.0 / batch as f64);
    let sx = population_cov(&g.x).scale(1.0 / batch as f64);
    let (zb, xb) = (g.z_mean(), g.x_mean());
    let mut mean = init.to_vec();
    let mut cov = Mat::zeros(d, d);
    match scheme {
        Scheme::Sml => {
            // u' = (I + η S J) u + η(z̄, x̄) + η(ε_z, ε_x)
            let mut pm = Mat::identity(d);
            pm.set_block(0, 0, &Mat::identity(p).add_scaled(-eta, &g.a));
            pm.set_block(0, p, &g.c.scale(-eta));
            pm.set_block(p, 0, &g.c.t().scale(eta));
            pm.set_block(p, p, &Mat::identity(q).add_scaled(-eta, &g.d));
            let qv: Vec<f64> = zb.iter().chain(xb).map(|v| eta * v).collect();
            let noise = blockdiag(&sz, &sx).scale(eta * eta);
            for _ in 0..steps {
                mean = pm.mul_vec(&mean).iter().zip(&qv).map(|(a, b)| a + b).collect();
                cov = pm.mul(&cov).mul(&pm.t()).add_scaled(1.0, &noise);
            }
        }
        Scheme::Alt => {
            // ω first: u1 = P1 u + q1 + E1 ε_x; then θ at ω': u2 = P2 u1 + q2 + E2 ε_z.
            let mut p1 = Mat::identity(d);
            p1.set_block(p, 0, &g.c.t().scale(eta));
            p1.set_block(p, p, &Mat::identity(q).add_scaled(-eta, &g.d));
            let q1: Vec<f64> = vec![0.0; p].into_iter().chain(xb.iter().map(|v| eta * v)).collect();
            let n1 = blockdiag(&Mat::zeros(p, p), &sx.scale(eta * eta));
            let mut p2 = Mat::identity(d);
            p2.set_block(0, 0, &Mat::identity(p).add_scaled(-eta, &g.a));
            p2.set_block(0, p, &g.c.scale(-eta));
            let q2: Vec<f64> = zb.iter().map(|v| eta * v).chain(vec![0.0; q]).collect();
            let n2 = blockdiag(&sz.scale(eta * eta), &Mat::zeros(q, q));
            for _ in 0..steps {
                let m1: Vec<f64> = p1.mul_vec(&mean).iter().zip(&q1).map(|(a, b)| a + b).collect();
                let c1 = p1.mul(&cov).mul(&p1.t()).add_scaled(1.0, &n1);
                mean = p2.mul_vec(&m1).iter().zip(&q2).map(|(a, b)| a + b).collect();
                cov = p2.mul(&c1).mul(&p2.t()).add_scaled(1.0, &n2);
            }
        }
    }
    Moments2 { mean, cov }
}

/// The affine drift K u + k of the SDE paired with η, in closed form:
/// with gradient J u + c and S = diag(−I, I): b0 = S(Ju + c),
/// (∇b0) b0 = SJ b0, (∇_ω g_θ) g_ω = Π_θ J Π_ω (Ju + c).
pub fn sde_drift(g: &Lq, drift: Drift, eta: f64) -> (Mat, Vec<f64>) {
    let (p, q) = (g.a.rows, g.d.rows);
    let d = p + q;
    let j = g.grad_jacobian();
    let mut s = Mat::identity(d);
    for k in 0..p {
        s[(k, k)] = -1.0;
    }
    let c: Vec<f64> = g.z_mean().iter().map(|v| -v).chain(g.x_mean().iter().copied()).collect();
    let sj = s.mul(&j);
    let sc = s.mul_vec(&c);
    let mut km = sj.clone();
    let mut kv = sc.clone();
    if drift != Drift::FirstOrder {
        km = km.add_scaled(-0.5 * eta, &sj.mul(&sj));
        let sjsc = sj.mul_vec(&sc);
        kv = kv.iter().zip(&sjsc).map(|(a, b)| a - 0.5 * eta * b).collect();
    }
    if drift == Drift::SecondOrder {
        let mut pt = Mat::zeros(d, d);
        let mut pw = Mat::zeros(d, d);
        for k in 0..d {
            if k < p {
                pt[(k, k)] = 1.0;
            } else {
                pw[(k, k)] = 1.0;
            }
        }
        let m = pt.mul(&j).mul(&pw);
        km = km.add_scaled(-eta, &m.mul(&j));
        let mc = m.mul_vec(&c);
        kv = kv.iter().zip(&mc).map(|(a, b)| a - eta * b).collect();
    }
    (km, kv)
}

/// E and Cov of the SDE state at time t from `init` (diffusion (η/B) blockdiag(Σ_z, Σ_x)).
pub fn sde_moments(g: &Lq, drift: Drift, eta: f64, batch: usize, init: &[f64], t: f64) -> Moments2 {
    let (km, kv) = sde_drift(g, drift, eta);
    let diff = blockdiag(&population_cov(&g.z), &population_cov(&g.x)).scale(eta / batch as f64);
    let tr = OuTransition::new(&km, &kv, &diff, t);
    let mean = tr.phi.mul_vec(init).iter().zip(&tr.psi).map(|(a, b)| a + b).collect();
    Moments2 { mean, cov: tr.q }
}

/// E f(u) for a quadratic test function under the given moments.
pub fn expectation(f: &TestFunction, m: &Moments2, g: &Lq) -> f64 {
    match *f {
        TestFunction::Coord(k) => m.mean[k],
        TestFunction::Norm2 => (0..m.mean.len()).map(|k| m.cov[(k, k)] + m.mean[k] * m.mean[k]).sum(),
        TestFunction::Product(k, l) => m.cov[(k, l)] + m.mean[k] * m.mean[l],
        TestFunction::Loss => {
            let q = g.grad_jacobian();
            let d = m.mean.len();
            let mut v = 0.0;
            for a in 0..d {
                for b in 0..d {
                    v += 0.5 * q[(a, b)] * (m.cov[(a, b)] + m.mean[a] * m.mean[b]);
                }
            }
            let c: Vec<f64> = g.z_mean().iter().map(|v| -v).chain(g.x_mean().iter().copied()).collect();
            v + c.iter().zip(&m.mean).map(|(a, b)| a * b).sum::<f64>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sde::{drift, SdeWork};

    #[test]
    fn closed_form_drift_agrees_with_engine_drift() {
        let g = crate::game::lq::tests::example();
        let u = [0.3, -0.2, 0.8, 0.1];
        let mut w = SdeWork::new(&g, 4, 1);
        for kind in [Drift::FirstOrder, Drift::SecondOrder, Drift::Modified] {
            let (km, kv) = sde_drift(&g, kind, 0.2);
            let want: Vec<f64> = km.mul_vec(&u).iter().zip(&kv).map(|(a, b)| a + b).collect();
            drift(&g, kind, 0.2, &u, &mut w);
            for k in 0..4 {
                assert!((w.drift[k] - want[k]).abs() < 1e-13, "{kind:?}");
            }
        }
    }

    #[test]
    fn sga_mean_recursion_matches_engine_mean_of_deterministic_batches() {
        // With B = N = M = 1 sample each the SGA is deterministic: compare means directly.
        use crate::data::Samples;
        let mut g = crate::game::lq::tests::example();
        g = Lq::new(g.a.clone(), g.c.clone(), g.d.clone(), Samples::from_rows(&[vec![0.2, -0.1]]), Samples::from_rows(&[vec![0.4, 0.3]]));
        for scheme in [Scheme::Alt, Scheme::Sml] {
            let m = sga_moments(&g, scheme, 0.1, 1, &[1.0, -0.5, 0.5, 1.0], 7);
            let mut w = crate::sga::SgaWork::new(&g);
            w.u.copy_from_slice(&[1.0, -0.5, 0.5, 1.0]);
            let mut r = crate::rng::stream(1, 0, crate::rng::Role::Sga(0), 0);
            for _ in 0..7 {
                crate::sga::step(&g, scheme, 0.1, 1, &mut r, &mut w);
            }
            for k in 0..4 {
                assert!((m.mean[k] - w.u[k]).abs() < 1e-14, "{scheme:?}");
                assert!(m.cov.data.iter().all(|c| c.abs() < 1e-30));
            }
        }
    }
}
