//! Stochastic gradient algorithms (DESIGN §1): ALT and SML chains with
//! minibatches of B i.i.d. pairs (I_k, J_k), uniform with replacement, and
//! the learning-rate scheduler of the paper's Remark 4 for SML chains.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::Rng;

use crate::game::{Game, Scratch};
use crate::job::Scheme;
use crate::rng::index;

/// Per-thread state of one SGA chain, allocated once.
pub struct SgaWork {
    pub u: Vec<f64>,
    g: Vec<f64>,
    /// One per-pair gradient g^{I_k J_k} (Remark 4 scheduler only).
    pair: Vec<f64>,
    /// Running mean of the per-pair gradients (Remark 4 scheduler only).
    mean: Vec<f64>,
    scratch: Scratch,
}

impl SgaWork {
    /// Work space for `game`.
    pub fn new(game: &dyn Game) -> Self {
        let d = game.dim();
        SgaWork { u: vec![0.0; d], g: vec![0.0; d], pair: vec![0.0; d], mean: vec![0.0; d], scratch: game.scratch() }
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

/// θ ← θ − η g_θ, ω ← ω + η g_ω; shared by `step` and `sml_step_scheduled`
/// so that the two cannot drift apart in rounding.
#[inline]
fn sml_update(u: &mut [f64], g: &[f64], eta: f64, dt: usize) {
    for k in 0..dt {
        u[k] -= eta * g[k];
    }
    for k in dt..u.len() {
        u[k] += eta * g[k];
    }
}

/// One step of the scheme at learning rate η, in place on `work.u`.
/// ALT: ω ← ω + η g_ω^B(θ, ω); θ ← θ − η g_θ^{B̄}(θ, ω_new) with B̄ independent
/// (g_θ depends on the latent index only, so B̄ draws B latent indices).
/// SML: both players from one batch at the old point.
#[inline]
pub fn step<R: Rng>(game: &dyn Game, scheme: Scheme, eta: f64, batch: usize, rng: &mut R, work: &mut SgaWork) {
    let dt = game.dim_theta();
    let SgaWork { u, g, scratch, .. } = work;
    minibatch_grad(game, u, batch, rng, g, scratch);
    match scheme {
        Scheme::Sml => sml_update(u, g, eta, dt),
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
/// step `record_steps[r]`; stops at the first step that leaves |u| ≤ bound
/// (an error) or when `stop` is raised (`Ok(false)`: the chain is incomplete).
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
    stop: &AtomicBool,
    mut record: impl FnMut(usize, &[f64]),
) -> Result<bool, Divergence> {
    work.u.copy_from_slice(init);
    let mut next = 0;
    for n in 1..=steps {
        // A long chain must not delay a requested stop (a batch job's time limit is near).
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        step(game, scheme, eta, batch, rng, work);
        if !in_bounds(&work.u, bound) {
            return Err(Divergence { step: n });
        }
        while next < record_steps.len() && record_steps[next] == n {
            record(next, &work.u);
            next += 1;
        }
    }
    Ok(true)
}

/// The learning-rate schedule of the paper's Remark 4 for SML chains.
///
/// With β = 2B/η at the current η and Σ̂_θ, Σ̂_ω the unbiased minibatch
/// covariances of the per-pair gradients g^{I_k J_k}, the rule is
///
/// ```text
/// if |(θᵀg_θ^B − ωᵀg_ω^B) / (β⁻¹ Tr(Σ̂_θ + Σ̂_ω)) − 1| < ε  then  η ← (1 − δ)η.
/// ```
///
/// The ratio estimates the two sides of FDR2 (Theorem 5), which holds at
/// stationarity; the rule lowers η once the chain looks stationary at the
/// current η. `window` > 1 is an extension of the paper's rule (window = 1):
/// numerator and denominator are each averaged over the last `window` steps,
/// the current one included (fewer until that many steps exist), and the
/// ratio of the averages is tested, which damps the one-batch noise of the
/// ratio. Build it with [`Remark4::new`] to get the ranges checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Remark4 {
    /// ε > 0, the tolerance on |ratio − 1|.
    pub epsilon: f64,
    /// δ ∈ (0, 1), the relative decrease of η when the rule fires.
    pub delta: f64,
    /// Number of steps averaged (≥ 1; 1 is the paper's rule).
    pub window: usize,
}

impl Remark4 {
    /// The Remark 4 rule for a chain of batch size `batch`, or a message
    /// naming the parameter out of range: ε finite and > 0, 0 < δ < 1,
    /// window ≥ 1, and B ≥ 2 because Σ̂ is the unbiased covariance (it
    /// divides by B − 1).
    pub fn new(epsilon: f64, delta: f64, window: usize, batch: usize) -> Result<Remark4, String> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(format!("Remark 4 scheduler: epsilon must be finite and > 0 (the tolerance on |ratio - 1|), got {epsilon}"));
        }
        if !(delta > 0.0 && delta < 1.0) {
            return Err(format!("Remark 4 scheduler: delta must satisfy 0 < delta < 1 (eta <- (1 - delta) eta must shrink eta and keep it > 0), got {delta}"));
        }
        if window == 0 {
            return Err("Remark 4 scheduler: window must be >= 1 (the number of steps averaged; 1 = no averaging), got 0".to_string());
        }
        if batch < 2 {
            return Err(format!(
                "Remark 4 scheduler: needs batch size B >= 2 because the minibatch covariance is the unbiased one (divided by B - 1), got B = {batch}"
            ));
        }
        Ok(Remark4 { epsilon, delta, window })
    }
}

