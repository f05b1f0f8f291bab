//! Long-run analysis of stationary samples (DESIGN §1 "What a study reports",
//! NUMERICS "β-mixing of a stationary Ornstein–Uhlenbeck process"): the
//! histogram estimate of β(s) = TV(Law(X_0, X_s), μ ⊗ μ) and its exact
//! Gaussian reference, decay-rate fits above the estimator's floor, the 1-D
//! Wasserstein-1 distance between marginals, and the integrated
//! autocorrelation time behind effective sample sizes.

use std::f64::consts::{PI, SQRT_2};

/// The histogram estimate of β = TV(Law(X, Y), Law X ⊗ Law Y) from the pairs
/// (x[i], y[i]): ½ Σ_ab |p̂_ab − p̂_a· p̂_·b| over a `bins` × `bins` grid of
/// quantile bins (edges at the empirical quantiles of x on one axis and of y
/// on the other), with p̂ the empirical joint and marginal frequencies.
///
/// Edge k (1 ≤ k < bins) of an axis is its order statistic of rank ⌊k n / bins⌋
/// and a value's bin is the number of edges ≤ it, so every point lands in
/// exactly one bin and equal values share a bin; without ties bin k holds
/// exactly ⌊(k+1) n / bins⌋ − ⌊k n / bins⌋ points. Heavy ties leave some bins
/// empty, which the formula tolerates.
///
/// The estimate is biased upwards on independent pairs (about 0.4·bins/√n)
/// and is not an additive correction elsewhere; report the floor beside it,
/// never subtract it (NUMERICS). Order statistics come from a radix-bucketed
/// selection, no full sort, so 10⁷ pairs take a fraction of a second.
/// Returns NaN for no pairs or if any value is NaN.
///
/// Panics if the slices differ in length or `bins` is 0.
pub fn beta_histogram(x: &[f64], y: &[f64], bins: usize) -> f64 {
    assert_eq!(x.len(), y.len(), "beta_histogram needs pairs");
    assert!(bins > 0, "beta_histogram needs at least one bin");
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let ex = quantile_edges(x, bins);
    let ey = quantile_edges(y, bins);
    let mut joint = vec![0u64; bins * bins];
    for (u, v) in x.iter().zip(y) {
        joint[bin_of(&ex, *u) as usize * bins + bin_of(&ey, *v) as usize] += 1;
    }
    let mut row = vec![0u64; bins];
    let mut col = vec![0u64; bins];
    for a in 0..bins {
        for b in 0..bins {
            row[a] += joint[a * bins + b];
            col[b] += joint[a * bins + b];
        }
    }
    // n²·Σ|p̂_ab − p̂_a p̂_b| = Σ|n c_ab − c_a c_b| is an integer, so sum exactly and divide once.
    let nn = n as i128;
    let mut total: i128 = 0;
    for a in 0..bins {
        for b in 0..bins {
            total += (nn * joint[a * bins + b] as i128 - row[a] as i128 * col[b] as i128).abs();
        }
    }
    0.5 * total as f64 / (n as f64 * n as f64)
}

/// `f64::total_cmp`'s order as an unsigned integer, so selection compares
/// integers and the leading bits can serve as radix buckets.
#[inline]
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    b ^ ((((b as i64) >> 63) as u64) | (1 << 63))
}

/// The inverse of `order_key`.
#[inline]
fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k ^ (1 << 63) } else { !k })
}

/// How many leading key bits form a radix bucket.
const RADIX_BITS: u32 = 16;

