//! The `[long_run]` table: the long-horizon study of paper §4 (invariant
//! measure μ*, SGA stationary law μ_η, β-mixing, FDR1/FDR2). Validated here
//! into [`LongRun`], part of the one [`Job`](super::Job) the engine accepts.

use serde::Deserialize;

use super::{parse_function, Ctx, JobError, TestFunction};

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLongRun {
    chains: i64,
    sde_paths: Option<i64>,
    burn_in: f64,
    record_every: f64,
    half_step: Option<bool>,
    block: Option<i64>,
    projections: Option<Vec<toml::Value>>,
    lags: Option<Vec<f64>>,
    bins: Option<i64>,
    observe_every: Option<i64>,
    trace: Option<String>,
    probes: Option<i64>,
    scheduler: Option<RawScheduler>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    epsilon: f64,
    delta: f64,
    window: Option<i64>,
}

/// How Tr(Σ ∇²Φ) is computed for FDR1 at each stored sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TraceMethod {
    /// Exact: the Hessian from dim u Jacobian-vector products, Σ from the per-sample gradients.
    Exact,
    /// Hutchinson: mean of (F z)ᵀ ∇²Φ (F z) over `probes` normal vectors z (unbiased).
    Hutchinson(usize),
}

impl TraceMethod {
    /// A label for reports and the results file.
    pub fn describe(self) -> String {
        match self {
            TraceMethod::Exact => "exact (Hessian by JVPs, Σ from per-sample gradients)".into(),
            TraceMethod::Hutchinson(k) => format!("Hutchinson, {k} probes (F z)ᵀ∇²Φ(F z) per sample"),
        }
    }
}

/// The Remark 4 learning-rate scheduler for SML chains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SchedulerSpec {
    pub epsilon: f64,
    pub delta: f64,
    pub window: usize,
}

/// A linear functional of u = (θ, ω) whose β-mixing coefficient is estimated.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub name: String,
    pub weights: Vec<f64>,
}

/// The validated long-run settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LongRun {
    /// The single learning rate η (sga.eta).
    pub eta: f64,
    /// η-steps to the horizon T.
    pub steps: usize,
    /// Burn-in time; records before it serve only the convergence curve.
    pub burn_in: f64,
    /// η-steps between records.
    pub record_every: usize,
    /// Records per path, including t = 0.
    pub records: usize,
    /// SGA chains per scheme.
    pub chains: u64,
    /// SDE paths per scheme.
    pub sde_paths: u64,
    /// Also store the coupled path at half the SDE step.
    pub half_step: bool,
    /// Paths per block (the unit of work, of a sample file and of resume).
    pub block: u64,
    pub projections: Vec<Projection>,
    /// β lags, in records.
    pub lags: Vec<usize>,
    pub bins: usize,
    /// FDR terms are evaluated at every `observe_every`-th record after the burn-in.
    pub observe_every: usize,
    pub trace: TraceMethod,
    pub scheduler: Option<SchedulerSpec>,
}

impl LongRun {
    /// The first record at or after the burn-in.
    pub fn first_stationary(&self) -> usize {
        ((self.burn_in / (self.eta * self.record_every as f64)) - 1e-9).ceil().max(0.0) as usize
    }
    /// Time of record r.
    pub fn record_time(&self, r: usize) -> f64 {
        (r * self.record_every) as f64 * self.eta
    }
}

/// Most records stored per path (the analysis holds paths × records per coordinate).
const MAX_RECORDS: usize = 100_000_000;
/// Most Hutchinson probe vectors per sample.
const MAX_PROBES: i64 = 10_000;
/// Longest averaging window of the scheduler (each chain keeps the window).
const MAX_WINDOW: u64 = 1_000_000;

/// Whole number of η-steps in `t`, or None.
fn whole_steps(t: f64, eta: f64) -> Option<usize> {
    let n = (t / eta).round();
    ((n * eta - t).abs() <= 1e-9 * t.max(eta)).then_some(n as usize)
}