/// Per-chain state of the Remark 4 scheduler: the last `window` numerators
/// θᵀg_θ^B − ωᵀg_ω^B and denominators β⁻¹ Tr(Σ̂_θ + Σ̂_ω), allocated once and
/// reused across chains through [`ScheduleState::reset`].
///
/// Each stored denominator carries the β = 2B/η of its own step, i.e. the η
/// that was current when it was computed.
#[derive(Clone, Debug)]
pub struct ScheduleState {
    num: Vec<f64>,
    den: Vec<f64>,
    /// Slot the next step writes to.
    head: usize,
    /// Number of filled slots (≤ window).
    len: usize,
    numerator: f64,
    denominator: f64,
    ratio: f64,
}

impl ScheduleState {
    /// An empty state for `rule.window` steps.
    pub fn new(rule: &Remark4) -> Self {
        assert!(rule.window >= 1, "Remark 4 window must be >= 1");
        ScheduleState { num: vec![0.0; rule.window], den: vec![0.0; rule.window], head: 0, len: 0, numerator: f64::NAN, denominator: f64::NAN, ratio: f64::NAN }
    }

    /// Forgets all steps, for the next chain.
    pub fn reset(&mut self) {
        self.head = 0;
        self.len = 0;
        self.numerator = f64::NAN;
        self.denominator = f64::NAN;
        self.ratio = f64::NAN;
    }

    /// The (window-averaged) numerator θᵀg_θ^B − ωᵀg_ω^B of Remark 4 that
    /// entered the last decision; NaN before the first step.
    pub fn numerator(&self) -> f64 {
        self.numerator
    }

    /// The (window-averaged) denominator β⁻¹ Tr(Σ̂_θ + Σ̂_ω) of Remark 4 that
    /// entered the last decision; NaN before the first step.
    pub fn denominator(&self) -> f64 {
        self.denominator
    }

    /// numerator / denominator, the ratio Remark 4 compares with 1; NaN
    /// before the first step, ±∞ or NaN when every pair of a batch (or
    /// window) gave the same gradient, and then the rule does not fire.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Records one step and returns the ratio of the averages over the
    /// window. The sums run oldest to newest so that they do not depend on
    /// where the ring buffer happens to start.
    fn push(&mut self, num: f64, den: f64) -> f64 {
        let w = self.num.len();
        self.num[self.head] = num;
        self.den[self.head] = den;
        self.head = (self.head + 1) % w;
        self.len = (self.len + 1).min(w);
        let oldest = (self.head + w - self.len) % w;
        let (mut sn, mut sd) = (0.0, 0.0);
        for k in 0..self.len {
            let s = (oldest + k) % w;
            sn += self.num[s];
            sd += self.den[s];
        }
        let l = self.len as f64;
        self.numerator = sn / l;
        self.denominator = sd / l;
        self.ratio = self.numerator / self.denominator;
        self.ratio
    }
}

