//! Stochastic gradient algorithms (DESIGN §1): ALT and SML chains with
//! minibatches of B i.i.d. pairs (I_k, J_k), uniform with replacement.

use rand::Rng;

use crate::game::{Game, Scratch};
use crate::job::Scheme;
use crate::rng::index;

/// Per-thread state of one SGA chain, allocated once.
pub struct SgaWork {
    pub u: Vec<f64>,
    g: Vec<f64>,
    scratch: Scratch,
}

impl SgaWork {
    /// Work space for `game`.
    pub fn new(game: &dyn Game) -> Self {
        SgaWork { u: vec![0.0; game.dim()], g: vec![0.0; game.dim()], scratch: game.scratch() }
    }
}

/// Where a chain left the bounded region.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    /// The step (1-based) after which |u| was not finite or above the bound.
    pub step: usize,
}

/// Checks |u| ≤ bound with every entry finite.
#[inline]
pub fn in_bounds(u: &[f64], bound: f64) -> bool {
    let n2: f64 = u.iter().map(|a| a * a).sum();
    n2.is_finite() && n2 <= bound * bound
}

/// Adds the minibatch gradient g^B(u) = (1/B) Σ_k g^{I_k J_k}(u) to g (zeroed first).
#[inline]
fn minibatch_grad<R: Rng>(game: &dyn Game, u: &[f64], batch: usize, rng: &mut R, g: &mut [f64], s: &mut Scratch) {
    g.iter_mut().for_each(|x| *x = 0.0);
    let (n, m) = (game.n_latent(), game.n_real());
    let w = 1.0 / batch as f64;
    for _ in 0..batch {
        let i = index(rng, n);
        let j = index(rng, m);
        game.add_latent_grad(u, i, w, g, s);
        game.add_real_grad(u, j, w, g, s);
    }
}

/// One step of the scheme at learning rate η, in place on `work.u`.
/// ALT: ω ← ω + η g_ω^B(θ, ω); θ ← θ − η g_θ^{B̄}(θ, ω_new) with B̄ independent
/// (g_θ depends on the latent index only, so B̄ draws B latent indices).
/// SML: both players from one batch at the old point.
#[inline]
pub fn step<R: Rng>(game: &dyn Game, scheme: Scheme, eta: f64, batch: usize, rng: &mut R, work: &mut SgaWork) {
    let dt = game.dim_theta();
    let SgaWork { u, g, scratch } = work;
    minibatch_grad(game, u, batch, rng, g, scratch);
    match scheme {
        Scheme::Sml => {
            for k in 0..dt {
                u[k] -= eta * g[k];
            }
            for k in dt..u.len() {
                u[k] += eta * g[k];
            }
        }
        Scheme::Alt => {
            for k in dt..u.len() {
                u[k] += eta * g[k];
            }
            g.iter_mut().for_each(|x| *x = 0.0);
            let n = game.n_latent();
            let w = 1.0 / batch as f64;
            for _ in 0..batch {
                let i = index(rng, n);
                game.add_latent_grad(u, i, w, g, scratch);
            }
            for k in 0..dt {
                u[k] -= eta * g[k];
            }
        }
    }
}

/// Runs one chain from `init` for `steps` steps and calls `record(r, u)` after
/// step `record_steps[r]`; stops at the first step that leaves |u| ≤ bound.
#[allow(clippy::too_many_arguments)]
pub fn run_chain<R: Rng>(
    game: &dyn Game,
    scheme: Scheme,
    eta: f64,
    batch: usize,
    init: &[f64],
    steps: usize,
    record_steps: &[usize],
    bound: f64,
    rng: &mut R,
    work: &mut SgaWork,
    mut record: impl FnMut(usize, &[f64]),
) -> Result<(), Divergence> {
    work.u.copy_from_slice(init);
    let mut next = 0;
    for n in 1..=steps {
        step(game, scheme, eta, batch, rng, work);
        if !in_bounds(&work.u, bound) {
            return Err(Divergence { step: n });
        }
        while next < record_steps.len() && record_steps[next] == n {
            record(next, &work.u);
            next += 1;
        }
    }
    Ok(())
}
