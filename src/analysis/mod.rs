//! Analysis of a long-run study file (DESIGN §1 "What a study reports", long
//! run): μ* and μ_η moments with intervals, marginal histograms, Wasserstein
//! distances, the convergence curve, β(s) of projections with floor and rate,
//! autocorrelation times, and both sides of FDR1/FDR2. Reads the samples path
//! by path or coordinate by coordinate (memory O(paths × records) per
//! coordinate, never the whole array); never prints.

mod kind;
mod read;
mod write;

pub use read::{analyze, analyze_until, AnalysisError};
pub use write::write_analysis;

/// Moments of a stationary law with intervals from batch means over paths:
/// each path's time average (records after the burn-in) is one batch, and
/// paths are independent.
#[derive(Clone, Debug, Default)]
pub struct Moments {
    pub mean: Vec<f64>,
    pub mean_se: Vec<f64>,
    /// [d, d] row-major.
    pub cov: Vec<f64>,
    pub cov_se: Vec<f64>,
}

/// One side-by-side check of a generator identity.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity {
    pub lhs: f64,
    pub lhs_se: f64,
    pub rhs: f64,
    pub rhs_se: f64,
    /// lhs − rhs, with its SE from the per-path differences.
    pub gap: f64,
    pub gap_se: f64,
}

impl Identity {
    /// gap / SE.
    pub fn z(&self) -> f64 {
        self.gap / self.gap_se
    }
}

/// β(s) of one projection.
#[derive(Clone, Debug, Default)]
pub struct Mixing {
    pub name: String,
    pub weights: Vec<f64>,
    /// The 2-D histogram estimate at each lag.
    pub beta: Vec<f64>,
    /// The same estimator on pairs from independent paths (its floor; never subtracted).
    pub floor: Vec<f64>,
    /// Pairs used per lag.
    pub pairs: Vec<u64>,
    /// Decay rate of β(s) fitted on lags above 3 × floor (a lower bound of the full β's rate
    /// is not implied; β of a projection is a lower bound of the full β(s)).
    pub rate: Option<crate::stats::mixing::RateFit>,
}

/// Everything known about one stored kind.
#[derive(Clone, Debug, Default)]
pub struct KindAnalysis {
    pub name: String,
    pub source: String,
    pub scheme: String,
    pub drift: String,
    pub step: f64,
    pub paths: usize,
    pub moments: Moments,
    /// Per coordinate: histogram edges [bins + 1] and densities [bins] over the
    /// stationary records, on edges shared by all kinds.
    pub hist_edges: Vec<Vec<f64>>,
    pub hist_density: Vec<Vec<f64>>,
    /// W1 of each coordinate's law at each record to its late-time law [d][records].
    pub convergence: Vec<Vec<f64>>,
    /// The W1 level the curve settles at (median over late records) per coordinate.
    pub convergence_floor: Vec<f64>,
    pub convergence_rate: Vec<Option<crate::stats::mixing::RateFit>>,
    pub mixing: Vec<Mixing>,
    /// Integrated autocorrelation time (in records) and effective sample size per coordinate.
    pub iat: Vec<f64>,
    pub ess: Vec<f64>,
    pub fdr1: Option<Identity>,
    pub fdr2: Option<Identity>,
    /// Scheduled chains: mean η over paths per record.
    pub eta_mean: Vec<f64>,
}

/// The analysis of a long-run file.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub eta: f64,
    pub batch: usize,
    pub dim_theta: usize,
    pub dim: usize,
    pub record_time: Vec<f64>,
    pub first_stationary: usize,
    pub lags: Vec<usize>,
    pub bins: usize,
    pub trace_method: String,
    pub kinds: Vec<KindAnalysis>,
    /// Each plain SGA kind's stationary marginals against the SDE kind of its scheme.
    pub w1_sga_sde: Vec<MarginalDistance>,
}

/// W1 between the stationary marginals of an SGA kind (μ_η) and of the SDE
/// kind of its scheme at the job's step (μ*), per coordinate, beside the
/// level W1 reaches by sampling noise alone.
#[derive(Clone, Debug, Default)]
pub struct MarginalDistance {
    pub sga: String,
    pub sde: String,
    pub w1: Vec<f64>,
    /// W1 between the first and the second half of the SDE paths (one law),
    /// scaled by √((1/P_sga + 1/P_sde) / (1/P₁ + 1/P₂)) to the path counts
    /// compared: two samples of one law are about this far apart. Records
    /// within a path are correlated, so the scaling counts paths, and assumes
    /// SGA and SDE paths of similar autocorrelation.
    pub noise: Vec<f64>,
}
