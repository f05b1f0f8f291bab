//! Euler–Maruyama on coupled levels (`gansde::sde::Levels`) and the Richardson
//! extrapolation built on it, checked against exact weak errors of a
//! non-commutative 2-D test SDE.
//!
//! Reference: /work/shared/NUMERICS.md, section "Weak-order-2 integrators: a
//! non-commutative test SDE" (Rößler, SIAM J. Numer. Anal. 47, 2009;
//! Debrabant & Rößler, Appl. Numer. Math. 59, 2009). Itô SDE with two Wiener
//! processes, X0 = (1, 1), T = 3:
//!
//!   a(x)     = ( -(273/512) x1 ,  -x1/160 - (-785/512 + sqrt(2)/8) x2 )
//!   sigma(x) = [[ x1/4 ,                x1/16          ],
//!               [ (1 - 2 sqrt 2)/4 x1 , x1/10 + x2/16  ]]
//!
//! with f(X) = X1(T)² and exact E f = e^{-3}. Under Euler–Maruyama X1 evolves
//! on its own, X1 ← X1 (1 + a h + dW1/4 + dW2/16) with a = -273/512, so
//! E_h[X1(T)²] = ((1 + a h)² + (17/256) h)^{T/h} exactly (NUMERICS.md). The
//! whole 2-D system is simulated anyway (X2 grows, about e^{1.36 t}, and is
//! never used in f), so that a coupling mistake in either component would show.
//!
//! Each path runs two coupled levels (h and h/2) through `Levels::advance`:
//! level 1 draws the increments and level 0 uses their pairwise sums. Per path
//! we record f0 = X1_h(T)², f1 = X1_{h/2}(T)², the Richardson estimate
//! 2 f1 - f0, and the level difference f1 - f0 (low variance thanks to the
//! coupling, so a sharp check that both levels are EM on one Brownian path).
//!
//! Path counts. Var(X1(T)²) = e^{-5.2} - e^{-6} ≈ 3e-3 (sd ≈ 0.055), and the
//! Richardson estimate has about the same variance, so its standard error is
//! ≈ 0.055/√N; NUMERICS.md: ≈ 5e-5 at 10⁶ paths. See `PATHS` for the chosen
//! counts (≈ 1.3·10⁷ paths in all) and the timing measured on the 2-core machine.

use std::sync::atomic::{AtomicUsize, Ordering};

use gansde::rng::{stream, Role};
use gansde::sde::{Levels, SdeSystem};
use gansde::stats::{fit_order, tree_merge, Moments};

/// Terminal time.
const T: f64 = 3.0;
/// X1's drift coefficient a = -273/512.
const A1: f64 = -273.0 / 512.0;
/// Study seed for the random streams.
const SEED: u64 = 20_090_401;
/// Paths per block: the unit of work handed to threads and of the merge tree.
const BLOCK: usize = 1 << 14;

/// The test SDE of NUMERICS.md. All coefficients are scalars on the stack;
/// `em_step` allocates nothing.
struct Rossler {
    /// The x2 drift coefficient c in a2 = -x1/160 - c x2.
    c2: f64,
    /// sigma[1][0] / x1 = (1 - 2 sqrt 2)/4.
    s21: f64,
}

impl Rossler {
    fn new() -> Self {
        let r2 = std::f64::consts::SQRT_2;
        Rossler { c2: -785.0 / 512.0 + r2 / 8.0, s21: (1.0 - 2.0 * r2) / 4.0 }
    }
}

impl SdeSystem for Rossler {
    type Work = ();

    fn ncols(&self) -> usize {
        2
    }

    #[inline]
    fn em_step(&self, x: &mut [f64], h: f64, dw: &[f64], _work: &mut ()) {
        let (x1, x2) = (x[0], x[1]);
        let (w1, w2) = (dw[0], dw[1]);
        // Drift and diffusion at the old state.
        let a1 = A1 * x1;
        let a2 = -x1 / 160.0 - self.c2 * x2;
        let b11 = x1 / 4.0;
        let b12 = x1 / 16.0;
        let b21 = self.s21 * x1;
        let b22 = x1 / 10.0 + x2 / 16.0;
        x[0] = x1 + h * a1 + b11 * w1 + b12 * w2;
        x[1] = x2 + h * a2 + b21 * w1 + b22 * w2;
    }
}

/// E_h[X1(T)²] under Euler–Maruyama, closed form from NUMERICS.md.
fn em_exact(h: f64) -> f64 {
    ((1.0 + A1 * h).powi(2) + 17.0 / 256.0 * h).powf(T / h)
}

/// The exact E X1(T)² = e^{-T} (NUMERICS.md).
fn exact() -> f64 {
    (-T).exp()
}