/// The bins − 1 inner edges of the quantile bins of `v`: edge k is the order
/// statistic of rank ⌊k n / bins⌋.
///
/// One counting pass over the leading 16 key bits (sign, exponent, 4 mantissa
/// bits) locates the bucket of each wanted rank; only the elements of those
/// buckets are copied out and selected among, which for data spread over a
/// few exponents is a small fraction of n and roughly halves the time of
/// selecting in the whole array. Concentrated data degrade gracefully to one
/// selection over (nearly) everything.
fn quantile_edges(v: &[f64], bins: usize) -> Vec<f64> {
    let n = v.len();
    let rank_of = |k: usize| (k as u128 * n as u128 / bins as u128) as usize;
    let mut ranks: Vec<usize> = (1..bins).map(rank_of).collect();
    ranks.dedup();
    if ranks.is_empty() {
        return Vec::new();
    }
    let shift = 64 - RADIX_BITS;
    let mut counts = vec![0usize; 1 << RADIX_BITS];
    for x in v {
        counts[(order_key(*x) >> shift) as usize] += 1;
    }
    // For each wanted rank: its bucket's slot among the needed buckets and its rank inside.
    let mut slot_of = vec![u32::MAX; 1 << RADIX_BITS];
    let mut needed: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut start = 0;
    let mut next = 0;
    for (bucket, &c) in counts.iter().enumerate() {
        while next < ranks.len() && ranks[next] < start + c {
            if slot_of[bucket] == u32::MAX {
                slot_of[bucket] = needed.len() as u32;
                needed.push((c, Vec::new()));
            }
            needed.last_mut().expect("slot just pushed").1.push(ranks[next] - start);
            next += 1;
        }
        start += c;
    }
    let mut members: Vec<Vec<u64>> = needed.iter().map(|(c, _)| Vec::with_capacity(*c)).collect();
    for x in v {
        let k = order_key(*x);
        let slot = slot_of[(k >> shift) as usize];
        if slot != u32::MAX {
            members[slot as usize].push(k);
        }
    }
    let mut values = Vec::with_capacity(ranks.len());
    for ((_, local), keys) in needed.iter().zip(members.iter_mut()) {
        let mut out = vec![0u64; local.len()];
        order_statistics(keys, local, &mut out);
        values.extend(out);
    }
    let mut edges = Vec::with_capacity(bins - 1);
    let mut j = 0;
    for k in 1..bins {
        while ranks[j] != rank_of(k) {
            j += 1;
        }
        edges.push(from_order_key(values[j]));
    }
    edges
}

/// Fills out[i] with the order statistic of rank ranks[i] (ranks strictly
/// increasing, all < v.len()); selecting the middle rank first splits the
/// remaining work, so the cost is O(n log ranks.len()) rather than a full sort.
fn order_statistics(v: &mut [u64], ranks: &[usize], out: &mut [u64]) {
    if ranks.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let r = ranks[mid];
    let (left, nth, right) = v.select_nth_unstable(r);
    out[mid] = *nth;
    let (out_left, out_rest) = out.split_at_mut(mid);
    order_statistics(left, &ranks[..mid], out_left);
    let right_ranks: Vec<usize> = ranks[mid + 1..].iter().map(|k| k - r - 1).collect();
    order_statistics(right, &right_ranks, &mut out_rest[1..]);
}

/// The number of edges ≤ v (edges sorted), i.e. v's bin; −0 and +0 compare
/// equal, so equal values always share a bin. (std's binary search is branch
/// free: it beat both a linear count and a hand-rolled search by 2–3×.)
#[inline]
fn bin_of(edges: &[f64], v: f64) -> u32 {
    edges.partition_point(|&e| e <= v) as u32
}

/// Every value's quantile bin on its own axis.
#[cfg(test)]
fn axis_bins(v: &[f64], bins: usize) -> Vec<u32> {
    let edges = quantile_edges(v, bins);
    v.iter().map(|x| bin_of(&edges, *x)).collect()
}

/// The exact total-variation distance between N(0, [[1, ρ], [ρ, 1]]) and
/// N(0, I₂): β(s) of a stationary Gaussian pair with correlation ρ (symmetric
/// in ρ; 0 at ρ = 0; 1 for |ρ| ≥ 1, where the correlated law is singular).
///
/// In a = (x+y)/√2, b = (x−y)/√2 both laws are products (variances 1±ρ against
/// 1, 1), and the set where the correlated density is larger is, for each a,
/// the interval |b| < B(a) with B² = αa² + γ, α = (1−ρ)/(1+ρ),
/// γ = −ln(1−ρ²)(1−ρ)/ρ. So TV = P(A) − Q(A) is the 1-D integral of
/// φ_{1+ρ}(a) erf(B/√(2(1−ρ))) − φ(a) erf(B/√2). B has branch points at
/// a = ±i√(γ/α), near the real axis for small ρ; a = √(γ/α) sinh u removes them
/// and makes the integrand decay double-exponentially, so the trapezoidal rule
/// in u converges geometrically (steps 0.02 and 0.01 agree to 1e-15). The
/// absolute error is about 1e-15; the two terms nearly cancel for tiny ρ, so the
/// relative error grows like 1e-15/ρ (1e-5 at ρ = 1e-12).
pub fn gaussian_beta(rho: f64) -> f64 {
    if rho.is_nan() {
        return f64::NAN;
    }
    let r = rho.abs();
    if r == 0.0 {
        return 0.0;
    }
    if r >= 1.0 {
        return 1.0;
    }
    let l = -(-r * r).ln_1p();
    let alpha = (1.0 - r) / (1.0 + r);
    let gamma = l * (1.0 - r) / r;
    let d = (gamma / alpha).sqrt();
    let sg = gamma.sqrt();
    let var_p = 1.0 + r;
    let norm_p = 1.0 / (2.0 * PI * var_p).sqrt();
    let norm_q = 1.0 / (2.0 * PI).sqrt();
    let sb = (2.0 * (1.0 - r)).sqrt();
    let f = |u: f64| {
        let a = d * u.sinh();
        let b = sg * u.cosh();
        let a2 = a * a;
        d * u.cosh() * (norm_p * (-0.5 * a2 / var_p).exp() * erf(b / sb) - norm_q * (-0.5 * a2).exp() * erf(b / SQRT_2))
    };
    // Beyond |a| = 40 both Gaussian factors are below e^{-400}.
    let u_max = (40.0 / d).asinh();
    let h = 0.01;
    let steps = (u_max / h).ceil() as usize;
    let mut sum = 0.5 * f(0.0);
    for k in 1..=steps {
        sum += f(k as f64 * h);
    }
    // The integrand is even in u.
    2.0 * h * sum
}

