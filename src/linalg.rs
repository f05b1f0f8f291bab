//! Small dense linear algebra for the closed-form pieces: matrix exponentials
//! (exact Ornstein–Uhlenbeck transitions of the `lq` game), Cholesky factors
//! of constant noise covariances and Lyapunov-type sums. Dimensions here are
//! the parameter dimension d (a handful), so clarity beats blocking.

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Mat {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Mat {
    /// The rows × cols zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Mat { rows, cols, data: vec![0.0; rows * cols] }
    }

    /// The n × n identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n, n);
        for i in 0..n {
            m[(i, i)] = 1.0;
        }
        m
    }

    /// Builds a matrix from nested rows (all of equal length).
    pub fn from_rows(rows: &[Vec<f64>]) -> Self {
        let r = rows.len();
        let c = rows.first().map_or(0, |x| x.len());
        let mut m = Self::zeros(r, c);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.len(), c, "ragged matrix");
            m.data[i * c..(i + 1) * c].copy_from_slice(row);
        }
        m
    }

    /// The transpose.
    pub fn t(&self) -> Self {
        let mut m = Self::zeros(self.cols, self.rows);
        for i in 0..self.rows {
            for j in 0..self.cols {
                m[(j, i)] = self[(i, j)];
            }
        }
        m
    }

    /// The matrix product self · other.
    pub fn mul(&self, other: &Mat) -> Mat {
        assert_eq!(self.cols, other.rows);
        let mut m = Self::zeros(self.rows, other.cols);
        for i in 0..self.rows {
            for k in 0..self.cols {
                let a = self[(i, k)];
                if a == 0.0 {
                    continue;
                }
                for j in 0..other.cols {
                    m[(i, j)] += a * other[(k, j)];
                }
            }
        }
        m
    }

    /// The product self · v.
    pub fn mul_vec(&self, v: &[f64]) -> Vec<f64> {
        assert_eq!(self.cols, v.len());
        (0..self.rows).map(|i| (0..self.cols).map(|j| self[(i, j)] * v[j]).sum()).collect()
    }

    /// self + s · other.
    pub fn add_scaled(&self, s: f64, other: &Mat) -> Mat {
        assert_eq!((self.rows, self.cols), (other.rows, other.cols));
        let data = self.data.iter().zip(&other.data).map(|(a, b)| a + s * b).collect();
        Mat { rows: self.rows, cols: self.cols, data }
    }

    /// s · self.
    pub fn scale(&self, s: f64) -> Mat {
        Mat { rows: self.rows, cols: self.cols, data: self.data.iter().map(|a| s * a).collect() }
    }

    /// The maximum absolute row sum (the ∞-norm).
    pub fn norm_inf(&self) -> f64 {
        (0..self.rows).map(|i| (0..self.cols).map(|j| self[(i, j)].abs()).sum::<f64>()).fold(0.0, f64::max)
    }

    /// The sub-matrix of rows r0..r0+nr and columns c0..c0+nc.
    pub fn block(&self, r0: usize, c0: usize, nr: usize, nc: usize) -> Mat {
        let mut m = Self::zeros(nr, nc);
        for i in 0..nr {
            for j in 0..nc {
                m[(i, j)] = self[(r0 + i, c0 + j)];
            }
        }
        m
    }

    /// Writes `b` into self with its top-left corner at (r0, c0).
    pub fn set_block(&mut self, r0: usize, c0: usize, b: &Mat) {
        for i in 0..b.rows {
            for j in 0..b.cols {
                self[(r0 + i, c0 + j)] = b[(i, j)];
            }
        }
    }
}

impl std::ops::Index<(usize, usize)> for Mat {
    type Output = f64;
    fn index(&self, (i, j): (usize, usize)) -> &f64 {
        &self.data[i * self.cols + j]
    }
}

impl std::ops::IndexMut<(usize, usize)> for Mat {
    fn index_mut(&mut self, (i, j): (usize, usize)) -> &mut f64 {
        &mut self.data[i * self.cols + j]
    }
}