/// Statistics of one ensemble at coarse step h.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    /// f0 = X1_h(T)².
    f0: Moments,
    /// f1 = X1_{h/2}(T)².
    f1: Moments,
    /// Richardson 2 f1 - f0.
    rich: Moments,
    /// Coupled difference f1 - f0.
    diff: Moments,
}

/// Runs paths [first, first + n) of ensemble `eta_index` at coarse step h.
fn run_block(sys: &Rossler, h: f64, eta_index: usize, first: usize, n: usize, levels: &mut Levels) -> Stats {
    let steps = (T / h).round() as usize;
    assert!((steps as f64 * h - T).abs() < 1e-12, "h must divide T");
    let mut s = Stats::default();
    for path in first..first + n {
        let mut rng = stream(SEED, eta_index, Role::Sde(0), path as u64);
        levels.reset(&[1.0, 1.0], 2);
        // One call covers [0, T] in `steps` coarse substeps of h (fine h/2).
        levels.advance(sys, T, steps, &mut rng, &mut ());
        let f0 = levels.states[0][0].powi(2);
        let f1 = levels.states[1][0].powi(2);
        s.f0.push(f0);
        s.f1.push(f1);
        s.rich.push(2.0 * f1 - f0);
        s.diff.push(f1 - f0);
    }
    s
}

/// Runs `paths` paths (a multiple of BLOCK) on all cores; blocks are merged
/// along the fixed tree of `tree_merge`, so the result does not depend on the
/// thread schedule.
fn ensemble(h: f64, eta_index: usize, paths: usize) -> Stats {
    assert_eq!(paths % BLOCK, 0);
    let sys = Rossler::new();
    let nblocks = paths / BLOCK;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(nblocks);
    let next = AtomicUsize::new(0);
    let mut blocks: Vec<Option<Stats>> = vec![None; nblocks];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut levels = Levels::new(2, sys.ncols(), 2);
                    let mut done = Vec::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= nblocks {
                            break done;
                        }
                        done.push((b, run_block(&sys, h, eta_index, b * BLOCK, BLOCK, &mut levels)));
                    }
                })
            })
            .collect();
        for handle in handles {
            for (b, s) in handle.join().expect("worker panicked") {
                blocks[b] = Some(s);
            }
        }
    });
    let blocks: Vec<Stats> = blocks.into_iter().map(|b| b.expect("every block ran")).collect();
    let merge = |pick: fn(&Stats) -> Moments| tree_merge(&blocks.iter().map(pick).collect::<Vec<_>>());
    Stats { f0: merge(|s| s.f0), f1: merge(|s| s.f1), rich: merge(|s| s.rich), diff: merge(|s| s.diff) }
}

/// |estimate - expected| ≤ 4 SE, with a message.
fn assert_within(what: &str, h: f64, m: &Moments, expected: f64) {
    let z = (m.mean - expected) / m.std_error();
    assert!(z.abs() <= 4.0, "{what} at h = {h}: MC {:.4e} ± {:.1e} vs exact {expected:.4e} (z = {z:.2})", m.mean, m.std_error());
}

/// The step sizes and path counts (multiples of BLOCK = 16384); the standard
/// error of the EM and Richardson means is ≈ 0.055/√N:
///
/// | h   | N          | SE      | |EM err|  | |Richardson err|          |
/// |-----|------------|---------|-----------|---------------------------|
/// | 1   | 262 144    | 1.1e-4  | 2.7e-2    | 3.4e-3 (resolved, ~30 SE)  |
/// | 1/2 | 2 097 152  | 3.8e-5  | 1.5e-2    | 5.7e-4 (resolved, ~15 SE)  |
/// | 1/4 | 10 485 760 | 1.7e-5  | 7.8e-3    | 1.2e-4 (resolved, ~7 SE)   |
/// | 1/8 | 262 144    | 1.1e-4  | 4.0e-3    | 2.7e-5 (not resolved: would need ~1.5e8 paths) |
///
/// EM is resolved at every h. Measured: 13.4 s for the whole test with
/// `cargo test --release --test integrators` on the 2-core machine (17–18 s
/// while other builds shared it, either profile), about 1 µs per path at
/// h = 1/4 per core (user time; not profiled further).
const PATHS: [(f64, usize); 4] = [(1.0, 16 * BLOCK), (0.5, 128 * BLOCK), (0.25, 640 * BLOCK), (0.125, 16 * BLOCK)];