/// The error function to about 1e-15 absolute (checked against libm on a
/// 0.005 grid over [0, 6.5]: worst 9e-16 near x = 2): the all-positive series
/// erf x = 2/√π e^{−x²} Σ 2ⁿ x^{2n+1}/(2n+1)!! (no cancellation) for |x| < 2.5,
/// the continued fraction for erfc beyond.
fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let v = if ax < 2.5 {
        let x2 = ax * ax;
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        while term > 1e-17 * sum {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / PI.sqrt() * (-x2).exp() * sum
    } else if ax < 6.5 {
        1.0 - erfc_cf(ax)
    } else {
        1.0
    };
    v.copysign(x)
}

/// erfc x for x ≥ 2.5 by the continued fraction
/// √π e^{x²} erfc x = 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))), evaluated by
/// modified Lentz.
fn erfc_cf(x: f64) -> f64 {
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..200 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d == 0.0 { tiny } else { d };
        c = x + a / c;
        c = if c == 0.0 { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// Rates are fitted only on points above this multiple of the estimator's
/// floor (β(s) on independent pairs, or a convergence curve's late level).
pub const FLOOR_FACTOR: f64 = 3.0;

/// A fitted exponential decay y(s) ≈ C e^{−rate·s}.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateFit {
    /// The decay rate (minus the least-squares slope of ln y on s).
    pub rate: f64,
    /// ln C, the fitted line's intercept.
    pub log_c: f64,
    /// The smallest and largest s of the points used.
    pub s_range: (f64, f64),
    /// The ordinary least-squares standard error of the slope (NaN with two points).
    pub se: f64,
    /// How many points entered the fit.
    pub points: usize,
    /// Whether the used points oscillated and the fit is to their running envelope.
    pub envelope: bool,
}

/// Fits y(s) ≈ C e^{−rate·s} by least squares of ln y on s over the points
/// with y > factor·floor only: near the histogram floor the estimate no longer
/// follows the true β, so rates are fitted only on lags well above it.
///
/// The used points are taken in increasing s. If they are not monotone
/// non-increasing (an oscillating autocorrelation, complex drift eigenvalues)
/// the fit is to their envelope env_i = max_{j ≥ i} y_j and `envelope` is set,
/// for comparison with the spectral abscissa. Returns None when fewer than two
/// points qualify or they share one s. Non-finite points are ignored.
///
/// Panics if the slices differ in length.
pub fn fit_decay_rate(s: &[f64], y: &[f64], floor: f64, factor: f64) -> Option<RateFit> {
    assert_eq!(s.len(), y.len(), "fit_decay_rate needs (s, y) pairs");
    let threshold = factor * floor;
    let mut pts: Vec<(f64, f64)> =
        s.iter().zip(y).filter(|(si, yi)| si.is_finite() && yi.is_finite() && **yi > threshold && **yi > 0.0).map(|(a, b)| (*a, *b)).collect();
    if pts.len() < 2 {
        return None;
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let monotone = pts.windows(2).all(|w| w[1].1 <= w[0].1);
    if !monotone {
        let mut running = f64::NEG_INFINITY;
        for p in pts.iter_mut().rev() {
            running = running.max(p.1);
            p.1 = running;
        }
    }
    let m = pts.len() as f64;
    let sbar = pts.iter().map(|p| p.0).sum::<f64>() / m;
    let lbar = pts.iter().map(|p| p.1.ln()).sum::<f64>() / m;
    let sxx: f64 = pts.iter().map(|p| (p.0 - sbar).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = pts.iter().map(|p| (p.0 - sbar) * (p.1.ln() - lbar)).sum();
    let slope = sxy / sxx;
    let intercept = lbar - slope * sbar;
    let se = if pts.len() > 2 {
        let rss: f64 = pts.iter().map(|p| (p.1.ln() - intercept - slope * p.0).powi(2)).sum();
        (rss / (m - 2.0) / sxx).sqrt()
    } else {
        f64::NAN
    };
    Some(RateFit { rate: -slope, log_c: intercept, s_range: (pts[0].0, pts[pts.len() - 1].0), se, points: pts.len(), envelope: !monotone })
}

/// How far apart in W1 two samples of one law lie, for `sga_paths` paths
/// against all of `sde`'s: W1 between the first and second half of the paths in `sde` (stationary records, `rs`
/// per path, paths in order), scaled from halves to `sga_paths` against all
/// of `sde`'s paths (the empirical W1 of independent samples scales like
/// √(1/n + 1/m)). NaN with fewer than two paths.
pub fn w1_noise_level(sde: &[f64], rs: usize, sga_paths: usize) -> f64 {
    let paths = if rs == 0 { 0 } else { sde.len() / rs };
    if paths < 2 || sga_paths == 0 {
        return f64::NAN;
    }
    let (p1, p2) = (paths / 2, paths - paths / 2);
    let halves = wasserstein1(&sde[..p1 * rs], &sde[p1 * rs..]);
    let scale = ((1.0 / sga_paths as f64 + 1.0 / paths as f64) / (1.0 / p1 as f64 + 1.0 / p2 as f64)).sqrt();
    halves * scale
}

/// The Wasserstein-1 distance between the empirical laws of `a` and `b`
/// (lengths may differ): ∫₀¹ |F_a⁻¹(q) − F_b⁻¹(q)| dq, integrated exactly over
/// the merged grid of quantile levels i/len(a) and j/len(b). The grid is
/// walked in integer units of 1/(len(a)·len(b)) so breakpoints never drift.
/// Returns NaN if either is empty or holds a NaN.
pub fn wasserstein1(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let mut sa = a.to_vec();
    let mut sb = b.to_vec();
    sa.sort_unstable_by(f64::total_cmp);
    sb.sort_unstable_by(f64::total_cmp);
    let (n, m) = (sa.len() as u128, sb.len() as u128);
    let (mut i, mut j) = (0usize, 0usize);
    let mut pos: u128 = 0;
    let mut sum = 0.0;
    while i < sa.len() && j < sb.len() {
        let next_a = (i as u128 + 1) * m;
        let next_b = (j as u128 + 1) * n;
        let next = next_a.min(next_b);
        sum += (next - pos) as f64 * (sa[i] - sb[j]).abs();
        pos = next;
        if next_a == next {
            i += 1;
        }
        if next_b == next {
            j += 1;
        }
    }
    sum / (n as f64 * m as f64)
}

/// The integrated autocorrelation time of one coordinate and the effective
/// sample size it implies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Autocorr {
    /// τ = 1 + 2 Σ_{k=1}^{W} ρ_k, in record units.
    pub tau: f64,
    /// The total number of values divided by τ.
    pub ess: f64,
    /// The summation window W chosen by Sokal's rule.
    pub window: usize,
}

/// The integrated autocorrelation time of several independent, equally long
/// series of one coordinate (one per path, in record units).
///
/// Every path is centred at the grand mean (the paths share one stationary
/// law, and a per-path mean would bias every γ_k down by about τγ_0/L); the lag-k
/// autocovariance γ_k = Σ_paths Σ_t (x_t − x̄)(x_{t+k} − x̄) / (paths·L) uses
/// the 1/L normalisation, which keeps the far lags from blowing up. Lags come
/// from a zero-padded FFT, O(L log L) per path, so long windows cost nothing
/// extra. τ = 1 + 2 Σ_{k=1}^{W} γ_k/γ_0 with Sokal's automatic window, the
/// smallest W ≥ 1 with W ≥ 5 τ(W), capped at L − 1; ess = paths·L/τ.
/// A series with zero variance (or no values) gives τ = NaN and ess = NaN.
///
/// Panics if the paths differ in length.
pub fn integrated_autocorr_time(paths: &[&[f64]]) -> Autocorr {
    let len = paths.first().map_or(0, |p| p.len());
    assert!(paths.iter().all(|p| p.len() == len), "integrated_autocorr_time needs equally long paths");
    let total = paths.len() * len;
    if total == 0 {
        return Autocorr { tau: f64::NAN, ess: f64::NAN, window: 0 };
    }
    let mean = paths.iter().map(|p| p.iter().sum::<f64>()).sum::<f64>() / total as f64;
    let size = (2 * len).next_power_of_two();
    let fft = Fft::new(size);
    let mut lag_sums = vec![0.0; len];
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for p in paths {
        for (r, v) in re.iter_mut().zip(p.iter()) {
            *r = v - mean;
        }
        re[len..].fill(0.0);
        im.fill(0.0);
        fft.forward(&mut re, &mut im);
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            *r = *r * *r + *i * *i;
            *i = 0.0;
        }
        // The power spectrum is real and even, so a forward transform is the inverse up to 1/size.
        fft.forward(&mut re, &mut im);
        for (s, r) in lag_sums.iter_mut().zip(&re) {
            *s += r / size as f64;
        }
    }
    let g0 = lag_sums[0];
    if g0.is_nan() || g0 <= 0.0 {
        return Autocorr { tau: f64::NAN, ess: f64::NAN, window: 0 };
    }
    let mut tau = 1.0;
    let mut window = 0;
    for (w, g) in lag_sums.iter().enumerate().skip(1) {
        tau += 2.0 * g / g0;
        window = w;
        if w as f64 >= 5.0 * tau {
            break;
        }
    }
    Autocorr { tau, ess: total as f64 / tau, window }
}

/// A radix-2 complex FFT of a fixed power-of-two size with twiddles taken
/// from sin/cos directly (not by recurrence) so rounding stays at a few ulps·log n.
struct Fft {
    size: usize,
    cos: Vec<f64>,
    sin: Vec<f64>,
}

impl Fft {
    fn new(size: usize) -> Self {
        assert!(size.is_power_of_two());
        let (sin, cos) = (0..size / 2).map(|k| (-2.0 * PI * k as f64 / size as f64).sin_cos()).unzip();
        Fft { size, cos, sin }
    }

    /// In place X_k = Σ_j x_j e^{−2πijk/size}.
    fn forward(&self, re: &mut [f64], im: &mut [f64]) {
        let n = self.size;
        let bits = n.trailing_zeros();
        if n > 1 {
            for i in 0..n {
                let j = i.reverse_bits() >> (usize::BITS - bits);
                if j > i {
                    re.swap(i, j);
                    im.swap(i, j);
                }
            }
        }
        let mut half = 1;
        while half < n {
            let stride = n / (2 * half);
            for start in (0..n).step_by(2 * half) {
                for k in 0..half {
                    let (wr, wi) = (self.cos[k * stride], self.sin[k * stride]);
                    let (a, b) = (start + k, start + k + half);
                    let tr = wr * re[b] - wi * im[b];
                    let ti = wr * im[b] + wi * re[b];
                    re[b] = re[a] - tr;
                    im[b] = im[a] - ti;
                    re[a] += tr;
                    im[a] += ti;
                }
            }
            half *= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::normal;
    use rand::SeedableRng;
    use rand_pcg::Pcg64;

    /// n pairs of standard normals with correlation rho.
    fn correlated_pairs(rng: &mut Pcg64, n: usize, rho: f64) -> (Vec<f64>, Vec<f64>) {
        let c = (1.0 - rho * rho).sqrt();
        let mut x = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let a = normal(rng);
            let b = normal(rng);
            x.push(a);
            y.push(rho * a + c * b);
        }
        (x, y)
    }

    #[test]
    fn erf_matches_reference_values() {
        // Reference values from libm (CPython math.erf), confirmed with 30-digit mpmath.
        let cases = [
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.5, 0.999593047982555),
            (3.0, 0.9999779095030014),
        ];
        for (x, v) in cases {
            assert!((erf(x) - v).abs() < 1e-15, "erf({x}) = {} vs {v}", erf(x));
            assert!((erf(-x) + v).abs() < 1e-15);
        }
        assert!((erfc_cf(3.0) - 2.209049699858544e-5).abs() < 1e-19);
        assert!((erfc_cf(5.0) - 1.537459794428035e-12).abs() < 1e-25);
    }

    #[test]
    fn gaussian_beta_matches_numerics_table() {
        let table = [(0.904837, 0.523351), (0.606531, 0.240474), (0.367879, 0.127137), (0.135335, 0.043642), (0.049787, 0.015880), (0.006738, 0.002145)];
        for (rho, beta) in table {
            let b = gaussian_beta(rho);
            assert!((b - beta).abs() < 2e-6, "beta({rho}) = {b}, table {beta}");
        }
    }

    #[test]
    fn gaussian_beta_edge_cases_and_symmetry() {
        assert_eq!(gaussian_beta(0.0), 0.0);
        assert_eq!(gaussian_beta(1.0), 1.0);
        for rho in [1e-8, 1e-3, 0.2, 0.5, 0.9, 0.999] {
            assert_eq!(gaussian_beta(rho), gaussian_beta(-rho));
        }
        // β ≈ ρ/π as ρ → 0.
        let rho = 1e-6;
        assert!((gaussian_beta(rho) / (rho / PI) - 1.0).abs() < 1e-4, "{}", gaussian_beta(rho) * PI / rho);
        // Monotone in |ρ| and within (0, 1).
        let vals: Vec<f64> = (1..100).map(|k| gaussian_beta(k as f64 / 100.0)).collect();
        assert!(vals.windows(2).all(|w| w[1] > w[0]));
        assert!(vals[98] < 1.0);
    }

    #[test]
    fn gaussian_beta_agrees_with_direct_two_dimensional_quadrature() {
        // An independent check of the reduction: ½∬|p − q| on a fine midpoint grid in (a, b).
        let rho: f64 = 0.5;
        let (sp, sm) = ((1.0 + rho).sqrt(), (1.0 - rho).sqrt());
        let dens = |v: f64, s: f64| (-0.5 * (v / s).powi(2)).exp() / (s * (2.0 * PI).sqrt());
        let (h, lim) = (0.005, 9.0);
        let n = (2.0 * lim / h) as usize;
        let nodes: Vec<f64> = (0..n).map(|i| -lim + (i as f64 + 0.5) * h).collect();
        let (pa, pb, qn): (Vec<f64>, Vec<f64>, Vec<f64>) =
            (nodes.iter().map(|&v| dens(v, sp)).collect(), nodes.iter().map(|&v| dens(v, sm)).collect(), nodes.iter().map(|&v| dens(v, 1.0)).collect());
        let mut sum = 0.0;
        for i in 0..n {
            for j in 0..n {
                sum += (pa[i] * pb[j] - qn[i] * qn[j]).abs();
            }
        }
        let direct = 0.5 * sum * h * h;
        assert!((direct - gaussian_beta(rho)).abs() < 1e-6, "{direct} vs {}", gaussian_beta(rho));
    }

    #[test]
    fn beta_histogram_tracks_gaussian_beta() {
        let mut rng = Pcg64::seed_from_u64(20240611);
        let n = 1_000_000;
        for rho in [0.606531, 0.367879, 0.135335] {
            let (x, y) = correlated_pairs(&mut rng, n, rho);
            let est = beta_histogram(&x, &y, 20);
            assert!((est - gaussian_beta(rho)).abs() < 0.01, "rho {rho}: estimate {est}, exact {}", gaussian_beta(rho));
        }
        // The floor on independent pairs: about 0.4·20/√n = 0.008.
        let (x, y) = correlated_pairs(&mut rng, n, 0.0);
        let floor = beta_histogram(&x, &y, 20);
        assert!(floor > 0.004 && floor < 0.012, "floor {floor}");
    }

    #[test]
    fn beta_histogram_small_cases_are_exact() {
        // Identical axes with 2 bins: the joint is diagonal with ½ each, product ¼ each: β = ½.
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((beta_histogram(&x, &x, 2) - 0.5).abs() < 1e-15);
        // Perfect anti-dependence gives the same.
        let y = [4.0, 3.0, 2.0, 1.0];
        assert!((beta_histogram(&x, &y, 2) - 0.5).abs() < 1e-15);
        // One bin sees no dependence.
        assert_eq!(beta_histogram(&x, &y, 1), 0.0);
        assert!(beta_histogram(&[], &[], 3).is_nan());
        assert!(beta_histogram(&[1.0, f64::NAN], &[1.0, 2.0], 2).is_nan());
    }

    #[test]
    fn beta_histogram_puts_ties_in_one_bin() {
        // x takes two values (666 zeros, 334 ones); with 4 bins the edges (ranks 250, 500, 750)
        // are 0, 0, 1: all zeros share bin 2, all ones bin 3, and bins 0 and 1 stay empty.
        let x: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 3 == 0) as u8 as f64).collect();
        let y: Vec<f64> = (0..1000).map(|i| x[i] + (i as f64) * 1e-3).collect();
        let fine = beta_histogram(&x, &y, 4);
        let mut counts = [0usize; 4];
        axis_bins(&x, 4).iter().for_each(|&b| counts[b as usize] += 1);
        assert_eq!(counts.iter().sum::<usize>(), 1000);
        assert_eq!(counts, [0, 0, 666, 334]);
        assert!(fine > 0.0 && fine <= 1.0);
        // Balanced bins without ties.
        let z: Vec<f64> = (0..1003).map(|i| ((i * 37) % 1003) as f64).collect();
        let mut c = [0usize; 10];
        axis_bins(&z, 10).iter().for_each(|&b| c[b as usize] += 1);
        assert!(c.iter().all(|&k| k == 100 || k == 101), "{c:?}");
    }

    #[test]
    fn order_keys_follow_total_cmp() {
        let v = [f64::NEG_INFINITY, -3.5, -1e-300, -0.0, 0.0, 5e-324, 1.0, 2.5, f64::INFINITY];
        for a in v {
            assert_eq!(from_order_key(order_key(a)).to_bits(), a.to_bits());
            for b in v {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} {b}");
            }
        }
    }

    #[test]
    fn quantile_edges_match_a_full_sort() {
        // Mixed signs, magnitudes and ties, so wanted ranks fall in many radix buckets.
        let mut rng = Pcg64::seed_from_u64(9);
        let v: Vec<f64> = (0..20_011)
            .map(|i| match i % 4 {
                0 => normal(&mut rng) * 1e-3,
                1 => normal(&mut rng) * 50.0,
                2 => (normal(&mut rng) * 3.0).round(),
                _ => normal(&mut rng),
            })
            .collect();
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        for bins in [1, 2, 7, 20, 100, 20_011, 30_000] {
            let e = quantile_edges(&v, bins);
            assert_eq!(e.len(), bins - 1);
            for (k, edge) in e.iter().enumerate() {
                let r = (k + 1) * v.len() / bins;
                assert_eq!(edge.to_bits(), sorted[r].to_bits(), "bins {bins} edge {k}");
            }
        }
        // Concentrated data: everything in one radix bucket.
        let w: Vec<f64> = (0..5000).map(|i| 1.0 + ((i * 7) % 5000) as f64 * 1e-9).collect();
        let mut ws = w.clone();
        ws.sort_by(f64::total_cmp);
        assert_eq!(quantile_edges(&w, 10), (1..10).map(|k| ws[k * 500]).collect::<Vec<_>>());
    }

    #[test]
    fn decay_rate_of_exact_exponential() {
        let s: Vec<f64> = (0..21).map(|k| 0.5 * k as f64).collect();
        let y: Vec<f64> = s.iter().map(|t| 2.0 * (-0.7 * t).exp()).collect();
        let f = fit_decay_rate(&s, &y, 0.0, 3.0).unwrap();
        assert!((f.rate - 0.7).abs() < 1e-12, "{f:?}");
        assert_eq!(f.points, 21);
        assert!(!f.envelope);
        assert!(f.se < 1e-12);
        let two = fit_decay_rate(&s[..2], &y[..2], 0.0, 3.0).unwrap();
        assert!((two.rate - 0.7).abs() < 1e-12 && two.se.is_nan());
        assert!(fit_decay_rate(&s[..1], &y[..1], 0.0, 3.0).is_none());
    }

    #[test]
    fn decay_rate_ignores_points_near_the_floor() {
        let mut s: Vec<f64> = (0..7).map(|k| 0.5 * k as f64).collect();
        let mut y: Vec<f64> = s.iter().map(|t| (-t).exp()).collect();
        // Floor-level readings (below 3 × 0.01) that would flatten the fit.
        s.extend([4.0, 5.0, 6.0, 7.0]);
        y.extend([0.012, 0.008, 0.011, 0.029]);
        let f = fit_decay_rate(&s, &y, 0.01, 3.0).unwrap();
        assert_eq!(f.points, 7);
        assert!((f.rate - 1.0).abs() < 1e-12, "{f:?}");
        assert!(!f.envelope);
        assert!(fit_decay_rate(&s, &y, 0.5, 3.0).is_none());
    }

    #[test]
    fn decay_rate_of_oscillation_fits_the_envelope() {
        let s: Vec<f64> = (0..61).map(|k| 0.1 * k as f64).collect();
        let y: Vec<f64> = s.iter().map(|t| ((-t).exp() * (3.0 * t).cos()).abs()).collect();
        let f = fit_decay_rate(&s, &y, 1e-3, 3.0).unwrap();
        assert!(f.envelope);
        assert!((f.rate - 1.0).abs() < 0.3, "{f:?}");
        assert!(f.se.is_finite() && f.se > 0.0);
    }

    #[test]
    fn wasserstein_of_a_shift_is_the_shift() {
        let a: Vec<f64> = (0..101).map(|i| ((i * 31) % 101) as f64 * 0.37 - 4.0).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 1.25).collect();
        assert!((wasserstein1(&a, &b) - 1.25).abs() < 1e-12);
        assert!((wasserstein1(&b, &a) - 1.25).abs() < 1e-12);
        assert_eq!(wasserstein1(&a, &a), 0.0);
        assert!(wasserstein1(&a, &[]).is_nan());
    }

    #[test]
    fn wasserstein_hand_computed_unequal_lengths() {
        // F_a⁻¹ = 0 on (0, ½], 1 on (½, 1]; F_b⁻¹ = 0, 0.5, 2 on thirds:
        // ½·⅙ + ½·⅙ + 1·⅓ = ½ (the same as ∫|F_a − F_b| dx).
        assert!((wasserstein1(&[1.0, 0.0], &[2.0, 0.0, 0.5]) - 0.5).abs() < 1e-15);
        // Against a point mass: mean absolute deviation.
        assert!((wasserstein1(&[0.0, 1.0, 5.0], &[2.0]) - 2.0).abs() < 1e-15);
    }

    #[test]
    fn w1_noise_level_predicts_w1_between_samples_of_one_law() {
        // Paths of 5 correlated records (a shared path offset), so the scaling must count paths.
        let mut rng = Pcg64::seed_from_u64(91);
        let path = |n: usize, rng: &mut Pcg64| -> Vec<f64> {
            (0..n)
                .flat_map(|_| {
                    let shift = normal(rng);
                    (0..5).map(|_| shift + 0.5 * normal(rng)).collect::<Vec<_>>()
                })
                .collect()
        };
        for sga_paths in [40, 4000] {
            let (mut predicted, mut actual) = (0.0, 0.0);
            for _ in 0..300 {
                let sde = path(400, &mut rng);
                let sga = path(sga_paths, &mut rng);
                predicted += w1_noise_level(&sde, 5, sga_paths);
                actual += wasserstein1(&sga, &sde);
            }
            // The unscaled halves would be off by ×1.66 (40 paths) and ×0.52 (4000).
            assert!((predicted / actual - 1.0).abs() < 0.06, "{sga_paths} SGA paths: predicted {predicted} vs actual {actual}");
        }
        assert!(w1_noise_level(&[1.0, 2.0, 3.0], 3, 10).is_nan(), "one path has no halves");
    }

    #[test]
    fn wasserstein_of_two_normal_samples_is_small() {
        let mut rng = Pcg64::seed_from_u64(77);
        let a: Vec<f64> = (0..100_000).map(|_| normal(&mut rng)).collect();
        let b: Vec<f64> = (0..100_000).map(|_| normal(&mut rng)).collect();
        let w = wasserstein1(&a, &b);
        assert!(w < 0.02, "{w}");
    }

    #[test]
    fn fft_autocovariance_matches_direct_sums() {
        let mut rng = Pcg64::seed_from_u64(3);
        let x: Vec<f64> = (0..37).map(|_| normal(&mut rng)).collect();
        let size = 128;
        let fft = Fft::new(size);
        let (mut re, mut im) = (vec![0.0; size], vec![0.0; size]);
        re[..37].copy_from_slice(&x);
        fft.forward(&mut re, &mut im);
        for (r, i) in re.iter_mut().zip(im.iter_mut()) {
            *r = *r * *r + *i * *i;
            *i = 0.0;
        }
        fft.forward(&mut re, &mut im);
        for k in 0..37 {
            let direct: f64 = (0..37 - k).map(|t| x[t] * x[t + k]).sum();
            assert!((re[k] / size as f64 - direct).abs() < 1e-12, "lag {k}");
        }
    }

    #[test]
    fn autocorr_time_of_ar1_and_white_noise() {
        let mut rng = Pcg64::seed_from_u64(1234);
        let phi: f64 = 0.8;
        let c = (1.0 - phi * phi).sqrt();
        let paths: Vec<Vec<f64>> = (0..50)
            .map(|_| {
                let mut x = normal(&mut rng);
                (0..20_000)
                    .map(|_| {
                        let v = x;
                        x = phi * x + c * normal(&mut rng);
                        v
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = paths.iter().map(|p| p.as_slice()).collect();
        let a = integrated_autocorr_time(&refs);
        let want = (1.0 + phi) / (1.0 - phi);
        assert!((a.tau / want - 1.0).abs() < 0.1, "{a:?}");
        assert!((a.ess - 1e6 / a.tau).abs() < 1e-6);
        assert!(a.window as f64 >= 5.0 * a.tau);

        let white: Vec<Vec<f64>> = (0..50).map(|_| (0..20_000).map(|_| normal(&mut rng)).collect()).collect();
        let refs: Vec<&[f64]> = white.iter().map(|p| p.as_slice()).collect();
        let w = integrated_autocorr_time(&refs);
        assert!((w.tau - 1.0).abs() < 0.05, "{w:?}");
        assert!(w.window >= 5);
    }

    #[test]
    fn autocorr_time_degenerate_inputs() {
        let flat = [2.0; 10];
        assert!(integrated_autocorr_time(&[&flat]).tau.is_nan());
        assert!(integrated_autocorr_time(&[]).tau.is_nan());
        // A short series never meets the window rule: W is capped at L − 1.
        let short = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(integrated_autocorr_time(&[&short]).window, 3);
    }
}
