//! The observed convergence order (DESIGN §1 "What a study reports"): weighted
//! least squares of log|e| on log η over the resolved points, weights ê²/SE²
//! (the inverse variance of log|ê| by the delta method), interval from the
//! normal quantile inflated by √(χ²/dof) when that exceeds 1.

/// A fitted order with its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OrderFit {
    /// The slope of log|e| against log η.
    pub order: f64,
    /// Half-width of the interval at the study's confidence level.
    pub half_width: f64,
    /// The inflation factor applied (max(1, √(χ²/dof)); 1 when dof = 0).
    pub inflation: f64,
    /// How many points entered the fit.
    pub points: usize,
}

/// Fits the order on the points (η, e, SE); returns None with fewer than two points.
pub fn fit_order(points: &[(f64, f64, f64)], confidence: f64) -> Option<OrderFit> {
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| p.0.ln()).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1.abs().ln()).collect();
    let ws: Vec<f64> = points.iter().map(|p| (p.1 / p.2).powi(2)).collect();
    let sw: f64 = ws.iter().sum();
    let xbar = ws.iter().zip(&xs).map(|(w, x)| w * x).sum::<f64>() / sw;
    let ybar = ws.iter().zip(&ys).map(|(w, y)| w * y).sum::<f64>() / sw;
    let sxx: f64 = ws.iter().zip(&xs).map(|(w, x)| w * (x - xbar).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = ws.iter().zip(xs.iter().zip(&ys)).map(|(w, (x, y))| w * (x - xbar) * (y - ybar)).sum();
    let slope = sxy / sxx;
    let intercept = ybar - slope * xbar;
    let chi2: f64 = ws.iter().zip(xs.iter().zip(&ys)).map(|(w, (x, y))| w * (y - intercept - slope * x).powi(2)).sum();
    let dof = points.len() - 2;
    let inflation = if dof > 0 { (chi2 / dof as f64).sqrt().max(1.0) } else { 1.0 };
    let z = normal_quantile(0.5 + confidence / 2.0);
    Some(OrderFit { order: slope, half_width: z * inflation / sxx.sqrt(), inflation, points: points.len() })
}

/// The standard normal quantile Φ⁻¹(p) by Acklam's rational approximation
/// (relative error below 1.2e-9, far below what an interval needs).
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "quantile of {p}");
    const A: [f64; 6] = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.383577518672690e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959963984540054).abs() < 1e-6);
        assert!((normal_quantile(0.995) - 2.5758293035489).abs() < 1e-6);
        assert!((normal_quantile(0.5)).abs() < 1e-9);
        assert!((normal_quantile(0.001) + 3.090232306167813).abs() < 1e-6);
    }

    #[test]
    fn exact_power_law_gives_its_slope_without_inflation() {
        let pts: Vec<(f64, f64, f64)> = [0.2, 0.1, 0.05, 0.025].iter().map(|&h: &f64| (h, 3.0 * h * h, 0.01 * h * h)).collect();
        let f = fit_order(&pts, 0.95).unwrap();
        assert!((f.order - 2.0).abs() < 1e-12);
        assert_eq!(f.inflation, 1.0);
        // Each log-point has sd 1/300; four points spread over log η.
        assert!(f.half_width > 0.0 && f.half_width < 0.05);
    }

    #[test]
    fn scatter_inflates_the_interval() {
        let pts = vec![(0.2, 0.04 * 1.5, 0.0004), (0.1, 0.01 / 1.5, 0.0001), (0.05, 0.0025 * 1.5, 0.000025)];
        let f = fit_order(&pts, 0.95).unwrap();
        assert!(f.inflation > 1.0);
        assert!(fit_order(&pts[..1], 0.95).is_none());
    }
}
