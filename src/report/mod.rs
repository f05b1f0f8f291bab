//! The report layer: tables of weak errors and orders, and progress. Only the
//! CLI uses this; the engine hands it values.

mod long_run;
pub mod plot;
mod plot_manifest;
mod progress;
pub use long_run::long_run_report;
pub use progress::Progress;

use std::fmt::Write;

use crate::job::Job;
use crate::study::WeakErrorResult;

/// A confidence level as a percentage without spurious rounding (95, 99.5, 99.99).
/// An observed order with its interval half-width, "1.99 ± 0.03": two
/// decimals, more when the half-width would otherwise print as 0.00 (a
/// tight SML fit is "1.004 ± 0.003", never a zero-width "1.00 ± 0.00").
pub fn order_interval(order: f64, half_width: f64) -> String {
    let decimals = if half_width.is_finite() && half_width > 0.0 { (-(half_width / 0.95).log10()).ceil().clamp(2.0, 6.0) as usize } else { 2 };
    format!("{order:.decimals$} ± {half_width:.decimals$}")
}

pub fn percent(c: f64) -> String {
    let p = c * 100.0;
    if p < 0.01 {
        return format!("{p:.1e}");
    }
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn mean_or_dash(m: &crate::stats::Moments) -> String {
    if m.count == 0 {
        "—".into()
    } else {
        format!("{:.6}", m.mean)
    }
}

fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_nan() {
        "—".into()
    } else {
        format!("{x:.3e}")
    }
}

/// The weak-error tables (one per scheme, record time and test function) and
/// the observed orders beside the paper's.
pub fn weak_error_table(job: &Job, res: &WeakErrorResult) -> String {
    let mut out = String::new();
    let pct = percent(job.confidence);
    for s in &res.schemes {
        for (r, &t) in job.record_times.iter().enumerate() {
            for (fi, fname) in job.function_names.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\n== {} vs SDE ({} drift, {} noise, {}) | f = {} | t = {}",
                    s.scheme.name(),
                    s.drift.name(),
                    s.noise.name(),
                    job.sde.integrator.name(),
                    fname,
                    t
                );
                let _ = writeln!(
                    out,
                    "{:>9} {:>4} {:>12} {:>12} {:>11} {:>10} {:>10} {:>10}  resolved",
                    "η",
                    "m",
                    "E f SGA",
                    "E f SDE",
                    "e",
                    "SE",
                    format!("±CI{pct}%"),
                    "bias est"
                );
                for (e, &eta) in job.etas.iter().enumerate() {
                    let c = &s.cells[e][r][fi];
                    let flag = if c.resolved {
                        "yes"
                    } else if !(c.std_error >= 0.0) {
                        "no (fewer than 2 values)"
                    } else if c.weak_error.abs() < crate::study::RESOLVED_Z * c.std_error || c.std_error == 0.0 {
                        "no (|e| < 4 SE)"
                    } else {
                        "no (bias > 0.1|e|)"
                    };
                    let _ = writeln!(
                        out,
                        "{:>9} {:>4} {:>12} {:>12} {:>11} {:>10} {:>10} {:>10}  {}",
                        eta,
                        if job.sde.integrator == crate::job::Integrator::Exact { "—".to_string() } else { job.sde.substeps_for(eta).to_string() },
                        mean_or_dash(&c.sga),
                        mean_or_dash(&c.sde),
                        sci(c.weak_error),
                        sci(c.std_error),
                        sci(res.z * c.std_error),
                        sci(c.bias_estimate),
                        flag
                    );
                }
                let resolved = (0..job.etas.len()).filter(|&e| s.cells[e][r][fi].resolved).count();
                match s.orders[r][fi] {
                    Some(o) => {
                        let _ = writeln!(
                            out,
                            "observed order {} ({pct}% interval, {} resolved points{}) | paper: {}",
                            order_interval(o.order, o.half_width),
                            o.points,
                            if o.inflation > 1.0 { format!(", inflated ×{:.2} for scatter", o.inflation) } else { String::new() },
                            s.paper_order
                        );
                    }
                    None => {
                        let _ = writeln!(out, "observed order: not estimated ({resolved} of {} η resolved; need 2) | paper: {}", job.etas.len(), s.paper_order);
                    }
                }
                for (e, &(a, b)) in s.diverged.iter().enumerate() {
                    if a + b > 0 && r == 0 && fi == 0 {
                        let _ = writeln!(out, "note: η = {}: {a} SGA chains and {b} SDE paths diverged and were skipped", job.etas[e]);
                    }
                }
            }
        }
    }
    if let Some(t) = job.target {
        let goal = match t {
            crate::job::Target::StdError(x) => format!("SE ≤ {x}"),
            crate::job::Target::RelativeCi(r) => format!("±CI ≤ {r}·|e|"),
        };
        let _ = writeln!(out, "\nprecision target {goal} (cap {} SGA chains per η), after {} round(s):", job.max_paths, res.rounds);
        for s in &res.schemes {
            let met = s.target_met.as_deref().unwrap_or(&[]);
            let line: Vec<String> = job
                .etas
                .iter()
                .enumerate()
                .map(|(e, eta)| {
                    format!(
                        "η = {eta}: {} ({} SGA / {} SDE paths)",
                        if met.get(e) == Some(&true) { "met" } else { "not met" },
                        s.cells[e][0][0].sga.count,
                        s.cells[e][0][0].sde.count
                    )
                })
                .collect();
            let _ = writeln!(out, "  {}: {}", s.scheme.name(), line.join("; "));
        }
        let missed = res.schemes.iter().flat_map(|s| s.target_met.iter().flatten()).filter(|m| !**m).count();
        if missed > 0 {
            let _ = writeln!(
                out,
                "warning: the precision target was not met for {missed} (scheme, η) pair(s) within estimate.max_paths; raise it or relax the target"
            );
        }
    }
    // Warn where the SDE bias, not the Monte Carlo error, keeps a weak error unresolved.
    let mut biased = Vec::new();
    for s in &res.schemes {
        for (e, &eta) in job.etas.iter().enumerate() {
            for (r, &t) in job.record_times.iter().enumerate() {
                for (fi, name) in job.function_names.iter().enumerate() {
                    let c = &s.cells[e][r][fi];
                    if c.weak_error.abs() >= crate::study::RESOLVED_Z * c.std_error && c.bias_estimate > crate::study::RESOLVED_BIAS * c.weak_error.abs() {
                        biased.push(format!("{} {name} η={eta} t={t}", s.scheme.name()));
                    }
                }
            }
        }
    }
    if !biased.is_empty() {
        let _ = writeln!(
            out,
            "\nwarning: the SDE bias estimate exceeds 0.1 |e| for {} weak error(s) ({}); raise sde.substeps or lower sde.max_step",
            biased.len(),
            biased.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::order_interval;

    #[test]
    fn order_intervals_never_print_as_zero_width() {
        assert_eq!(order_interval(1.9876, 0.034), "1.99 ± 0.03");
        assert_eq!(order_interval(1.0043, 0.0031), "1.004 ± 0.003");
        assert_eq!(order_interval(1.00043, 0.00049), "1.0004 ± 0.0005");
        assert_eq!(order_interval(2.41, 0.45), "2.41 ± 0.45");
        assert_eq!(order_interval(1.5, f64::NAN), "1.50 ± NaN");
    }
}
