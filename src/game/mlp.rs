//! The one-hidden-layer GAN of the paper's §4.2.1 (`mlp`).
//!
//! Generator G_θ(z) = W₂ σ_g(W₁ z + b₁) + b₂ (linear output, dim x), and
//! discriminator logit D_ω(x) = v·σ_d(V x + c) + c₀ (scalar), with smooth
//! hidden activations σ_g, σ_d ∈ {tanh, softplus, sigmoid}. Losses:
//!
//! - Wasserstein: J = D_ω(x_j) − D_ω(G_θ(z_i)), the logit used directly;
//! - vanilla: J = log σ(D_ω(x_j)) + log(1 − σ(D_ω(G_θ(z_i)))) with σ the
//!   logistic function, written as −softplus(−ℓ) − softplus(ℓ′) (stable for
//!   any logit),
//!
//! plus optional ridge terms + λθ/2 |θ|² − λω/2 |ω|² (carried by the latent
//! part). The loss is separable, J = a(ω; x_j) + c(θ, ω; z_i).
//!
//! **Parameter layout** of u = (θ, ω), every matrix row-major
//! (row = output unit), with h_g = `hidden_g`, h_d = `hidden_d`:
//!
//! | block | shape      | meaning                            |
//! |-------|------------|------------------------------------|
//! | W₁    | h_g × d_z  | generator hidden weights           |
//! | b₁    | h_g        | generator hidden biases            |
//! | W₂    | d_x × h_g  | generator output weights           |
//! | b₂    | d_x        | generator output biases            |
//! | V     | h_d × d_x  | discriminator hidden weights       |
//! | c     | h_d        | discriminator hidden biases        |
//! | v     | h_d        | discriminator output weights       |
//! | c₀    | 1          | discriminator output bias          |
//!
//! θ = (W₁, b₁, W₂, b₂), dim θ = h_g (d_z + 1) + d_x (h_g + 1);
//! ω = (V, c, v, c₀), dim ω = h_d (d_x + 2) + 1. Under the Wasserstein loss
//! c₀ cancels from Φ (its gradient is −λω c₀, its per-sample noise zero).
//!
//! Gradients are hand-written per-sample backpropagation, generic over
//! [`Scalar`]: on `f64` for values, on [`Dual`](crate::dual::Dual) for the
//! exact Jacobian-vector products of `grad_jvp2`. Nonlinear scalar functions
//! enter through [`lift`], the first-order chain rule, so only `f64`
//! formulas for f, f′, f″ are written.

use std::cell::RefCell;

use super::{load_dual, Game, Scratch};
use crate::data::Samples;
use crate::dual::{Dual, Scalar};

/// A smooth hidden-layer activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Tanh,
    /// log(1 + eᵃ), computed stably.
    Softplus,
    /// 1 / (1 + e⁻ᵃ), computed stably.
    Sigmoid,
}

impl Activation {
    /// The job-file names, in order of [`Activation::ALL`].
    pub const NAMES: [&'static str; 3] = ["tanh", "softplus", "sigmoid"];
    /// Every activation.
    pub const ALL: [Activation; 3] = [Activation::Tanh, Activation::Softplus, Activation::Sigmoid];

    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// From a job-file name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// (f(a), f′(a), f″(a)).
    #[inline]
    pub fn eval(self, a: f64) -> (f64, f64, f64) {
        match self {
            Activation::Tanh => {
                let t = a.tanh();
                let d = 1.0 - t * t;
                (t, d, -2.0 * t * d)
            }
            Activation::Softplus => {
                let (s, r) = (sigmoid(a), sigmoid(-a));
                (softplus(a), s, s * r)
            }
            Activation::Sigmoid => {
                let (s, r) = (sigmoid(a), sigmoid(-a));
                (s, s * r, s * r * (r - s))
            }
        }
    }

    /// (f(a), f′(a)) over any scalar (tangents carried to both).
    #[inline]
    fn apply<S: Scalar>(self, a: S) -> (S, S) {
        let (f, d, d2) = self.eval(a.re());
        (lift(a, f, d), lift(a, d, d2))
    }
}

/// The GAN loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MlpLoss {
    /// J = D(x_j) − D(G(z_i)) on the logit.
    Wasserstein,
    /// J = log σ(D(x_j)) + log(1 − σ(D(G(z_i)))) in log-sigmoid form.
    Vanilla,
}