#[test]
fn euler_maruyama_and_richardson_weak_errors_match_closed_form() {
    let start = std::time::Instant::now();
    let e = exact();
    // (h, error, SE) for the MC errors and, with the same weights, for the
    // closed-form errors at the same points.
    let (mut em_points, mut em_exact_points) = (Vec::new(), Vec::new());
    let (mut rich_points, mut rich_exact_points) = (Vec::new(), Vec::new());
    for (i, &(h, paths)) in PATHS.iter().enumerate() {
        let t0 = std::time::Instant::now();
        let s = ensemble(h, i, paths);
        let em_exact_err = em_exact(h) - e;
        let rich_exact_err = 2.0 * em_exact(h / 2.0) - em_exact(h) - e;
        let em_err = s.f0.mean - e;
        let rich_err = s.rich.mean - e;
        eprintln!(
            "h = {h:<6} N = {paths:>9}  EM err {em_err:+.4e} ± {:.1e} (exact {em_exact_err:+.4e})  \
             Richardson err {rich_err:+.4e} ± {:.1e} (exact {rich_exact_err:+.4e})  \
             f1-f0 {:+.4e} ± {:.1e} (exact {:+.4e})  sd(f0) {:.3e} sd(f1-f0) {:.3e}  {:.2} s",
            s.f0.std_error(),
            s.rich.std_error(),
            s.diff.mean,
            s.diff.std_error(),
            em_exact(h / 2.0) - em_exact(h),
            s.f0.variance().sqrt(),
            s.diff.variance().sqrt(),
            t0.elapsed().as_secs_f64(),
        );
        // Both levels are EM at their own step: means match the closed form.
        assert_within("EM level 0 (h)", h, &s.f0, em_exact(h));
        assert_within("EM level 1 (h/2)", h, &s.f1, em_exact(h / 2.0));
        assert_within("Richardson 2E_{h/2} - E_h", h, &s.rich, 2.0 * em_exact(h / 2.0) - em_exact(h));
        assert_within("coupled difference E_{h/2} - E_h", h, &s.diff, em_exact(h / 2.0) - em_exact(h));
        // The coupling: the level difference varies far less than either level.
        assert!(s.diff.variance() < 0.25 * s.f0.variance(), "levels are not coupled at h = {h}");
        em_points.push((h, em_err, s.f0.std_error()));
        em_exact_points.push((h, em_exact_err, s.f0.std_error()));
        // Resolved points only (|error| > 4 SE) enter the Richardson fit.
        if rich_err.abs() > 4.0 * s.rich.std_error() {
            rich_points.push((h, rich_err, s.rich.std_error()));
            rich_exact_points.push((h, rich_exact_err, s.rich.std_error()));
        }
    }
    let em_fit = fit_order(&em_points, 0.95).expect("EM order");
    let rich_fit = fit_order(&rich_points, 0.95).expect("at least two resolved Richardson points");
    let em_fit_exact = fit_order(&em_exact_points, 0.95).expect("EM order");
    let rich_fit_exact = fit_order(&rich_exact_points, 0.95).expect("Richardson order");
    eprintln!("EM order {:.3} ± {:.3} (inflation {:.2}, {} points)", em_fit.order, em_fit.half_width, em_fit.inflation, em_fit.points);
    eprintln!("Richardson order {:.3} ± {:.3} (inflation {:.2}, {} points)", rich_fit.order, rich_fit.half_width, rich_fit.inflation, rich_fit.points);
    eprintln!("  on the closed-form errors: EM {:.3}, Richardson {:.3}", em_fit_exact.order, rich_fit_exact.order);
    eprintln!("total {:.1} s on {} threads", start.elapsed().as_secs_f64(), std::thread::available_parallelism().map_or(2, |n| n.get()));
    // EM is order 1, but h = 1 … 1/8 is pre-asymptotic (local orders 0.83,
    // 0.95, 0.98 from the closed form) and the weights ê²/SE² favour h = 1,
    // so the fit reads below 1 with an interval that may exclude 1; the MC fit
    // must agree with the fit on the closed-form errors within its interval.
    assert!(em_fit.order > 0.7 && em_fit.order < 1.3, "EM order {em_fit:?}");
    assert!((em_fit.order - em_fit_exact.order).abs() < em_fit.half_width, "EM order {em_fit:?} vs closed form {em_fit_exact:?}");
    // Richardson: order ≈ 2.4 over h = 1 … 1/4 (→ 2), NUMERICS.md.
    assert!(rich_fit.points >= 3, "Richardson resolved at h = 1, 1/2, 1/4: {rich_points:?}");
    assert!(rich_fit.order > 1.6, "Richardson order {rich_fit:?}");
    assert!((rich_fit.order - rich_fit_exact.order).abs() < rich_fit.half_width, "Richardson order {rich_fit:?} vs closed form {rich_fit_exact:?}");
}