/// The matrix exponential e^M by scaling and squaring with a degree-18 Taylor
/// polynomial; accurate to a few ulps·‖M‖ for the small, moderately normed
/// matrices of exact OU transitions.
pub fn expm(m: &Mat) -> Mat {
    assert_eq!(m.rows, m.cols);
    let n = m.rows;
    let norm = m.norm_inf();
    let mut squarings = 0u32;
    if norm > 0.5 {
        squarings = (norm / 0.5).log2().ceil() as u32;
    }
    let a = m.scale(1.0 / f64::powi(2.0, squarings as i32));
    let mut result = Mat::identity(n);
    let mut term = Mat::identity(n);
    for k in 1..=18 {
        term = term.mul(&a).scale(1.0 / k as f64);
        result = result.add_scaled(1.0, &term);
    }
    for _ in 0..squarings {
        result = result.mul(&result);
    }
    result
}

/// A lower-triangular L with L Lᵀ = S for a symmetric positive semi-definite S.
/// Pivots that vanish (to 1e-14 relative) give zero columns, so a singular
/// covariance still factors; a clearly negative pivot is an error.
pub fn cholesky_psd(s: &Mat) -> Result<Mat, String> {
    assert_eq!(s.rows, s.cols);
    let n = s.rows;
    let scale = (0..n).map(|i| s[(i, i)].abs()).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut l = Mat::zeros(n, n);
    for j in 0..n {
        let mut d = s[(j, j)];
        for k in 0..j {
            d -= l[(j, k)] * l[(j, k)];
        }
        if d < -1e-10 * scale {
            return Err(format!("matrix is not positive semi-definite (pivot {d:e} at {j})"));
        }
        if d <= 1e-14 * scale {
            continue;
        }
        let djj = d.sqrt();
        l[(j, j)] = djj;
        for i in j + 1..n {
            let mut v = s[(i, j)];
            for k in 0..j {
                v -= l[(i, k)] * l[(j, k)];
            }
            l[(i, j)] = v / djj;
        }
    }
    Ok(l)
}

/// The exact one-step transition of the affine SDE dU = (K U + k) dt + dM with
/// constant diffusion covariance S (σσᵀ = S) over a time step τ:
/// U_{t+τ} = Φ U_t + ψ + N(0, Q). Φ and ψ from the exponential of the
/// augmented drift; Q by Van Loan's block exponential.
#[derive(Clone, Debug)]
pub struct OuTransition {
    pub phi: Mat,
    pub psi: Vec<f64>,
    pub q: Mat,
}

impl OuTransition {
    /// Computes Φ = e^{Kτ}, ψ = ∫₀^τ e^{Ks} k ds and Q = ∫₀^τ e^{Ks} S e^{Kᵀs} ds.
    pub fn new(k_mat: &Mat, k_vec: &[f64], s: &Mat, tau: f64) -> Self {
        let d = k_mat.rows;
        let mut aug = Mat::zeros(d + 1, d + 1);
        aug.set_block(0, 0, &k_mat.scale(tau));
        for i in 0..d {
            aug[(i, d)] = k_vec[i] * tau;
        }
        let e = expm(&aug);
        let phi = e.block(0, 0, d, d);
        let psi = (0..d).map(|i| e[(i, d)]).collect();
        let mut vl = Mat::zeros(2 * d, 2 * d);
        vl.set_block(0, 0, &k_mat.scale(-tau));
        vl.set_block(0, d, &s.scale(tau));
        vl.set_block(d, d, &k_mat.t().scale(tau));
        let ev = expm(&vl);
        let f12 = ev.block(0, d, d, d);
        let f22 = ev.block(d, d, d, d);
        let mut q = f22.t().mul(&f12);
        // Symmetrise away rounding so Cholesky sees an exactly symmetric matrix.
        for i in 0..d {
            for j in 0..i {
                let v = 0.5 * (q[(i, j)] + q[(j, i)]);
                q[(i, j)] = v;
                q[(j, i)] = v;
            }
        }
        OuTransition { phi, psi, q }
    }
}