impl MlpLoss {
    /// The job-file names.
    pub const NAMES: [&'static str; 2] = ["wasserstein", "vanilla"];

    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            MlpLoss::Wasserstein => "wasserstein",
            MlpLoss::Vanilla => "vanilla",
        }
    }

    /// From a job-file name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "wasserstein" => Some(MlpLoss::Wasserstein),
            "vanilla" => Some(MlpLoss::Vanilla),
            _ => None,
        }
    }

    /// (a, a′, a″) of the real-sample term a(ℓ) as a function of the logit:
    /// ℓ, or log σ(ℓ) = −softplus(−ℓ).
    #[inline]
    fn real(self, l: f64) -> (f64, f64, f64) {
        match self {
            MlpLoss::Wasserstein => (l, 1.0, 0.0),
            MlpLoss::Vanilla => {
                let (s, r) = (sigmoid(l), sigmoid(-l));
                (-softplus(-l), r, -s * r)
            }
        }
    }

    /// (c, c′, c″) of the latent-sample term: −ℓ, or log(1 − σ(ℓ)) = −softplus(ℓ).
    #[inline]
    fn fake(self, l: f64) -> (f64, f64, f64) {
        match self {
            MlpLoss::Wasserstein => (-l, -1.0, 0.0),
            MlpLoss::Vanilla => {
                let (s, r) = (sigmoid(l), sigmoid(-l));
                (-softplus(l), -s, -s * r)
            }
        }
    }
}

/// Everything about the `mlp` game except its data (the job's `[game]` table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpConfig {
    /// Generator hidden width h_g.
    pub hidden_g: usize,
    /// Discriminator hidden width h_d.
    pub hidden_d: usize,
    pub activation_g: Activation,
    pub activation_d: Activation,
    pub loss: MlpLoss,
    pub ridge_theta: f64,
    pub ridge_omega: f64,
}

impl MlpConfig {
    /// (dim θ, dim ω) for latent dimension d_z and data dimension d_x.
    pub fn dims(&self, dz: usize, dx: usize) -> (usize, usize) {
        let (hg, hd) = (self.hidden_g, self.hidden_d);
        (hg * (dz + 1) + dx * (hg + 1), hd * (dx + 2) + 1)
    }

    /// The fan-in of each coordinate of u for weights, 0 for biases, in the
    /// parameter layout of the module docs.
    fn fan_ins(&self, dz: usize, dx: usize) -> Vec<usize> {
        let (hg, hd) = (self.hidden_g, self.hidden_d);
        let mut f = Vec::new();
        f.extend(std::iter::repeat_n(dz, hg * dz));
        f.extend(std::iter::repeat_n(0, hg));
        f.extend(std::iter::repeat_n(hg, dx * hg));
        f.extend(std::iter::repeat_n(0, dx));
        f.extend(std::iter::repeat_n(dx, hd * dx));
        f.extend(std::iter::repeat_n(0, hd));
        f.extend(std::iter::repeat_n(hd, hd));
        f.push(0);
        f
    }

    /// A random starting point: every weight N(0, scale²/fan-in) (LeCun
    /// scaling, so pre-activations have variance ≈ scale² for unit inputs),
    /// every bias 0. `normal` supplies standard normal draws in layout order.
    pub fn random_init(&self, dz: usize, dx: usize, scale: f64, mut normal: impl FnMut() -> f64) -> Vec<f64> {
        self.fan_ins(dz, dx).into_iter().map(|fan| if fan == 0 { 0.0 } else { scale / (fan as f64).sqrt() * normal() }).collect()
    }
}

/// Offsets of the parameter blocks in u.
#[derive(Clone, Copy, Debug)]
struct Layout {
    w1: usize,
    b1: usize,
    w2: usize,
    b2: usize,
    v1: usize,
    c1: usize,
    v2: usize,
    c0: usize,
    dim: usize,
}

impl Layout {
    fn new(dz: usize, dx: usize, hg: usize, hd: usize) -> Self {
        let w1 = 0;
        let b1 = w1 + hg * dz;
        let w2 = b1 + hg;
        let b2 = w2 + dx * hg;
        let v1 = b2 + dx;
        let c1 = v1 + hd * dx;
        let v2 = c1 + hd;
        let c0 = v2 + hd;
        Layout { w1, b1, w2, b2, v1, c1, v2, c0, dim: c0 + 1 }
    }
}

/// The `mlp` game on latent samples z (dim d_z) and real samples x (dim d_x).
#[derive(Clone, Debug)]
pub struct Mlp {
    pub z: Samples,
    pub x: Samples,
    pub config: MlpConfig,
    lay: Layout,
}

