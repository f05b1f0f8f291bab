//! The analysis of one stored kind of paths: moments, the convergence curve,
//! autocorrelation, marginals, β(s) of the projections and both FDRs.

use crate::stats::mixing::{beta_histogram, fit_decay_rate, integrated_autocorr_time, w1_noise_level, wasserstein1, FLOOR_FACTOR};

use super::read::{mean_se, PathReader, Reader};
use super::{Analysis, AnalysisError, Identity, KindAnalysis, Mixing, Moments};

/// What every kind's analysis shares: the file, its settings and the
/// histogram ranges common to all kinds.
pub(super) struct KindContext<'a> {
    pub rd: &'a Reader<'a>,
    pub file: &'a hdf5::File,
    pub a: &'a Analysis,
    /// Paths per block file.
    pub block: usize,
    /// Projection weights, [projection, coordinate] row-major.
    pub weights: &'a [f64],
    pub pnames: &'a [String],
    /// (lo, hi) of each coordinate's marginal histogram.
    pub ranges: &'a [(f64, f64)],
}

/// A kind's stationary samples per coordinate (paths in order, records after the burn-in).
pub(super) type Stationary = Vec<Vec<f64>>;

impl KindContext<'_> {
    /// Fills `k` (name, source, scheme and paths already set) from its samples
    /// `samples/<name>`. Returns the kind's stationary samples when `keep`, and, given
    /// `against` (another kind's stationary samples), the W1 distance between
    /// the two stationary marginals of each coordinate with its noise level
    /// (see [`MarginalDistance`](super::MarginalDistance)). Memory: this kind's
    /// coordinates and projections, O(paths × records) each.
    pub fn analyze_kind(
        &self,
        k: &mut KindAnalysis,
        keep: bool,
        against: Option<&[Vec<f64>]>,
    ) -> Result<(Option<Stationary>, Option<(Vec<f64>, Vec<f64>)>), AnalysisError> {
        let (a, rd) = (self.a, self.rd);
        let name = k.name.clone();
        let (d, p, r_all, first) = (a.dim, k.paths, a.record_time.len(), a.first_stationary);
        let rs = r_all - first;
        let inv_beta = a.eta / (2.0 * a.batch as f64);
        let scheduled = k.source == "sga-scheduled";
        // Pass 1, path by path: batch means of u and u uᵀ, projections, coordinates.
        let mut path_mean = vec![0.0; p * d];
        let mut coords = vec![vec![0.0; p * r_all]; d];
        let mut proj = vec![vec![0.0; p * r_all]; self.pnames.len()];
        let mut samples = PathReader::new(self.file, format!("samples/{name}"), self.block);
        for pi in 0..p {
            let u = samples.read_samples(rd, pi)?;
            for r in 0..r_all {
                let row = &u[r * d..(r + 1) * d];
                for c in 0..d {
                    coords[c][pi * r_all + r] = row[c];
                }
                for (j, pr) in proj.iter_mut().enumerate() {
                    pr[pi * r_all + r] = row.iter().zip(&self.weights[j * d..(j + 1) * d]).map(|(x, w)| x * w).sum();
                }
                if r >= first {
                    for c in 0..d {
                        path_mean[pi * d + c] += row[c] / rs as f64;
                    }
                }
            }
        }
        // Moments: per-path batch means; covariance from per-path averages of centred products.
        let mut m = Moments { mean: vec![0.0; d], mean_se: vec![0.0; d], cov: vec![0.0; d * d], cov_se: vec![0.0; d * d] };
        for c in 0..d {
            let col: Vec<f64> = (0..p).map(|pi| path_mean[pi * d + c]).collect();
            (m.mean[c], m.mean_se[c]) = mean_se(&col);
        }
        for c1 in 0..d {
            rd.check_stop()?;
            for c2 in 0..d {
                let per: Vec<f64> = (0..p)
                    .map(|pi| {
                        (first..r_all).map(|r| (coords[c1][pi * r_all + r] - m.mean[c1]) * (coords[c2][pi * r_all + r] - m.mean[c2])).sum::<f64>() / rs as f64
                    })
                    .collect();
                (m.cov[c1 * d + c2], m.cov_se[c1 * d + c2]) = mean_se(&per);
            }
        }
        k.moments = m;
        // Per coordinate: convergence curve, autocorrelation, marginal histogram, W1 against the partner.
        let mut kept: Stationary = Vec::new();
        let mut w1 = against.map(|_| (Vec::with_capacity(d), Vec::with_capacity(d)));
        for c in 0..d {
            rd.check_stop()?;
            let x = &coords[c];
            let late: Vec<f64> = (0..p).flat_map(|pi| x[pi * r_all + first..(pi + 1) * r_all].iter().copied()).collect();
            // The late law enters through its quantiles at levels (i + ½)/P, so each record's
            // W1 is a sort of P values (the pooled late sample is sorted once).
            let mut sorted_late = late.clone();
            sorted_late.sort_by(f64::total_cmp);
            let q: Vec<f64> = (0..p).map(|i| sorted_late[((i as f64 + 0.5) / p as f64 * sorted_late.len() as f64) as usize]).collect();
            drop(sorted_late);
            let mut col = vec![0.0; p];
            let curve: Vec<f64> = (0..r_all)
                .map(|r| {
                    for (pi, v) in col.iter_mut().enumerate() {
                        *v = x[pi * r_all + r];
                    }
                    col.sort_by(f64::total_cmp);
                    col.iter().zip(&q).map(|(a, b)| (a - b).abs()).sum::<f64>() / p as f64
                })
                .collect();
            let mut tail: Vec<f64> = curve[first..].to_vec();
            tail.sort_by(f64::total_cmp);
            let floor = tail[tail.len() / 2];
            // Under the scheduler η shrinks, so records are not equally spaced in time: no rate.
            // Only records before the burn-in: after it the curve is noise around its floor by
            // the job's own account, and a noise spike there is not convergence. (An oscillating
            // approach dips below the threshold early, so "the leading run" would cut it short;
            // the fit takes the envelope instead.)
            let lead = first.max(2).min(curve.len());
            let fit = if scheduled { None } else { fit_decay_rate(&a.record_time[..lead], &curve[..lead], floor, FLOOR_FACTOR) };
            k.convergence_rate.push(fit);
            k.convergence_floor.push(floor);
            k.convergence.push(curve);
            let series: Vec<&[f64]> = (0..p).map(|pi| &x[pi * r_all + first..(pi + 1) * r_all]).collect();
            let ac = integrated_autocorr_time(&series);
            // Strong negative correlation can drive the windowed sum to τ ≤ 0, where τ means nothing.
            let ok = ac.tau > 0.0;
            k.iat.push(if ok { ac.tau } else { f64::NAN });
            k.ess.push(if ok { ac.ess } else { f64::NAN });
            let (edges, density) = histogram(&late, self.ranges[c], a.bins);
            k.hist_edges.push(edges);
            k.hist_density.push(density);
            if let (Some((w, noise)), Some(other)) = (w1.as_mut(), against) {
                w.push(wasserstein1(&late, &other[c]));
                noise.push(w1_noise_level(&other[c], rs, p));
            }
            if keep {
                kept.push(late);
            }
        }
        drop(coords);
        // β(s) per projection: pairs within a path; the floor from pairs across independent paths.
        // β(s) needs a stationary, time-homogeneous process: not the scheduled chains.
        for (j, pr) in proj.iter().enumerate().filter(|_| !scheduled) {
            let mut mx = Mixing { name: self.pnames[j].clone(), weights: self.weights[j * d..(j + 1) * d].to_vec(), ..Default::default() };
            for &lag in &a.lags {
                rd.check_stop()?;
                let (mut x, mut y, mut yi) = (Vec::new(), Vec::new(), Vec::new());
                for pi in 0..p {
                    let other = (pi + p / 2) % p;
                    for r in first..r_all.saturating_sub(lag) {
                        x.push(pr[pi * r_all + r]);
                        y.push(pr[pi * r_all + r + lag]);
                        yi.push(pr[other * r_all + r + lag]);
                    }
                }
                mx.pairs.push(x.len() as u64);
                mx.beta.push(if x.len() > 1 { beta_histogram(&x, &y, a.bins) } else { f64::NAN });
                mx.floor.push(if x.len() > 1 && p > 1 { beta_histogram(&x, &yi, a.bins) } else { f64::NAN });
            }
            let s: Vec<f64> = a.lags.iter().map(|&l| a.record_time[l] - a.record_time[0]).collect();
            let floor = mx.floor.iter().copied().fold(0.0, f64::max);
            mx.rate = fit_decay_rate(&s, &mx.beta, floor, FLOOR_FACTOR);
            k.mixing.push(mx);
        }
        drop(proj);
        // FDR1 and FDR2 from the per-sample terms: per-path averages over the observed records.
        if let Ok(od) = self.file.dataset(&format!("observables/{name}")) {
            let nk = od.shape()[2];
            drop(od);
            let mut observed = PathReader::new(self.file, format!("observables/{name}"), self.block);
            let mut per: Vec<Vec<f64>> = (0..6).map(|_| Vec::with_capacity(p)).collect();
            for pi in 0..p {
                let all = observed.read(rd, pi)?;
                let mut acc = [0.0; 6];
                let mut n = 0.0;
                for r in first..r_all {
                    let o = &all[r * nk..(r + 1) * nk];
                    if o[0].is_nan() {
                        continue;
                    }
                    n += 1.0;
                    acc[0] += o[0];
                    acc[1] += inv_beta * o[1] + o[2];
                    acc[2] += o[0] - (inv_beta * o[1] + o[2]);
                    acc[3] += o[3];
                    acc[4] += inv_beta * o[4] + o[5];
                    acc[5] += o[3] - (inv_beta * o[4] + o[5]);
                }
                for (v, s) in per.iter_mut().zip(acc) {
                    v.push(s / n);
                }
            }
            let id = |o: usize| {
                let (lhs, lhs_se) = mean_se(&per[o]);
                let (rhs, rhs_se) = mean_se(&per[o + 1]);
                let (gap, gap_se) = mean_se(&per[o + 2]);
                Identity { lhs, lhs_se, rhs, rhs_se, gap, gap_se }
            };
            if per[0].iter().all(|x| x.is_finite()) {
                k.fdr1 = Some(id(0));
                k.fdr2 = Some(id(3));
            }
        }
        if self.file.group("eta").is_ok_and(|g| g.link_exists(&name)) {
            let mut eta = PathReader::new(self.file, format!("eta/{name}"), self.block);
            let mut sum = vec![0.0; r_all];
            for pi in 0..p {
                for (s, e) in sum.iter_mut().zip(eta.read(rd, pi)?) {
                    *s += e;
                }
            }
            k.eta_mean = sum.into_iter().map(|s| s / p as f64).collect();
        }
        Ok((keep.then_some(kept), w1))
    }
}

/// Bin edges and densities of `xs` on `bins` equal bins over `(lo, hi)`;
/// values at the ends fall into the end bins.
fn histogram(xs: &[f64], (l, h): (f64, f64), bins: usize) -> (Vec<f64>, Vec<f64>) {
    let edges: Vec<f64> = (0..=bins).map(|i| l + (h - l) * i as f64 / bins as f64).collect();
    let mut counts = vec![0.0; bins];
    for &x in xs {
        let b = (((x - l) / (h - l)) * bins as f64).floor().clamp(0.0, (bins - 1) as f64) as usize;
        counts[b] += 1.0;
    }
    let width = (h - l) / bins as f64;
    (edges, counts.iter().map(|c| c / (xs.len() as f64 * width)).collect())
}