/// The solution of A x = b by Gaussian elimination with partial pivoting, or
/// None when A is singular to working precision (a pivot at or below
/// n·ε·max|a_ij|, where the computed solution would be rounding noise).
pub fn solve(a: &Mat, b: &[f64]) -> Option<Vec<f64>> {
    assert_eq!(a.rows, a.cols, "solve needs a square matrix");
    assert_eq!(a.rows, b.len(), "solve needs one right-hand side entry per row");
    let n = a.rows;
    let mut m = a.data.clone();
    let mut x = b.to_vec();
    let scale = m.iter().fold(0.0_f64, |s, v| s.max(v.abs()));
    let tiny = n as f64 * f64::EPSILON * scale;
    for col in 0..n {
        let (piv, pmax) = (col..n).map(|r| (r, m[r * n + col].abs())).fold((col, -1.0), |best, c| if c.1 > best.1 { c } else { best });
        if pmax.is_nan() || pmax <= tiny {
            return None;
        }
        if piv != col {
            for j in col..n {
                m.swap(col * n + j, piv * n + j);
            }
            x.swap(col, piv);
        }
        let d = m[col * n + col];
        for r in col + 1..n {
            let f = m[r * n + col] / d;
            if f == 0.0 {
                continue;
            }
            for j in col + 1..n {
                m[r * n + j] -= f * m[col * n + j];
            }
            x[r] -= f * x[col];
        }
    }
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|j| m[r * n + j] * x[j]).sum();
        x[r] = (x[r] - s) / m[r * n + r];
    }
    Some(x)
}

/// Solves a d²-dimensional Kronecker-form Lyapunov system for vec Σ (row-major)
/// and returns Σ symmetrised, since rounding leaves Σ − Σᵀ at the 1e-16 level
/// and Cholesky downstream wants exact symmetry.
fn lyapunov_kron(op: &Mat, rhs: &[f64], d: usize, what: &str) -> Mat {
    let v = solve(op, rhs)
        .unwrap_or_else(|| panic!("{what}: the Lyapunov operator is singular (an eigenvalue pair with λ_i + λ_j = 0, or λ_i λ_j = 1 for the discrete form)"));
    let mut s = Mat { rows: d, cols: d, data: v };
    for i in 0..d {
        for j in 0..i {
            let m = 0.5 * (s[(i, j)] + s[(j, i)]);
            s[(i, j)] = m;
            s[(j, i)] = m;
        }
    }
    s
}

/// The Σ solving K Σ + Σ Kᵀ + Q = 0 for Hurwitz K: the stationary covariance of
/// the OU process dX = K X dt + σ dW with Q = σσᵀ (= ∫₀^∞ e^{Ks} Q e^{Kᵀs} ds).
/// Solved as the Kronecker system (I⊗K + K⊗I) vec Σ = −vec Q by [`solve`];
/// O(d⁶), meant for d up to about 30. Panics if the operator is singular
/// (some λ_i + λ_j = 0); a non-Hurwitz K without such a pair gives the
/// (indefinite) algebraic solution, which is no covariance.
pub fn lyapunov_continuous(k: &Mat, q: &Mat) -> Mat {
    assert_eq!(k.rows, k.cols, "lyapunov_continuous needs a square K");
    let d = k.rows;
    assert_eq!((q.rows, q.cols), (d, d), "lyapunov_continuous needs Q of K's size");
    let mut op = Mat::zeros(d * d, d * d);
    // Row (i, j) of vec(KΣ + ΣKᵀ) is Σ_l K_il Σ_lj + Σ_l K_jl Σ_il.
    for i in 0..d {
        for j in 0..d {
            let row = i * d + j;
            for l in 0..d {
                op[(row, l * d + j)] += k[(i, l)];
                op[(row, i * d + l)] += k[(j, l)];
            }
        }
    }
    let rhs: Vec<f64> = q.data.iter().map(|v| -v).collect();
    lyapunov_kron(&op, &rhs, d, "lyapunov_continuous")
}