thread_local! {
    /// Forward-pass buffer for [`Mlp::loss`], whose signature has no scratch;
    /// grown once per thread, then reused.
    static LOSS_BUF: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

impl Mlp {
    /// The game; panics if a hidden width is 0 (the job validates it).
    pub fn new(z: Samples, x: Samples, config: MlpConfig) -> Self {
        assert!(config.hidden_g > 0 && config.hidden_d > 0, "hidden widths must be positive");
        let lay = Layout::new(z.dim, x.dim, config.hidden_g, config.hidden_d);
        Mlp { z, x, config, lay }
    }

    fn dx(&self) -> usize {
        self.x.dim
    }

    /// Scratch slots the gradient code needs: 3 h_g + 2 d_x + 2 h_d.
    fn work(&self) -> usize {
        3 * self.config.hidden_g + 2 * self.dx() + 2 * self.config.hidden_d
    }

    /// G_θ(z) into `out` (length d_x); `h` (length h_g) receives σ_g(W₁z + b₁)
    /// and `dh` its derivative σ_g′.
    #[inline]
    fn generate<S: Scalar>(&self, u: &[S], z: &[f64], h: &mut [S], dh: &mut [S], out: &mut [S]) {
        let (l, hg, dz) = (&self.lay, self.config.hidden_g, self.z.dim);
        for r in 0..hg {
            let row = &u[l.w1 + r * dz..l.w1 + (r + 1) * dz];
            let mut a = u[l.b1 + r];
            for (w, zl) in row.iter().zip(z) {
                a += w.scale(*zl);
            }
            (h[r], dh[r]) = self.config.activation_g.apply(a);
        }
        for (o, g) in out.iter_mut().enumerate() {
            let row = &u[l.w2 + o * hg..l.w2 + (o + 1) * hg];
            let mut a = u[l.b2 + o];
            for (w, hr) in row.iter().zip(h.iter()) {
                a += *w * *hr;
            }
            *g = a;
        }
    }

    /// The discriminator logit at x (generic: x may carry tangents); `k`
    /// receives σ_d(V x + c) and `dk` its derivative.
    #[inline]
    fn logit<S: Scalar, X: Input<S>>(&self, u: &[S], x: &[X], k: &mut [S], dk: &mut [S]) -> S {
        let (l, dx) = (&self.lay, self.dx());
        let mut out = u[l.c0];
        for q in 0..self.config.hidden_d {
            let row = &u[l.v1 + q * dx..l.v1 + (q + 1) * dx];
            let mut a = u[l.c1 + q];
            for (w, xo) in row.iter().zip(x) {
                a += xo.times(*w);
            }
            (k[q], dk[q]) = self.config.activation_d.apply(a);
            out += u[l.v2 + q] * k[q];
        }
        out
    }

    /// Backpropagates dℓ (the weighted derivative of the loss term in the
    /// logit) into the discriminator's ω block; `x` is the input the
    /// forward pass saw. If `dx_out` is given it receives dℓ · ∂ℓ/∂x (for
    /// the generator's backward pass).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn back_disc<S: Scalar, X: Input<S>>(&self, u: &[S], x: &[X], dl: S, k: &[S], dk: &[S], g: &mut [S], mut dx_out: Option<&mut [S]>) {
        let (l, dx) = (&self.lay, self.dx());
        g[l.c0] += dl;
        if let Some(d) = dx_out.as_deref_mut() {
            d.iter_mut().for_each(|v| *v = S::cst(0.0));
        }
        for q in 0..self.config.hidden_d {
            g[l.v2 + q] += dl * k[q];
            let dp = dl * u[l.v2 + q] * dk[q];
            g[l.c1 + q] += dp;
            let base = l.v1 + q * dx;
            for o in 0..dx {
                g[base + o] += x[o].times(dp);
            }
            if let Some(d) = dx_out.as_deref_mut() {
                for o in 0..dx {
                    d[o] += dp * u[base + o];
                }
            }
        }
    }

    /// Adds w·∇c(θ, ω; z_i) (+ ridge), over any scalar; `buf` has `work()` slots.
    fn latent<S: Scalar + Input<S>>(&self, u: &[S], i: usize, w: f64, g: &mut [S], buf: &mut [S]) {
        let (l, hg, hd, dx, dz) = (self.lay, self.config.hidden_g, self.config.hidden_d, self.dx(), self.z.dim);
        let z = self.z.row(i);
        let (h, rest) = buf.split_at_mut(hg);
        let (dh, rest) = rest.split_at_mut(hg);
        let (back_h, rest) = rest.split_at_mut(hg);
        let (gen, rest) = rest.split_at_mut(dx);
        let (dgen, rest) = rest.split_at_mut(dx);
        let (k, rest) = rest.split_at_mut(hd);
        let dk = &mut rest[..hd];
        self.generate(u, z, h, dh, gen);
        let logit = self.logit::<S, S>(u, gen, k, dk);
        let (_, d1, d2) = self.config.loss.fake(logit.re());
        let dl = lift(logit, d1, d2).scale(w);
        self.back_disc::<S, S>(u, gen, dl, k, dk, g, Some(dgen));
        // Generator output layer, and ∂/∂h into back_h.
        back_h.iter_mut().for_each(|v| *v = S::cst(0.0));
        for o in 0..dx {
            g[l.b2 + o] += dgen[o];
            let base = l.w2 + o * hg;
            for r in 0..hg {
                g[base + r] += dgen[o] * h[r];
                back_h[r] += dgen[o] * u[base + r];
            }
        }
        for r in 0..hg {
            let dp = back_h[r] * dh[r];
            g[l.b1 + r] += dp;
            let base = l.w1 + r * dz;
            for (m, zm) in z.iter().enumerate() {
                g[base + m] += dp.scale(*zm);
            }
        }
        let (rt, ro) = (self.config.ridge_theta, self.config.ridge_omega);
        if rt != 0.0 {
            for k in 0..l.v1 {
                g[k] += u[k].scale(w * rt);
            }
        }
        if ro != 0.0 {
            for k in l.v1..l.dim {
                g[k] += u[k].scale(-w * ro);
            }
        }
    }

    /// Adds w·∇_ω a(ω; x_j), over any scalar; `buf` has at least 2 h_d slots.
    fn real<S: Scalar>(&self, u: &[S], j: usize, w: f64, g: &mut [S], buf: &mut [S]) {
        let hd = self.config.hidden_d;
        let x = self.x.row(j);
        let (k, rest) = buf.split_at_mut(hd);
        let dk = &mut rest[..hd];
        let logit = self.logit::<S, f64>(u, x, k, dk);
        let (_, d1, d2) = self.config.loss.real(logit.re());
        let dl = lift(logit, d1, d2).scale(w);
        self.back_disc::<S, f64>(u, x, dl, k, dk, g, None);
    }

    /// G_θ(z_i), the generator's i-th sample (length d_x). Allocates: for
    /// tests and analysis, not for hot loops (as are the three below).
    pub fn generated(&self, u: &[f64], i: usize) -> Vec<f64> {
        let hg = self.config.hidden_g;
        let (mut h, mut dh, mut out) = (vec![0.0; hg], vec![0.0; hg], vec![0.0; self.dx()]);
        self.generate(u, self.z.row(i), &mut h, &mut dh, &mut out);
        out
    }

    /// The discriminator logit D_ω(x) (u is the full parameter vector).
    pub fn disc_logit(&self, u: &[f64], x: &[f64]) -> f64 {
        let hd = self.config.hidden_d;
        let (mut k, mut dk) = (vec![0.0; hd], vec![0.0; hd]);
        self.logit::<f64, f64>(u, x, &mut k, &mut dk)
    }

    /// The latent term c(θ, ω; z_i) plus the ridge terms, so that
    /// Φ = mean_i latent_term + mean_j real_term and ∇ latent_term is what
    /// `add_latent_grad` adds at w = 1.
    pub fn latent_term(&self, u: &[f64], i: usize) -> f64 {
        let mut buf = vec![0.0; self.work()];
        self.latent_value(u, i, &mut buf) + self.ridge_value(u)
    }

    /// The real term a(ω; x_j).
    pub fn real_term(&self, u: &[f64], j: usize) -> f64 {
        let mut buf = vec![0.0; self.work()];
        self.real_value(u, j, &mut buf)
    }

    fn latent_value(&self, u: &[f64], i: usize, buf: &mut [f64]) -> f64 {
        let (hg, hd, dx) = (self.config.hidden_g, self.config.hidden_d, self.dx());
        let (h, rest) = buf.split_at_mut(hg);
        let (dh, rest) = rest.split_at_mut(hg);
        let (gen, rest) = rest.split_at_mut(dx);
        let (k, rest) = rest.split_at_mut(hd);
        self.generate(u, self.z.row(i), h, dh, gen);
        let logit = self.logit::<f64, f64>(u, gen, k, &mut rest[..hd]);
        self.config.loss.fake(logit).0
    }

    fn real_value(&self, u: &[f64], j: usize, buf: &mut [f64]) -> f64 {
        let hd = self.config.hidden_d;
        let (k, rest) = buf.split_at_mut(hd);
        let logit = self.logit::<f64, f64>(u, self.x.row(j), k, &mut rest[..hd]);
        self.config.loss.real(logit).0
    }

    fn ridge_value(&self, u: &[f64]) -> f64 {
        let split = self.lay.v1;
        let rt: f64 = u[..split].iter().map(|a| a * a).sum();
        let ro: f64 = u[split..].iter().map(|a| a * a).sum();
        0.5 * self.config.ridge_theta * rt - 0.5 * self.config.ridge_omega * ro
    }
}

