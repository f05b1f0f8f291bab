//! Reading a long-run file and computing the analysis.

use std::path::Path;

use hdf5::types::VarLenUnicode;

use crate::stats::mixing::{beta_histogram, fit_decay_rate, integrated_autocorr_time, wasserstein1, FLOOR_FACTOR};

use super::{Analysis, Identity, KindAnalysis, Mixing, Moments};

/// A file that cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn err(&self, message: impl std::fmt::Display) -> AnalysisError {
        AnalysisError::File { path: self.path.display().to_string(), message: message.to_string() }
    }
}

/// Mean and standard error of per-path values.
fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    let se = (v / n).sqrt();
    // Per-path averages of a constant (e.g. β⁻¹Tr Σ for `lq`) differ only by
    // rounding; no sampling error is 1e-12 of the mean at any feasible path count.
    (m, if se <= 1e-12 * m.abs() { 0.0 } else { se })
}

/// Analyses the long-run study file at `path`.
pub fn analyze(path: &Path) -> Result<Analysis, AnalysisError> {
    let rd = Reader { path };
    if !path.exists() {
        return Err(rd.err("does not exist"));
    }
    let f = hdf5::File::open(path).map_err(|e| rd.err(format!("cannot open as HDF5: {}", crate::data::one_line(&e.to_string()))))?;
    let study: String = f.attr("study").and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default();
    if study != "long-run" {
        return Err(rd.err(if study.is_empty() {
            "not a gansde results file".to_string()
        } else {
            format!("a {study} results file; analyze reads long-run files")
        }));
    }
    let attr_f = |n: &str| f.attr(n).and_then(|a| a.read_scalar::<f64>()).map_err(|e| rd.err(format!("attribute {n}: {e}")));
    let attr_u = |n: &str| f.attr(n).and_then(|a| a.read_scalar::<u64>()).map_err(|e| rd.err(format!("attribute {n}: {e}")));
    let mut a = Analysis {
        eta: attr_f("eta")?,
        batch: attr_u("batch")? as usize,
        dim_theta: attr_u("dim_theta")? as usize,
        first_stationary: attr_u("first_stationary_record")? as usize,
        bins: attr_u("bins")? as usize,
        trace_method: f.attr("trace_method").and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    a.record_time = f.dataset("record_time").and_then(|d| d.read_raw::<f64>()).map_err(|e| rd.err(e))?;
    a.lags = f.dataset("lag_records").and_then(|d| d.read_raw::<u64>()).map_err(|e| rd.err(e))?.into_iter().map(|l| l as usize).collect();
    let pw = f.dataset("projection_weights").map_err(|e| rd.err(e))?;
    let d = pw.shape()[1];
    a.dim = d;
    let weights = pw.read_raw::<f64>().map_err(|e| rd.err(e))?;
    let pnames: Vec<String> =
        f.dataset("projection_names").and_then(|d| d.read_raw::<VarLenUnicode>()).map_err(|e| rd.err(e))?.iter().map(|s| s.to_string()).collect();
    let samples = f.group("samples").map_err(|e| rd.err(e))?;
    let names = samples.member_names().map_err(|e| rd.err(e))?;
    let inv_beta = a.eta / (2.0 * a.batch as f64);
    let r_all = a.record_time.len();
    let first = a.first_stationary;
    let rs = r_all - first;
    // Shared histogram edges per coordinate: the range of all stationary samples.
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    let mut stationary: Vec<Vec<Vec<f64>>> = Vec::new();
    for name in &names {
        let ds = samples.dataset(name).map_err(|e| rd.err(e))?;
        let shape = ds.shape();
        let p = shape[0];
        let sattr = |n: &str| ds.attr(n).and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default();
        let mut k = KindAnalysis {
            name: name.clone(),
            source: sattr("source"),
            scheme: sattr("scheme"),
            drift: sattr("drift"),
            step: ds.attr("step").and_then(|a| a.read_scalar::<f64>()).unwrap_or(f64::NAN),
            paths: p,
            ..Default::default()
        };
        let scheduled = k.source == "sga-scheduled";
        // Pass 1, path by path: batch means of u and u uᵀ, projections, coordinates.
        let mut path_mean = vec![0.0; p * d];
        let mut coords = vec![vec![0.0; p * r_all]; d];
        let mut proj = vec![vec![0.0; p * r_all]; pnames.len()];
        for pi in 0..p {
            let u: Vec<f64> = ds.read_slice_2d::<f64, _>((pi, .., ..)).map_err(|e| rd.err(format!("samples/{name}: {e}")))?.iter().copied().collect();
            if u.iter().any(|x| x.is_nan()) {
                return Err(rd.err(format!("samples/{name} path {pi} has missing records (NaN): a block file is missing or the run did not finish")));
            }
            for r in 0..r_all {
                let row = &u[r * d..(r + 1) * d];
                for c in 0..d {
                    coords[c][pi * r_all + r] = row[c];
                }
                for (j, pr) in proj.iter_mut().enumerate() {
                    pr[pi * r_all + r] = row.iter().zip(&weights[j * d..(j + 1) * d]).map(|(x, w)| x * w).sum();
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
        // Convergence curve and autocorrelation per coordinate.
        let mut stat_k = Vec::new();
        for c in 0..d {
            let x = &coords[c];
            let late: Vec<f64> = (0..p).flat_map(|pi| x[pi * r_all + first..(pi + 1) * r_all].iter().copied()).collect();
            // The late law enters through its quantiles at levels (i + ½)/P, so each record's
            // W1 is a sort of P values (the pooled late sample is sorted once).
            let mut sorted_late = late.clone();
            sorted_late.sort_by(f64::total_cmp);
            let q: Vec<f64> = (0..p).map(|i| sorted_late[((i as f64 + 0.5) / p as f64 * sorted_late.len() as f64) as usize]).collect();
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
            for v in &late {
                lo[c] = lo[c].min(*v);
                hi[c] = hi[c].max(*v);
            }
            stat_k.push(late);
        }
        stationary.push(stat_k);
        // β(s) per projection: pairs within a path; the floor from pairs across independent paths.
        // β(s) needs a stationary, time-homogeneous process: not the scheduled chains.
        for (j, pr) in proj.iter().enumerate().filter(|_| !scheduled) {
            let mut mx = Mixing { name: pnames[j].clone(), weights: weights[j * d..(j + 1) * d].to_vec(), ..Default::default() };
            for &lag in &a.lags {
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
        // FDR1 and FDR2 from the per-sample terms: per-path averages over the observed records.
        if let Ok(od) = f.dataset(&format!("observables/{name}")) {
            let nk = od.shape()[2];
            let all: Vec<f64> = od.read_raw::<f64>().map_err(|e| rd.err(format!("observables/{name}: {e}")))?;
            let mut per: Vec<Vec<f64>> = (0..6).map(|_| Vec::with_capacity(p)).collect();
            for pi in 0..p {
                let mut acc = [0.0; 6];
                let mut n = 0.0;
                for r in first..r_all {
                    let o = &all[(pi * r_all + r) * nk..(pi * r_all + r + 1) * nk];
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
        if let Ok(ed) = f.dataset(&format!("eta/{name}")) {
            let e: Vec<f64> = ed.read_raw::<f64>().map_err(|e| rd.err(format!("eta/{name}: {e}")))?;
            k.eta_mean = (0..r_all).map(|r| (0..p).map(|pi| e[pi * r_all + r]).sum::<f64>() / p as f64).collect();
        }
        a.kinds.push(k);
    }
    // Marginal histograms on shared edges, and W1 between each SGA kind and the SDE kind of its scheme.
    for (ki, k) in a.kinds.iter_mut().enumerate() {
        for c in 0..d {
            let (l, h) = if hi[c] > lo[c] { (lo[c], hi[c]) } else { (lo[c] - 0.5, lo[c] + 0.5) };
            let nb = a.bins;
            let edges: Vec<f64> = (0..=nb).map(|i| l + (h - l) * i as f64 / nb as f64).collect();
            let mut counts = vec![0.0; nb];
            let xs = &stationary[ki][c];
            for &x in xs {
                let b = (((x - l) / (h - l)) * nb as f64).floor().clamp(0.0, (nb - 1) as f64) as usize;
                counts[b] += 1.0;
            }
            let width = (h - l) / nb as f64;
            k.hist_density.push(counts.iter().map(|c| c / (xs.len() as f64 * width)).collect());
            k.hist_edges.push(edges);
        }
    }
    for (i, k) in a.kinds.iter().enumerate() {
        if k.source != "sga" {
            continue;
        }
        if let Some(j) = a.kinds.iter().position(|s| s.source == "sde" && s.scheme == k.scheme && !s.name.ends_with("_half")) {
            let w: Vec<f64> = (0..d).map(|c| wasserstein1(&stationary[i][c], &stationary[j][c])).collect();
            a.w1_sga_sde.push((k.name.clone(), a.kinds[j].name.clone(), w));
        }
    }
    Ok(a)
}