/// The Σ solving Σ = Φ Σ Φᵀ + Q for Φ of spectral radius below 1: the
/// stationary covariance of the chain X' = Φ X + N(0, Q) (= Σ_{n≥0} Φⁿ Q Φᵀⁿ).
/// Solved as (I − Φ⊗Φ) vec Σ = vec Q by [`solve`]; O(d⁶), meant for d up to
/// about 30. Panics if the operator is singular (some λ_i λ_j = 1).
pub fn lyapunov_discrete(phi: &Mat, q: &Mat) -> Mat {
    assert_eq!(phi.rows, phi.cols, "lyapunov_discrete needs a square Φ");
    let d = phi.rows;
    assert_eq!((q.rows, q.cols), (d, d), "lyapunov_discrete needs Q of Φ's size");
    let mut op = Mat::identity(d * d);
    // Row (i, j) of vec(ΦΣΦᵀ) is Σ_kl Φ_ik Φ_jl Σ_kl.
    for i in 0..d {
        for j in 0..d {
            let row = i * d + j;
            for k in 0..d {
                for l in 0..d {
                    op[(row, k * d + l)] -= phi[(i, k)] * phi[(j, l)];
                }
            }
        }
    }
    lyapunov_kron(&op, &q.data, d, "lyapunov_discrete")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expm_of_rotation_generator_is_rotation() {
        let t = 1.3_f64;
        let m = Mat::from_rows(&[vec![0.0, -t], vec![t, 0.0]]);
        let e = expm(&m);
        assert!((e[(0, 0)] - t.cos()).abs() < 1e-14);
        assert!((e[(1, 0)] - t.sin()).abs() < 1e-14);
        assert!((e[(0, 1)] + t.sin()).abs() < 1e-14);
    }

    #[test]
    fn expm_of_large_diagonal_matches_scalar_exp() {
        let m = Mat::from_rows(&[vec![-7.5, 0.0], vec![0.0, 3.2]]);
        let e = expm(&m);
        assert!((e[(0, 0)] / (-7.5f64).exp() - 1.0).abs() < 1e-12);
        assert!((e[(1, 1)] / 3.2f64.exp() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cholesky_reconstructs_and_tolerates_singular() {
        let s = Mat::from_rows(&[vec![4.0, 2.0, 0.0], vec![2.0, 2.0, 0.0], vec![0.0, 0.0, 0.0]]);
        let l = cholesky_psd(&s).unwrap();
        let r = l.mul(&l.t());
        for (a, b) in r.data.iter().zip(&s.data) {
            assert!((a - b).abs() < 1e-14);
        }
        let bad = Mat::from_rows(&[vec![1.0, 0.0], vec![0.0, -1.0]]);
        assert!(cholesky_psd(&bad).is_err());
    }

    #[test]
    fn scalar_ou_transition_matches_closed_form() {
        // dX = (-a X + c) dt + s dW: mean e^{-aτ}x + c(1-e^{-aτ})/a, var s²(1-e^{-2aτ})/(2a).
        let (a, c, s2, tau) = (0.7, 0.3, 0.5, 1.7);
        let tr = OuTransition::new(&Mat::from_rows(&[vec![-a]]), &[c], &Mat::from_rows(&[vec![s2]]), tau);
        let e = (-a * tau).exp();
        assert!((tr.phi[(0, 0)] - e).abs() < 1e-14);
        assert!((tr.psi[0] - c * (1.0 - e) / a).abs() < 1e-14);
        assert!((tr.q[(0, 0)] - s2 * (1.0 - e * e) / (2.0 * a)).abs() < 1e-14);
    }

    /// A non-symmetric, non-normal Hurwitz 4 × 4 drift (eigenvalues with
    /// negative real parts, a complex pair) and a full-rank noise covariance.
    fn example_k_q() -> (Mat, Mat) {
        let k = Mat::from_rows(&[vec![-1.0, 2.0, 0.3, 0.0], vec![-2.0, -0.5, 0.1, 0.4], vec![0.2, 0.0, -0.8, 1.5], vec![0.0, -0.3, 0.0, -1.2]]);
        let sigma = Mat::from_rows(&[vec![1.0, 0.0, 0.0, 0.0], vec![0.5, 0.7, 0.0, 0.0], vec![-0.2, 0.1, 0.3, 0.0], vec![0.4, 0.0, 0.6, 0.9]]);
        let q = sigma.mul(&sigma.t());
        (k, q)
    }

    fn max_abs(m: &Mat) -> f64 {
        m.data.iter().fold(0.0, |s, v| s.max(v.abs()))
    }

    #[test]
    fn solve_recovers_a_known_solution_and_detects_singularity() {
        // The zero leading entry forces a row swap.
        let a = Mat::from_rows(&[vec![0.0, 2.0, 1.0], vec![1.0, -1.0, 0.5], vec![3.0, 0.0, -2.0]]);
        let x = [1.5, -0.25, 2.0];
        let b = a.mul_vec(&x);
        let got = solve(&a, &b).unwrap();
        for (g, w) in got.iter().zip(&x) {
            assert!((g - w).abs() < 1e-14, "{got:?}");
        }
        let singular = Mat::from_rows(&[vec![1.0, 2.0], vec![2.0, 4.0]]);
        assert!(solve(&singular, &[1.0, 2.0]).is_none());
        assert!(solve(&Mat::zeros(2, 2), &[0.0, 0.0]).is_none());
    }

    #[test]
    fn lyapunov_continuous_residual_and_scalar_case() {
        let (k, q) = example_k_q();
        let s = lyapunov_continuous(&k, &q);
        let res = k.mul(&s).add_scaled(1.0, &s.mul(&k.t())).add_scaled(1.0, &q);
        assert!(max_abs(&res) < 1e-12 * max_abs(&q), "residual {}", max_abs(&res));
        assert_eq!(s, s.t());
        assert!(cholesky_psd(&s).is_ok());
        let one = lyapunov_continuous(&Mat::from_rows(&[vec![-0.7]]), &Mat::from_rows(&[vec![0.5]]));
        assert!((one[(0, 0)] - 0.5 / 1.4).abs() < 1e-15);
    }

    #[test]
    fn lyapunov_discrete_residual_and_scalar_case() {
        let (k, q) = example_k_q();
        let phi = expm(&k.scale(0.4));
        let s = lyapunov_discrete(&phi, &q);
        let res = phi.mul(&s).mul(&phi.t()).add_scaled(1.0, &q).add_scaled(-1.0, &s);
        assert!(max_abs(&res) < 1e-12 * max_abs(&s), "residual {}", max_abs(&res));
        assert_eq!(s, s.t());
        let one = lyapunov_discrete(&Mat::from_rows(&[vec![0.6]]), &Mat::from_rows(&[vec![0.5]]));
        assert!((one[(0, 0)] - 0.5 / 0.64).abs() < 1e-15);
    }

    #[test]
    fn lyapunov_continuous_is_the_stationary_law_of_the_exact_transition() {
        // Σ − e^{Kτ} Σ e^{Kᵀτ} = ∫₀^τ e^{Ks} Q e^{Kᵀs} ds (Van Loan, via OuTransition),
        // so the discrete equation with the exact one-step (Φ, Q_τ) has the same solution.
        let (k, q) = example_k_q();
        let s = lyapunov_continuous(&k, &q);
        let tr = OuTransition::new(&k, &[0.0; 4], &q, 0.7);
        let lhs = s.add_scaled(-1.0, &tr.phi.mul(&s).mul(&tr.phi.t()));
        assert!(max_abs(&lhs.add_scaled(-1.0, &tr.q)) < 1e-12 * max_abs(&s));
        let sd = lyapunov_discrete(&tr.phi, &tr.q);
        assert!(max_abs(&sd.add_scaled(-1.0, &s)) < 1e-11 * max_abs(&s));
    }

    #[test]
    #[should_panic(expected = "singular")]
    fn lyapunov_continuous_rejects_a_marginal_drift() {
        // A rotation generator: λ = ±i, so λ_1 + λ_2 = 0.
        lyapunov_continuous(&Mat::from_rows(&[vec![0.0, -1.0], vec![1.0, 0.0]]), &Mat::identity(2));
    }
}