/// f(x) over any scalar from f, f′ at x's value: the first-order chain rule
/// f(x₀) + f′(x₀)(x − x₀), exact for dual numbers (ε² = 0) and for `f64`
/// (where x − x₀ = 0).
#[inline]
pub fn lift<S: Scalar>(x: S, f: f64, df: f64) -> S {
    S::cst(f) + (x - S::cst(x.re())).scale(df)
}

/// log(1 + eᵃ) without overflow or cancellation.
#[inline]
pub fn softplus(a: f64) -> f64 {
    a.max(0.0) + (-a.abs()).exp().ln_1p()
}

/// 1 / (1 + e⁻ᵃ) without overflow.
#[inline]
pub fn sigmoid(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

/// An input coordinate of a layer: plain data (`f64`, no tangent) or a
/// generated value carrying tangents; `times(w)` is w·x.
trait Input<S>: Copy {
    fn times(self, w: S) -> S;
}

impl<S: Scalar> Input<S> for f64 {
    #[inline]
    fn times(self, w: S) -> S {
        w.scale(self)
    }
}

impl Input<Dual> for Dual {
    #[inline]
    fn times(self, w: Dual) -> Dual {
        w * self
    }
}

impl Game for Mlp {
    fn dim_theta(&self) -> usize {
        self.lay.v1
    }
    fn dim_omega(&self) -> usize {
        self.lay.dim - self.lay.v1
    }
    fn n_latent(&self) -> usize {
        self.z.n
    }
    fn n_real(&self) -> usize {
        self.x.n
    }
    fn scratch(&self) -> Scratch {
        Scratch::new(self.lay.dim, self.work())
    }

    fn add_latent_grad(&self, u: &[f64], i: usize, w: f64, g: &mut [f64], s: &mut Scratch) {
        self.latent(u, i, w, g, &mut s.f);
    }

    fn add_real_grad(&self, u: &[f64], j: usize, w: f64, g: &mut [f64], s: &mut Scratch) {
        self.real(u, j, w, g, &mut s.f);
    }

    fn grad_jvp2(&self, u: &[f64], v1: &[f64], v2: &[f64], g: &mut [f64], dg1: &mut [f64], dg2: &mut [f64], s: &mut Scratch) {
        load_dual(u, v1, v2, s);
        let (n, m) = (self.z.n, self.x.n);
        let Scratch { d, ud, gd, .. } = s;
        for i in 0..n {
            self.latent(ud, i, 1.0 / n as f64, gd, d);
        }
        for j in 0..m {
            self.real(ud, j, 1.0 / m as f64, gd, d);
        }
        for k in 0..g.len() {
            g[k] = gd[k].v;
            dg1[k] = gd[k].d;
            dg2[k] = gd[k].d2;
        }
    }

    fn loss(&self, u: &[f64]) -> f64 {
        LOSS_BUF.with(|b| {
            let mut buf = b.borrow_mut();
            if buf.len() < self.work() {
                buf.resize(self.work(), 0.0);
            }
            let real: f64 = (0..self.x.n).map(|j| self.real_value(u, j, &mut buf)).sum();
            let fake: f64 = (0..self.z.n).map(|i| self.latent_value(u, i, &mut buf)).sum();
            real / self.x.n as f64 + fake / self.z.n as f64 + self.ridge_value(u)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::game::testing::*;
    use crate::rng::{normal, stream, Role};
    use crate::sde::NoiseFactor;

    /// A small random instance: d_z = 2, d_x = 3, h_g = 4, h_d = 3, N = 7, M = 6
    /// (dim θ = 4·3 + 3·5 = 27, dim ω = 3·5 + 1 = 16).
    pub fn example(act_g: Activation, act_d: Activation, loss: MlpLoss, ridge: f64) -> Mlp {
        let mut r = stream(41, 0, Role::Data(0), 0);
        let z = Samples::from_rows(&(0..7).map(|_| (0..2).map(|_| normal(&mut r)).collect()).collect::<Vec<_>>());
        let x = Samples::from_rows(&(0..6).map(|_| (0..3).map(|_| normal(&mut r) + 0.5).collect()).collect::<Vec<_>>());
        let config = MlpConfig { hidden_g: 4, hidden_d: 3, activation_g: act_g, activation_d: act_d, loss, ridge_theta: ridge, ridge_omega: 0.5 * ridge };
        Mlp::new(z, x, config)
    }

    /// A point and a direction with entries of order 1 (the point ≈ 0.8 N(0, 1)).
    fn point(game: &Mlp, salt: u64) -> (Vec<f64>, Vec<f64>) {
        let mut r = stream(43, 0, Role::Data(3), salt);
        let u = (0..game.dim()).map(|_| 0.8 * normal(&mut r)).collect();
        let v = (0..game.dim()).map(|_| normal(&mut r)).collect();
        (u, v)
    }

    /// Every (generator, discriminator) activation pair, ridge and loss.
    fn all_games() -> Vec<Mlp> {
        let mut out = Vec::new();
        for loss in [MlpLoss::Wasserstein, MlpLoss::Vanilla] {
            for (k, a) in Activation::ALL.into_iter().enumerate() {
                // Each activation on each side, paired with the next one.
                let b = Activation::ALL[(k + 1) % 3];
                out.push(example(a, b, loss, 0.0));
                out.push(example(b, a, loss, 0.3));
            }
        }
        out
    }

    /// Max relative deviation of the gradient `grad` of `f` at u from central differences.
    fn fd_error(u: &[f64], grad: &[f64], f: impl Fn(&[f64]) -> f64) -> f64 {
        let h = 1e-5;
        let scale = grad.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        assert!(scale > 0.0);
        (0..u.len())
            .map(|k| {
                let (mut up, mut um) = (u.to_vec(), u.to_vec());
                up[k] += h;
                um[k] -= h;
                ((f(&up) - f(&um)) / (2.0 * h) - grad[k]).abs() / scale
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn activations_and_loss_terms_have_consistent_derivatives() {
        let h = 1e-5;
        for a in [-3.0, -0.4, 0.0, 0.7, 2.5] {
            for act in Activation::ALL {
                let (_, d, d2) = act.eval(a);
                let fd = (act.eval(a + h).0 - act.eval(a - h).0) / (2.0 * h);
                let fd2 = (act.eval(a + h).1 - act.eval(a - h).1) / (2.0 * h);
                assert!((fd - d).abs() < 1e-9 && (fd2 - d2).abs() < 1e-9, "{act:?} at {a}");
            }
            for loss in [MlpLoss::Wasserstein, MlpLoss::Vanilla] {
                for f in [MlpLoss::real, MlpLoss::fake] {
                    let (_, d, d2) = f(loss, a);
                    assert!(((f(loss, a + h).0 - f(loss, a - h).0) / (2.0 * h) - d).abs() < 1e-9, "{loss:?} at {a}");
                    assert!(((f(loss, a + h).1 - f(loss, a - h).1) / (2.0 * h) - d2).abs() < 1e-9, "{loss:?} at {a}");
                }
            }
        }
        // The vanilla terms are the logs they stand for.
        let s = 1.0 / (1.0 + (-0.7f64).exp());
        assert!((MlpLoss::Vanilla.real(0.7).0 - s.ln()).abs() < 1e-15);
        assert!((MlpLoss::Vanilla.fake(0.7).0 - (1.0 - s).ln()).abs() < 1e-15);
    }

    #[test]
    fn per_sample_gradients_match_central_differences() {
        for (c, game) in all_games().iter().enumerate() {
            let (u, _) = point(game, c as u64);
            let d = game.dim();
            let mut s = game.scratch();
            for i in 0..game.n_latent() {
                let mut g = vec![0.0; d];
                game.add_latent_grad(&u, i, 1.0, &mut g, &mut s);
                let err = fd_error(&u, &g, |p| game.latent_term(p, i));
                assert!(err < 1e-6, "{:?} latent {i}: {err:e}", game.config);
            }
            for j in 0..game.n_real() {
                let mut g = vec![0.0; d];
                game.add_real_grad(&u, j, 1.0, &mut g, &mut s);
                assert!(g[..game.dim_theta()].iter().all(|x| *x == 0.0), "the real part has no θ gradient");
                let err = fd_error(&u, &g, |p| game.real_term(p, j));
                assert!(err < 1e-6, "{:?} real {j}: {err:e}", game.config);
            }
            // The weight w scales the added gradient, and adds to what is there.
            let (mut g1, mut g2) = (vec![1.0; d], vec![0.0; d]);
            game.add_latent_grad(&u, 2, 0.25, &mut g1, &mut s);
            game.add_latent_grad(&u, 2, 1.0, &mut g2, &mut s);
            for k in 0..d {
                assert!((g1[k] - 1.0 - 0.25 * g2[k]).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn full_gradient_and_loss_agree_with_differences() {
        for (c, game) in all_games().iter().enumerate() {
            let (u, _) = point(game, 100 + c as u64);
            let err = grad_vs_loss_fd(game, &u);
            assert!(err < 1e-6, "{:?}: {err:e}", game.config);
            // Φ is the mean of the per-sample terms.
            let want = (0..game.n_latent()).map(|i| game.latent_term(&u, i)).sum::<f64>() / game.n_latent() as f64
                + (0..game.n_real()).map(|j| game.real_term(&u, j)).sum::<f64>() / game.n_real() as f64;
            assert!((game.loss(&u) - want).abs() < 1e-12 * (1.0 + want.abs()));
        }
    }

    #[test]
    fn jvps_match_central_differences_in_both_directions() {
        for (c, game) in all_games().iter().enumerate() {
            let (u, v) = point(game, 200 + c as u64);
            let (_, w) = point(game, 300 + c as u64);
            // jvp_vs_fd checks Dg[v] against differences and the two-direction pass (v, reversed v).
            for dir in [&v, &w] {
                let err = jvp_vs_fd(game, &u, dir);
                assert!(err < 1e-6, "{:?}: {err:e}", game.config);
            }
            // The second tangent of one pass against differences along w directly.
            let d = game.dim();
            let mut s = game.scratch();
            let (mut g, mut d1, mut d2) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
            game.grad_jvp2(&u, &v, &w, &mut g, &mut d1, &mut d2, &mut s);
            let h = 1e-5;
            let up: Vec<f64> = u.iter().zip(&w).map(|(a, b)| a + h * b).collect();
            let um: Vec<f64> = u.iter().zip(&w).map(|(a, b)| a - h * b).collect();
            let (mut gp, mut gm) = (vec![0.0; d], vec![0.0; d]);
            game.full_grad(&up, &mut gp, &mut s);
            game.full_grad(&um, &mut gm, &mut s);
            let scale = d2.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let err = (0..d).map(|k| ((gp[k] - gm[k]) / (2.0 * h) - d2[k]).abs() / scale).fold(0.0, f64::max);
            assert!(err < 1e-6, "{:?} second direction: {err:e}", game.config);
        }
    }

    #[test]
    fn hessian_vector_products_are_symmetric_in_the_loss_hessian() {
        // g = (∇_θΦ, ∇_ωΦ) is the gradient of Φ, so its Jacobian is the
        // symmetric Hessian: wᵀ (Dg v) = vᵀ (Dg w).
        for (c, game) in all_games().iter().enumerate() {
            let (u, v) = point(game, 400 + c as u64);
            let (_, w) = point(game, 500 + c as u64);
            let d = game.dim();
            let mut s = game.scratch();
            let (mut g, mut hv, mut hw) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
            game.grad_jvp2(&u, &v, &w, &mut g, &mut hv, &mut hw, &mut s);
            let a: f64 = w.iter().zip(&hv).map(|(x, y)| x * y).sum();
            let b: f64 = v.iter().zip(&hw).map(|(x, y)| x * y).sum();
            assert!((a - b).abs() < 1e-10 * (1.0 + a.abs()), "{:?}: {a} vs {b}", game.config);
        }
    }

    #[test]
    fn block_factor_reproduces_blockdiag_covariance() {
        for loss in [MlpLoss::Wasserstein, MlpLoss::Vanilla] {
            let game = example(Activation::Tanh, Activation::Softplus, loss, 0.05);
            // A point with unsaturated logits (at saturation the vanilla latent part fades).
            let (u, _) = point(&game, 7);
            let u: Vec<f64> = u.iter().map(|x| 0.5 * x).collect();
            let (block, cross, full) = sample_covariances(&game, &u);
            let cross_norm = cross.data.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let scale = block.data.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            // A factor reusing one normal for both latent blocks would put this
            // cross block into FFᵀ: far above the 1e-12 tolerance below.
            assert!(cross_norm > 1e-3 * scale, "the test needs a θ–ω cross covariance, got {cross_norm:e} against {scale:e}");
            let ff = NoiseFactor::Block.covariance(&game, &u);
            let err = ff.data.iter().zip(&block.data).fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
            assert!(err <= 1e-12 * scale, "block: FFᵀ deviates by {err:e}");
            let ff = NoiseFactor::Full.covariance(&game, &u);
            let err = ff.data.iter().zip(&full.data).fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
            assert!(err <= 1e-12 * scale, "full: FFᵀ deviates by {err:e}");
        }
    }

    #[test]
    fn vanilla_loss_is_finite_for_huge_logits() {
        for act_d in Activation::ALL {
            let game = example(Activation::Tanh, act_d, MlpLoss::Vanilla, 0.0);
            let (mut u, v) = point(&game, 9);
            let c0 = game.lay.c0;
            for big in [800.0, -800.0, 1e6, -1e6] {
                u[c0] = big;
                let loss = game.loss(&u);
                assert!(loss.is_finite(), "{act_d:?}: loss {loss} at c₀ = {big}");
                // One of log σ(ℓ), log(1 − σ(ℓ)) is ≈ −|ℓ|.
                assert!(loss < -0.5 * big.abs() && loss > -2.0 * big.abs() - 1e3, "{act_d:?}: loss {loss} at c₀ = {big}");
                let d = game.dim();
                let mut s = game.scratch();
                let (mut g, mut dg1, mut dg2) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
                game.grad_jvp2(&u, &v, &v, &mut g, &mut dg1, &mut dg2, &mut s);
                assert!(g.iter().chain(&dg1).chain(&dg2).all(|x| x.is_finite()), "{act_d:?}: non-finite gradient at c₀ = {big}");
                // Saturated: the gradient of the saturated side is exactly 0 or ±1 per sample in ℓ.
                let mut gs = vec![0.0; d];
                game.full_grad(&u, &mut gs, &mut s);
                assert!(gs.iter().all(|x| x.is_finite()));
                // Huge pre-activations as well.
                let mut u2 = u.clone();
                u2.iter_mut().for_each(|x| *x *= 1e3);
                assert!(game.loss(&u2).is_finite());
                game.full_grad(&u2, &mut gs, &mut s);
                assert!(gs.iter().all(|x| x.is_finite()), "{act_d:?}: non-finite gradient at a huge point");
            }
        }
        assert_eq!(softplus(800.0), 800.0);
        assert_eq!(softplus(-800.0), 0.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-16);
        assert_eq!(sigmoid(-800.0), 0.0);
        assert_eq!(sigmoid(800.0), 1.0);
    }

    #[test]
    fn layout_and_random_init() {
        let game = example(Activation::Tanh, Activation::Tanh, MlpLoss::Wasserstein, 0.0);
        assert_eq!((game.dim_theta(), game.dim_omega()), game.config.dims(2, 3));
        assert_eq!((game.dim_theta(), game.dim_omega()), (27, 16));
        // Generator: u[W₁ row r] · z + b₁ ... read back from the layout.
        let u: Vec<f64> = (0..game.dim()).map(|k| 0.01 * k as f64 - 0.2).collect();
        let z = game.z.row(1);
        let l = game.lay;
        let h: Vec<f64> = (0..4).map(|r| (u[l.b1 + r] + u[l.w1 + 2 * r] * z[0] + u[l.w1 + 2 * r + 1] * z[1]).tanh()).collect();
        let gen: Vec<f64> = (0..3).map(|o| u[l.b2 + o] + (0..4).map(|r| u[l.w2 + 4 * o + r] * h[r]).sum::<f64>()).collect();
        let got = game.generated(&u, 1);
        for o in 0..3 {
            assert!((got[o] - gen[o]).abs() < 1e-15);
        }
        let k: Vec<f64> = (0..3).map(|q| (u[l.c1 + q] + (0..3).map(|o| u[l.v1 + 3 * q + o] * gen[o]).sum::<f64>()).tanh()).collect();
        let logit = u[l.c0] + (0..3).map(|q| u[l.v2 + q] * k[q]).sum::<f64>();
        assert!((game.disc_logit(&u, &gen) - logit).abs() < 1e-15);
        assert_eq!(l.c0, game.dim() - 1);
        // Random init: biases 0, weights scaled by 1/√fan-in.
        let mut r = stream(5, 0, Role::Data(2), 0);
        let init = game.config.random_init(2, 3, 1.0, || normal(&mut r));
        assert_eq!(init.len(), game.dim());
        for blk in [l.b1..l.w2, l.b2..l.v1, l.c1..l.v2, l.c0..l.dim] {
            assert!(init[blk].iter().all(|x| *x == 0.0));
        }
        assert!(init[l.w1..l.b1].iter().all(|x| *x != 0.0));
    }
}