/// One SML step at the current η with the Remark 4 scheduler: the step is
/// `step(game, Scheme::Sml, *eta, ...)` (same draws in the same order, same
/// rounding, so a rule that never fires leaves the chain bit-identical to
/// the plain one); then the rule is evaluated on this step's batch at the
/// point before the step (window-averaged as [`Remark4`] says) and, if it
/// holds, `*eta` becomes (1 − δ)·η for the following steps. Returns whether
/// η changed. `state` must have been made for `rule.window` and B ≥ 2.
///
/// Tr(Σ̂_θ + Σ̂_ω) = Σ_k |g^{I_k J_k} − ḡ|² / (B − 1) over all coordinates.
/// Cost: each per-pair gradient is evaluated twice, once accumulated into
/// g^B exactly as `step` does and once alone, because forming g^B from the
/// stand-alone pair gradients would round differently from the plain chain.
#[allow(clippy::too_many_arguments)]
pub fn sml_step_scheduled<R: Rng>(
    game: &dyn Game,
    eta: &mut f64,
    batch: usize,
    rng: &mut R,
    work: &mut SgaWork,
    rule: &Remark4,
    state: &mut ScheduleState,
) -> bool {
    assert!(batch >= 2, "Remark 4 needs B >= 2");
    assert_eq!(state.num.len(), rule.window, "ScheduleState made for another window");
    let dt = game.dim_theta();
    let (n, m) = (game.n_latent(), game.n_real());
    let w = 1.0 / batch as f64;
    let SgaWork { u, g, pair, mean, scratch } = work;
    g.iter_mut().for_each(|x| *x = 0.0);
    mean.iter_mut().for_each(|x| *x = 0.0);
    let mut m2 = 0.0;
    for k in 0..batch {
        let i = index(rng, n);
        let j = index(rng, m);
        game.add_latent_grad(u, i, w, g, scratch);
        game.add_real_grad(u, j, w, g, scratch);
        pair.iter_mut().for_each(|x| *x = 0.0);
        game.add_latent_grad(u, i, 1.0, pair, scratch);
        game.add_real_grad(u, j, 1.0, pair, scratch);
        // Welford's update: Σ|g_k|² − B|ḡ|² cancels badly when the mean
        // gradient is large against the spread (far from equilibrium).
        let c = 1.0 / (k + 1) as f64;
        for (mk, &pk) in mean.iter_mut().zip(pair.iter()) {
            let d = pk - *mk;
            *mk += c * d;
            m2 += d * (pk - *mk);
        }
    }
    let num = u[..dt].iter().zip(&g[..dt]).map(|(a, b)| a * b).sum::<f64>() - u[dt..].iter().zip(&g[dt..]).map(|(a, b)| a * b).sum::<f64>();
    // β⁻¹ = η / (2B) with the η of this step.
    let den = *eta / (2.0 * batch as f64) * (m2 / (batch - 1) as f64);
    sml_update(u, g, *eta, dt);
    let ratio = state.push(num, den);
    if (ratio - 1.0).abs() < rule.epsilon {
        *eta *= 1.0 - rule.delta;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::lq::tests::example;
    use crate::rng::{stream, Role};

    const INIT: [f64; 4] = [0.3, -0.2, 0.8, 0.1];

    fn chain_rng() -> rand_pcg::Pcg64 {
        stream(5, 0, Role::Sga(0), 1)
    }

    #[test]
    fn a_raised_stop_ends_the_chain_at_the_next_step() {
        let game = example();
        let mut w = SgaWork::new(&game);
        let stop = AtomicBool::new(false);
        let records: Vec<usize> = (1..=50).collect();
        let mut seen = Vec::new();
        let done = run_chain(&game, Scheme::Alt, 0.1, 4, &INIT, 50, &records, 1e6, &mut chain_rng(), &mut w, &stop, |r, _| {
            seen.push(r);
            if r == 9 {
                stop.store(true, Ordering::Relaxed);
            }
        });
        // Records 0..=9 are steps 1..=10; the stop raised after step 10 ends the chain before step 11.
        assert_eq!(done, Ok(false));
        assert_eq!(seen, (0..=9).collect::<Vec<_>>());
        stop.store(false, Ordering::Relaxed);
        let done = run_chain(&game, Scheme::Alt, 0.1, 4, &INIT, 50, &records, 1e6, &mut chain_rng(), &mut w, &stop, |_, _| {});
        assert_eq!(done, Ok(true));
    }

    #[test]
    fn scheduler_with_zero_epsilon_is_the_plain_sml_chain() {
        let game = example();
        let g: &dyn Game = &game;
        let rule = Remark4 { epsilon: 0.0, delta: 0.5, window: 3 };
        let mut state = ScheduleState::new(&rule);
        let (mut a, mut b) = (SgaWork::new(g), SgaWork::new(g));
        a.u.copy_from_slice(&INIT);
        b.u.copy_from_slice(&INIT);
        let (mut ra, mut rb) = (chain_rng(), chain_rng());
        let mut eta = 0.1;
        for n in 1..=200 {
            step(g, Scheme::Sml, 0.1, 4, &mut ra, &mut a);
            assert!(!sml_step_scheduled(g, &mut eta, 4, &mut rb, &mut b, &rule, &mut state), "step {n}: eta changed with epsilon = 0");
            assert_eq!(eta.to_bits(), 0.1f64.to_bits());
            let (ua, ub): (Vec<u64>, Vec<u64>) = (a.u.iter().map(|x| x.to_bits()).collect(), b.u.iter().map(|x| x.to_bits()).collect());
            assert_eq!(ua, ub, "step {n}");
            assert!(state.ratio().is_finite() || state.denominator() == 0.0);
        }
        assert!(ra == rb, "the scheduled step drew a different number of random numbers");
    }

    /// Runs a scheduled chain next to a reference: a plain `step` chain whose
    /// η follows a naive re-implementation of Remark 4 (explicit per-pair
    /// gradients from a replay of the step's draws, explicit unbiased
    /// covariance trace, explicit window), and checks both agree at every step.
    /// Returns how often the rule fired and held back, and the final (η, u).
    fn against_naive(window: usize) -> (usize, usize, f64, Vec<f64>) {
        let game = example();
        let g: &dyn Game = &game;
        let (batch, steps, eta0) = (4usize, 300, 0.1);
        let (d, dt, n_lat, n_real) = (g.dim(), g.dim_theta(), g.n_latent(), g.n_real());
        let rule = Remark4::new(0.5, 0.05, window, batch).unwrap();
        let mut state = ScheduleState::new(&rule);
        let mut work = SgaWork::new(g);
        work.u.copy_from_slice(&INIT);
        let mut rng = chain_rng();
        let mut eta = eta0;
        let mut rwork = SgaWork::new(g);
        rwork.u.copy_from_slice(&INIT);
        let mut rrng = chain_rng();
        let mut reta = eta0;
        let mut s = g.scratch();
        let mut history: Vec<(f64, f64)> = Vec::new();
        let (mut fired, mut held) = (0, 0);
        for n in 1..=steps {
            let mut replay = rrng.clone();
            let u = rwork.u.clone();
            let pairs: Vec<Vec<f64>> = (0..batch)
                .map(|_| {
                    let i = index(&mut replay, n_lat);
                    let j = index(&mut replay, n_real);
                    let mut p = vec![0.0; d];
                    g.add_latent_grad(&u, i, 1.0, &mut p, &mut s);
                    g.add_real_grad(&u, j, 1.0, &mut p, &mut s);
                    p
                })
                .collect();
            let mean: Vec<f64> = (0..d).map(|c| pairs.iter().map(|p| p[c]).sum::<f64>() / batch as f64).collect();
            let trace = pairs.iter().map(|p| (0..d).map(|c| (p[c] - mean[c]).powi(2)).sum::<f64>()).sum::<f64>() / (batch - 1) as f64;
            let num = (0..dt).map(|c| u[c] * mean[c]).sum::<f64>() - (dt..d).map(|c| u[c] * mean[c]).sum::<f64>();
            let beta = 2.0 * batch as f64 / reta;
            history.push((num, trace / beta));
            let last = &history[history.len().saturating_sub(window)..];
            let avg_num = last.iter().map(|h| h.0).sum::<f64>() / last.len() as f64;
            let avg_den = last.iter().map(|h| h.1).sum::<f64>() / last.len() as f64;
            let ratio = avg_num / avg_den;
            let expect = (ratio - 1.0).abs() < rule.epsilon;
            if ratio.is_finite() {
                assert!(((ratio - 1.0).abs() - rule.epsilon).abs() > 1e-9, "step {n}: ratio {ratio} too close to the threshold for a fair check");
            }
            step(g, Scheme::Sml, reta, batch, &mut rrng, &mut rwork);
            assert!(replay == rrng, "step {n}: the replay drew differently from step");
            if expect {
                reta *= 1.0 - rule.delta;
            }

            let changed = sml_step_scheduled(g, &mut eta, batch, &mut rng, &mut work, &rule, &mut state);
            assert_eq!(changed, expect, "step {n}: ratio {ratio} (scheduler: {})", state.ratio());
            if ratio.is_finite() {
                assert!((state.ratio() - ratio).abs() <= 1e-9 * ratio.abs().max(1.0), "step {n}: ratio {} vs naive {ratio}", state.ratio());
                assert!((state.numerator() - avg_num).abs() <= 1e-12 * avg_num.abs().max(1.0));
                assert!((state.denominator() - avg_den).abs() <= 1e-12 * avg_den.abs().max(1.0));
            } else {
                assert!(!state.ratio().is_finite(), "step {n}: naive ratio {ratio}, scheduler {}", state.ratio());
            }
            assert_eq!(eta.to_bits(), reta.to_bits(), "step {n}");
            for c in 0..d {
                assert_eq!(work.u[c].to_bits(), rwork.u[c].to_bits(), "step {n}, coordinate {c}");
            }
            if changed {
                fired += 1;
            } else {
                held += 1;
            }
        }
        // A reset state replays the same chain.
        state.reset();
        assert!(state.ratio().is_nan());
        work.u.copy_from_slice(&INIT);
        let (mut rng2, mut eta2) = (chain_rng(), eta0);
        for _ in 0..steps {
            sml_step_scheduled(g, &mut eta2, batch, &mut rng2, &mut work, &rule, &mut state);
        }
        assert_eq!(eta2.to_bits(), eta.to_bits());
        assert_eq!(work.u, rwork.u);
        (fired, held, eta, work.u.clone())
    }

    #[test]
    fn eta_changes_exactly_where_the_rule_holds_window_1() {
        let (fired, held, eta, _) = against_naive(1);
        assert!(fired >= 1 && held >= 1, "fired {fired}, held {held}: pick another epsilon");
        assert!((eta - 0.1 * 0.95f64.powi(fired as i32)).abs() < 1e-15);
    }

    #[test]
    fn eta_changes_exactly_where_the_rule_holds_window_5() {
        let (fired, held, eta, _) = against_naive(5);
        assert!(fired >= 1 && held >= 1, "fired {fired}, held {held}: pick another epsilon");
        assert!((eta - 0.1 * 0.95f64.powi(fired as i32)).abs() < 1e-15);
    }

    #[test]
    fn remark4_rejects_out_of_range_parameters() {
        assert_eq!(Remark4::new(0.1, 0.2, 3, 2), Ok(Remark4 { epsilon: 0.1, delta: 0.2, window: 3 }));
        let err = |e: f64, dl: f64, w: usize, b: usize| Remark4::new(e, dl, w, b).unwrap_err();
        for e in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(err(e, 0.2, 1, 4).contains("epsilon must be finite and > 0"), "{e}");
        }
        for dl in [0.0, 1.0, -0.1, f64::NAN] {
            assert!(err(0.1, dl, 1, 4).contains("0 < delta < 1"), "{dl}");
        }
        assert!(err(0.1, 0.2, 0, 4).contains("window must be >= 1"));
        for b in [0, 1] {
            let m = err(0.1, 0.2, 1, b);
            assert!(m.contains("B >= 2") && m.contains("unbiased") && m.contains(&format!("B = {b}")), "{m}");
        }
    }
}
