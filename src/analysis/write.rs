//! Writing the analysis into the study file, group `analysis/` (replaced
//! whole on every run; the file is rewritten under a temporary name).

use std::path::Path;

use crate::io::results::{attr_f64, attr_str, dataset};

use super::{Analysis, Identity};

fn rate_arrays(fits: &[Option<crate::stats::mixing::RateFit>]) -> (Vec<f64>, Vec<f64>) {
    (fits.iter().map(|f| f.as_ref().map_or(f64::NAN, |f| f.rate)).collect(), fits.iter().map(|f| f.as_ref().map_or(f64::NAN, |f| f.se)).collect())
}

fn identity(g: &hdf5::Group, name: &str, id: &Identity, form: &str) -> hdf5::Result<()> {
    let v = [id.lhs, id.lhs_se, id.rhs, id.rhs_se, id.gap, id.gap_se];
    dataset(g, name, &[6], &v, "[lhs, lhs_se, rhs, rhs_se, gap = lhs − rhs, gap_se]; SE from per-path averages")?;
    let ds = g.dataset(name)?;
    attr_str(&ds, "form", form)
}

/// Stores `a` in the file at `path` under `analysis/`.
pub fn write_analysis(path: &Path, a: &Analysis) -> hdf5::Result<()> {
    let tmp = path.with_extension("h5.analysis-partial");
    std::fs::copy(path, &tmp).map_err(|e| hdf5::Error::from(format!("cannot copy {}: {e}", path.display()).as_str()))?;
    {
        let f = hdf5::File::open_rw(&tmp)?;
        if f.link_exists("analysis") {
            f.unlink("analysis")?;
        }
        let g = f.create_group("analysis")?;
        attr_str(&g, "trace_method", &a.trace_method)?;
        attr_f64(&g, "inverse_beta", a.eta / (2.0 * a.batch as f64))?;
        let lag_time: Vec<f64> = a.lags.iter().map(|&l| a.record_time[l] - a.record_time[0]).collect();
        dataset(&g, "lag_time", &[lag_time.len()], &lag_time, "β lags s (time)")?;
        let d = a.dim;
        for k in &a.kinds {
            let kg = g.create_group(&k.name)?;
            attr_str(&kg, "source", &k.source)?;
            attr_str(&kg, "scheme", &k.scheme)?;
            attr_str(&kg, "drift", &k.drift)?;
            attr_f64(&kg, "step", k.step)?;
            let m = &k.moments;
            dataset(&kg, "mean", &[d], &m.mean, "stationary mean of u (records after burn-in)")?;
            dataset(&kg, "mean_se", &[d], &m.mean_se, "standard error (batch means over paths)")?;
            dataset(&kg, "cov", &[d, d], &m.cov, "stationary covariance of u")?;
            dataset(&kg, "cov_se", &[d, d], &m.cov_se, "standard error (batch means over paths)")?;
            let nb = k.hist_density.first().map_or(0, |h| h.len());
            let edges: Vec<f64> = k.hist_edges.concat();
            let dens: Vec<f64> = k.hist_density.concat();
            dataset(&kg, "hist_edges", &[d, nb + 1], &edges, "marginal histogram bin edges per coordinate (shared by all kinds)")?;
            dataset(&kg, "hist_density", &[d, nb], &dens, "marginal density per bin (integrates to 1)")?;
            let r = k.convergence.first().map_or(0, |c| c.len());
            dataset(&kg, "convergence_w1", &[d, r], &k.convergence.concat(), "W1(law of u_c at record time, late-time law of u_c)")?;
            dataset(&kg, "convergence_floor", &[d], &k.convergence_floor, "median W1 over records after burn-in (the curve's noise level)")?;
            let (cr, cse) = rate_arrays(&k.convergence_rate);
            dataset(
                &kg,
                "convergence_rate",
                &[d],
                &cr,
                "fitted exponential rate of W1 against time (points before the burn-in above 3 × floor; envelope if it oscillates); NaN if < 2 points",
            )?;
            dataset(&kg, "convergence_rate_se", &[d], &cse, "regression SE of the rate")?;
            dataset(&kg, "iat", &[d], &k.iat, "integrated autocorrelation time in records (Sokal window)")?;
            dataset(&kg, "ess", &[d], &k.ess, "effective sample size (values / iat)")?;
            let np = k.mixing.len();
            let nl = a.lags.len();
            dataset(
                &kg,
                "beta",
                &[np, nl],
                &k.mixing.iter().flat_map(|m| m.beta.iter().copied()).collect::<Vec<_>>(),
                "2-D histogram estimate of β(s) per projection and lag (a lower bound of the full β(s))",
            )?;
            dataset(
                &kg,
                "beta_floor",
                &[np, nl],
                &k.mixing.iter().flat_map(|m| m.floor.iter().copied()).collect::<Vec<_>>(),
                "the estimator on pairs from independent paths (its floor; not subtracted)",
            )?;
            let (br, bse) = rate_arrays(&k.mixing.iter().map(|m| m.rate).collect::<Vec<_>>());
            dataset(&kg, "beta_rate", &[np], &br, "decay rate of β(s) fitted on lags above 3 × floor (to the envelope when it oscillates)")?;
            dataset(&kg, "beta_rate_se", &[np], &bse, "regression SE of the rate")?;
            if let Some(id) = &k.fdr1 {
                let form = match k.drift.as_str() {
                    "second-order" => "E[|g_θ|² − |g_ω|²] = β⁻¹E[Tr(Σ∇²Φ)] − (η/2)E[g_θᵀH_θθg_θ + g_ωᵀH_ωωg_ω]  (ALT-SDE, Theorem 4)",
                    "modified" => "E[|g_θ|² − |g_ω|²] = β⁻¹E[Tr(Σ∇²Φ)] − (η/2)E[g_θᵀH_θθg_θ − 2g_θᵀH_θωg_ω + g_ωᵀH_ωωg_ω]  (modified SML-SDE)",
                    _ => "E[|g_θ|² − |g_ω|²] = β⁻¹E[Tr(Σ∇²Φ)]  (SML-SDE, Theorem 4)",
                };
                identity(&kg, "fdr1", id, form)?;
            }
            if let Some(id) = &k.fdr2 {
                let form = match k.drift.as_str() {
                    "first-order" => "E[θᵀg_θ − ωᵀg_ω] = β⁻¹E[Tr(Σ_θ + Σ_ω)]  (SML-SDE, Theorem 5)",
                    _ => "E[θᵀg_θ − ωᵀg_ω] = β⁻¹E[Tr(Σ_θ + Σ_ω)] + E[uᵀ(b − b0)]  (generator identity with the simulated drift)",
                };
                identity(&kg, "fdr2", id, form)?;
            }
            if !k.eta_mean.is_empty() {
                dataset(&kg, "eta_mean", &[k.eta_mean.len()], &k.eta_mean, "mean learning rate over scheduled chains per record")?;
            }
        }
        let wg = g.create_group("w1_sga_sde")?;
        let ng = g.create_group("w1_noise")?;
        for m in &a.w1_sga_sde {
            let w = &m.w1;
            dataset(&wg, &m.sga, &[w.len()], w, "W1 between stationary marginals of this SGA kind and the SDE kind named in attribute `sde`, per coordinate")?;
            let ds = wg.dataset(&m.sga)?;
            attr_str(&ds, "sde", &m.sde)?;
            dataset(
                &ng,
                &m.sga,
                &[m.noise.len()],
                &m.noise,
                "noise level of w1_sga_sde/<this kind>: W1 between the two halves of the SDE kind's paths, scaled by sqrt((1/P_sga + 1/P_sde)/(1/P_1 + 1/P_2)) to the path counts compared",
            )?;
            let ds = ng.dataset(&m.sga)?;
            attr_str(&ds, "sde", &m.sde)?;
        }
    }
    std::fs::rename(&tmp, path).map_err(|e| hdf5::Error::from(format!("cannot rename {}: {e}", tmp.display()).as_str()))
}