/// Validates `[long_run]` against the rest of the job: one η, T, the schemes and dims.
#[allow(clippy::too_many_arguments)]
pub(super) fn validate(
    ctx: &Ctx,
    raw: &RawLongRun,
    etas: &[f64],
    horizon: f64,
    batch: usize,
    has_sml: bool,
    dt: usize,
    dw: usize,
) -> Result<LongRun, JobError> {
    let [eta] = etas else {
        return Err(ctx.err("sga.eta", format!("a long-run study uses one learning rate; got {} (write e.g. eta = [{}])", etas.len(), etas[0])));
    };
    let eta = *eta;
    let steps = whole_steps(horizon, eta).expect("checked with sga.eta");
    if raw.chains < 2 {
        return Err(
            ctx.err("long_run.chains", format!("{} is not allowed; need at least 2 SGA chains (intervals come from the spread between chains)", raw.chains))
        );
    }
    let sde_paths = raw.sde_paths.unwrap_or(raw.chains);
    if sde_paths < 2 {
        return Err(ctx.err("long_run.sde_paths", format!("{sde_paths} is not allowed; need at least 2 paths")));
    }
    let every = whole_steps(raw.record_every, eta)
        .filter(|&n| n >= 1 && raw.record_every.is_finite())
        .ok_or_else(|| ctx.err("long_run.record_every", format!("{} is not a positive whole number of η-steps (η = {eta})", raw.record_every)))?;
    if !steps.is_multiple_of(every) {
        return Err(ctx.err("long_run.record_every", format!("{} does not divide the horizon T = {horizon}", raw.record_every)));
    }
    let records = steps / every + 1;
    if records > MAX_RECORDS {
        return Err(ctx.err(
            "long_run.record_every",
            format!("{records} records per path (T / record_every + 1) is beyond the limit of 10^8; raise record_every or lower sga.horizon"),
        ));
    }
    if !(raw.burn_in.is_finite() && raw.burn_in >= 0.0 && raw.burn_in < horizon) {
        return Err(ctx.err("long_run.burn_in", format!("{} must lie in [0, T = {horizon})", raw.burn_in)));
    }
    let block = raw.block.unwrap_or(16);
    if block < 1 {
        return Err(ctx.err("long_run.block", format!("{block} is not a positive number of paths")));
    }
    if block as u64 > crate::rng::MAX_CHAIN {
        return Err(ctx.err("long_run.block", format!("{block} paths per block is beyond the stream layout (at most 2^40 − 1 paths)")));
    }
    let bins = raw.bins.unwrap_or(20);
    if !(2..=1000).contains(&bins) {
        return Err(ctx.err("long_run.bins", format!("{bins} is not allowed; need 2..=1000 histogram bins per axis")));
    }
    let mut lr = LongRun {
        eta,
        steps,
        burn_in: raw.burn_in,
        record_every: every,
        records,
        chains: raw.chains as u64,
        sde_paths: sde_paths as u64,
        half_step: raw.half_step.unwrap_or(true),
        block: block as u64,
        projections: Vec::new(),
        lags: Vec::new(),
        bins: bins as usize,
        observe_every: 1,
        trace: TraceMethod::Exact,
        scheduler: None,
    };
    let oe = raw.observe_every.unwrap_or(1);
    if oe < 1 {
        return Err(ctx.err("long_run.observe_every", format!("{oe} is not a positive number of records")));
    }
    lr.observe_every = oe as usize;
    let stationary = records - lr.first_stationary();
    if stationary < 2 {
        return Err(ctx.err("long_run.burn_in", format!("{} leaves fewer than 2 records after the burn-in; lower it or raise sga.horizon", raw.burn_in)));
    }
    let d = dt + dw;
    let default_proj = [toml::Value::String("theta1".into()), toml::Value::String("omega1".into())];
    for v in raw.projections.as_deref().unwrap_or(&default_proj) {
        let p = match v {
            toml::Value::String(s) => match parse_function(s, dt, dw) {
                Ok(TestFunction::Coord(k)) => {
                    let mut w = vec![0.0; d];
                    w[k] = 1.0;
                    Projection { name: s.trim().to_string(), weights: w }
                }
                Ok(_) => return Err(ctx.err("long_run.projections", format!("\"{s}\" is not linear; give a coordinate (thetaK, omegaK, uK) or {d} weights"))),
                Err(m) => return Err(ctx.err("long_run.projections", m)),
            },
            toml::Value::Array(a) => {
                let w: Option<Vec<f64>> = a.iter().map(|x| x.as_float().or_else(|| x.as_integer().map(|i| i as f64))).collect();
                match w {
                    Some(w) if w.len() == d && w.iter().all(|x| x.is_finite()) && w.iter().any(|x| *x != 0.0) => {
                        let name = format!("[{}]", w.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(","));
                        Projection { name, weights: w }
                    }
                    _ => {
                        return Err(ctx.err(
                            "long_run.projections",
                            format!(
                                "the weight vector {} has {} entries; it needs {d} finite numbers, not all zero (one per coordinate of u)",
                                crate::data::one_line(&v.to_string()),
                                a.len()
                            ),
                        ))
                    }
                }
            }
            other => return Err(ctx.err("long_run.projections", format!("{other} is neither a coordinate name nor a weight vector"))),
        };
        if let Some(q) = lr.projections.iter().find(|q| q.weights == p.weights) {
            let message = if q.name == p.name {
                format!("\"{}\" is listed twice", p.name)
            } else {
                format!("\"{}\" is the same projection as \"{}\"; list each once", p.name, q.name)
            };
            return Err(ctx.err("long_run.projections", message));
        }
        lr.projections.push(p);
    }
    if lr.projections.is_empty() {
        return Err(ctx.err("long_run.projections", "name at least one projection, e.g. \"theta1\""));
    }
    let span = lr.record_time(records - 1) - lr.record_time(lr.first_stationary());
    let default_lags: Vec<f64> = {
        let base = raw.record_every;
        [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0].iter().map(|k| k * base).filter(|&s| s <= span / 2.0).collect()
    };
    let lags = raw.lags.clone().unwrap_or(default_lags);
    if lags.is_empty() {
        if raw.lags.is_none() {
            return Err(ctx.err(
                "long_run.burn_in",
                format!(
                    "leaves a stationary span of {span}, too short for any default β lag (at least 2 × record_every = {}); lower it or raise sga.horizon",
                    2.0 * raw.record_every
                ),
            ));
        }
        return Err(ctx.err("long_run.lags", "give at least one lag (a time, a multiple of record_every)"));
    }
    for &s in &lags {
        let k = whole_steps(s, raw.record_every).filter(|&k| k >= 1 && s.is_finite());
        match k {
            Some(k) if (k as f64) * raw.record_every < span => {
                if !lr.lags.contains(&k) {
                    lr.lags.push(k)
                }
            }
            Some(_) => {
                return Err(ctx.err(
                    "long_run.lags",
                    format!(
                        "s = {s} is not shorter than the stationary span {span} (from the first record after the burn-in, t = {}, to T = {horizon})",
                        lr.record_time(lr.first_stationary())
                    ),
                ))
            }
            None => return Err(ctx.err("long_run.lags", format!("s = {s} is not a positive multiple of record_every = {}", raw.record_every))),
        }
    }
    lr.lags.sort_unstable();
    lr.trace = match (raw.trace.as_deref().unwrap_or("auto"), raw.probes) {
        (_, Some(p)) if p < 1 => return Err(ctx.err("long_run.probes", format!("{p} is not a positive number of probe vectors"))),
        ("exact", Some(_)) => return Err(ctx.err("long_run.probes", "only used with trace = \"hutchinson\"")),
        ("exact", None) => TraceMethod::Exact,
        // The exact trace costs dim u JVPs and a dim u × dim u covariance per sample.
        ("auto", Some(_)) if d <= 64 => {
            return Err(ctx.err(
                "long_run.probes",
                format!("not used: trace = \"auto\" takes the exact trace for dim u = {d} ≤ 64; set trace = \"hutchinson\" to use probes"),
            ))
        }
        (_, Some(p)) if p > MAX_PROBES => {
            return Err(ctx.err(
                "long_run.probes",
                format!("{p} probe vectors per sample is beyond the limit of {MAX_PROBES} (use trace = \"exact\" for an exact trace)"),
            ))
        }
        ("hutchinson", p) => TraceMethod::Hutchinson(p.unwrap_or(4) as usize),
        ("auto", p) => {
            if d <= 64 {
                TraceMethod::Exact
            } else {
                TraceMethod::Hutchinson(p.unwrap_or(4) as usize)
            }
        }
        (o, _) => return Err(ctx.err("long_run.trace", format!("unknown method \"{o}\"; valid: \"auto\", \"exact\", \"hutchinson\""))),
    };
    if let Some(s) = &raw.scheduler {
        if !has_sml {
            return Err(ctx.err("long_run.scheduler", "the Remark 4 scheduler drives SML chains; add \"sml\" to sga.schemes"));
        }
        if !(s.epsilon.is_finite() && s.epsilon > 0.0) {
            return Err(ctx.err("long_run.scheduler.epsilon", format!("{} must be a positive tolerance", s.epsilon)));
        }
        if !(s.delta > 0.0 && s.delta < 1.0) {
            return Err(ctx.err("long_run.scheduler.delta", format!("{} must lie strictly between 0 and 1 (η ← (1 − δ) η)", s.delta)));
        }
        let window = s.window.unwrap_or(1);
        if window < 1 {
            return Err(ctx.err("long_run.scheduler.window", format!("{window} is not a positive number of steps")));
        }
        if window as u64 > (steps as u64).min(MAX_WINDOW) {
            return Err(
                ctx.err("long_run.scheduler.window", format!("{window} steps is longer than the run (T/η = {steps} steps) or beyond the limit of 10^6 steps"))
            );
        }
        if batch < 2 {
            return Err(ctx.err("long_run.scheduler", format!("needs sga.batch ≥ 2 (the minibatch covariance Σ̂ is the unbiased one); B = {batch}")));
        }
        lr.scheduler = Some(SchedulerSpec { epsilon: s.epsilon, delta: s.delta, window: window as usize });
    }
    Ok(lr)
}
