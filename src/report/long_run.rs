//! The long-run report: μ* and μ_η, distances, convergence, β(s), FDRs.

use std::fmt::Write;

use crate::analysis::{Analysis, Identity, KindAnalysis};

/// A time without binary-fraction noise (10.200000000000001 → 10.2).
fn short(t: f64) -> String {
    let s = format!("{t:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn coord_name(a: &Analysis, c: usize) -> String {
    if c < a.dim_theta {
        format!("θ{}", c + 1)
    } else {
        format!("ω{}", c - a.dim_theta + 1)
    }
}

fn rate(f: &Option<crate::stats::mixing::RateFit>) -> String {
    match f {
        Some(f) if f.se.is_finite() => format!("{:.3} ± {:.3}{}", f.rate, f.se, if f.envelope { " (envelope)" } else { "" }),
        Some(f) => format!("{:.3} (2 points){}", f.rate, if f.envelope { " (envelope)" } else { "" }),
        None => "— (fewer than 2 points above 3 × floor)".into(),
    }
}

fn identity(o: &mut String, name: &str, id: &Identity) {
    let _ = writeln!(
        o,
        "    {name}: lhs {:.5e} ± {:.1e}   rhs {:.5e} ± {:.1e}   gap {:+.3e} ± {:.1e}  (z = {:+.2})",
        id.lhs,
        id.lhs_se,
        id.rhs,
        id.rhs_se,
        id.gap,
        id.gap_se,
        id.z()
    );
}

/// Below this many paths a kind's standard errors (batch means over paths)
/// are too uncertain for normal intervals and z values: the report says so.
const FEW_PATHS: usize = 30;

fn kind(o: &mut String, a: &Analysis, k: &KindAnalysis) {
    let what = match k.source.as_str() {
        "sde" => format!("SDE for {} ({} drift), step {}", k.scheme, k.drift, k.step),
        "sga-scheduled" => "SML chains under the Remark 4 scheduler".into(),
        _ => format!("{} chains at η = {}", k.scheme.to_uppercase(), a.eta),
    };
    let _ = writeln!(o, "\n{}: {what}, {} paths", k.name, k.paths);
    if k.paths < FEW_PATHS {
        let _ = writeln!(
            o,
            "  note: only {} paths; every SE, interval and z below rests on {} per-path averages and is rough (the normal quantiles assume many paths)",
            k.paths, k.paths
        );
    }
    let _ = writeln!(o, "  coord          mean ± SE                 var ± SE           IAT (records)   ESS    W1 conv. rate");
    let d = a.dim;
    for c in 0..d {
        let m = &k.moments;
        let _ = writeln!(
            o,
            "  {:<6} {:>12.5e} ± {:<8.2e} {:>11.5e} ± {:<8.2e} {:>8.1} {:>10.0}   {}",
            coord_name(a, c),
            m.mean[c],
            m.mean_se[c],
            m.cov[c * d + c],
            m.cov_se[c * d + c],
            k.iat[c],
            k.ess[c],
            if k.source == "sga-scheduled" { "— (η varies)".into() } else { rate(&k.convergence_rate[c]) }
        );
    }
    if !k.mixing.is_empty() {
        let lags: Vec<String> = a.lags.iter().map(|&l| format!("{:.3}", a.record_time[l] - a.record_time[0])).collect();
        let _ = writeln!(o, "  β(s) of projections (2-D histogram, {} bins; floor on independent pairs in brackets, not subtracted)", a.bins);
        let _ = writeln!(o, "    s: {}", lags.join("  "));
        for m in &k.mixing {
            let vals: Vec<String> = m.beta.iter().zip(&m.floor).map(|(b, f)| format!("{b:.4} [{f:.4}]")).collect();
            let _ = writeln!(o, "    {}: {}", m.name, vals.join("  "));
            let _ = writeln!(o, "    {} decay rate: {} (a lower bound of the full β(s), which is at least β of any projection)", m.name, rate(&m.rate));
        }
    }
    if let (Some(f1), Some(f2)) = (&k.fdr1, &k.fdr2) {
        let _ = writeln!(o, "  fluctuation–dissipation (generator identities with the {} drift; SE from per-path averages):", k.drift);
        identity(o, "FDR1 E[|g_θ|²−|g_ω|²] = β⁻¹E[Tr(Σ∇²Φ)] + E[(b−b0)ᵀ∇Φ]", f1);
        identity(o, "FDR2 E[θᵀg_θ−ωᵀg_ω] = β⁻¹E[Tr Σ] + E[(b−b0)ᵀu]       ", f2);
        if k.source == "sga" {
            let _ = writeln!(o, "    (SGA samples follow μ_η, not μ*: the identities hold only up to O(η); the gap shows by how much)");
        }
    }
    if let (Some(first), Some(last)) = (k.eta_mean.first(), k.eta_mean.last()) {
        let _ = writeln!(o, "  learning rate: η starts at {first:.5} and averages {last:.5} over chains at the last record (records are every few steps, not equal times; no rates or β(s) for these chains)");
    }
}

/// The whole report as text.
pub fn long_run_report(a: &Analysis) -> String {
    let mut o = String::new();
    let r = a.record_time.len();
    let _ = writeln!(
        o,
        "long run: η = {}, B = {}, β⁻¹ = η/(2B) = {:.4e}; {} records to T = {}, stationary from t = {} ({} records)",
        a.eta,
        a.batch,
        a.eta / (2.0 * a.batch as f64),
        r,
        short(a.record_time[r - 1]),
        short(a.record_time[a.first_stationary]),
        r - a.first_stationary
    );
    let _ = writeln!(o, "Tr(Σ∇²Φ): {}", a.trace_method);
    let _ = writeln!(o, "μ* from SDE paths, μ_η from SGA chains: moments over records after the burn-in, SE by batch means over paths");
    for k in &a.kinds {
        kind(&mut o, a, k);
    }
    if !a.w1_sga_sde.is_empty() {
        let _ = writeln!(
            o,
            "\nW1 between stationary marginals (SGA μ_η vs SDE μ*), per coordinate; in brackets the noise level (W1 between halves of the SDE paths,\nscaled to these path counts): a W1 near it does not tell the two laws apart"
        );
        for m in &a.w1_sga_sde {
            let vals: Vec<String> = m.w1.iter().zip(&m.noise).enumerate().map(|(c, (x, n))| format!("{} {x:.3e} [{n:.1e}]", coord_name(a, c))).collect();
            let _ = writeln!(o, "  {} vs {}: {}", m.sga, m.sde, vals.join(", "));
        }
    }
    o
}
