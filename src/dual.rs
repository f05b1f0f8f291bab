//! Forward-mode dual numbers. Gradient code written once over [`Scalar`] runs
//! on `f64` for values and on [`Dual`] for exact directional derivatives: the
//! two Jacobian-vector products in b1 (DESIGN §1) come from pushing a tangent
//! through the full-gradient code, with no finite-difference step to tune.

use std::ops::{Add, AddAssign, Mul, Neg, Sub};

/// The arithmetic the gradient code needs.
pub trait Scalar: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Neg<Output = Self> + AddAssign + Send + Sync + 'static {
    /// A constant (zero tangent).
    fn cst(v: f64) -> Self;
    /// The value part.
    fn re(self) -> f64;
    /// Multiplication by a plain number.
    fn scale(self, s: f64) -> Self;
    /// tanh.
    fn tanh(self) -> Self;
}

impl Scalar for f64 {
    #[inline]
    fn cst(v: f64) -> Self {
        v
    }
    #[inline]
    fn re(self) -> f64 {
        self
    }
    #[inline]
    fn scale(self, s: f64) -> Self {
        self * s
    }
    #[inline]
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// A dual number v + ε₁·d + ε₂·d2 with ε_i ε_j = 0: `d` and `d2` carry the
/// derivatives along two directions at once (b1 needs two JVPs at the same
/// point, so one pass serves both).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Dual {
    /// The value.
    pub v: f64,
    /// The derivative along the first direction.
    pub d: f64,
    /// The derivative along the second direction.
    pub d2: f64,
}

impl Dual {
    /// A value with one tangent.
    pub fn new(v: f64, d: f64) -> Self {
        Dual { v, d, d2: 0.0 }
    }

    /// A value with two tangents.
    pub fn new2(v: f64, d: f64, d2: f64) -> Self {
        Dual { v, d, d2 }
    }
}

impl Add for Dual {
    type Output = Dual;
    #[inline]
    fn add(self, o: Dual) -> Dual {
        Dual::new2(self.v + o.v, self.d + o.d, self.d2 + o.d2)
    }
}

impl AddAssign for Dual {
    #[inline]
    fn add_assign(&mut self, o: Dual) {
        self.v += o.v;
        self.d += o.d;
        self.d2 += o.d2;
    }
}

impl Sub for Dual {
    type Output = Dual;
    #[inline]
    fn sub(self, o: Dual) -> Dual {
        Dual::new2(self.v - o.v, self.d - o.d, self.d2 - o.d2)
    }
}

impl Mul for Dual {
    type Output = Dual;
    #[inline]
    fn mul(self, o: Dual) -> Dual {
        Dual::new2(self.v * o.v, self.v * o.d + self.d * o.v, self.v * o.d2 + self.d2 * o.v)
    }
}

impl Neg for Dual {
    type Output = Dual;
    #[inline]
    fn neg(self) -> Dual {
        Dual::new2(-self.v, -self.d, -self.d2)
    }
}

impl Scalar for Dual {
    #[inline]
    fn cst(v: f64) -> Self {
        Dual::new(v, 0.0)
    }
    #[inline]
    fn re(self) -> f64 {
        self.v
    }
    #[inline]
    fn scale(self, s: f64) -> Self {
        Dual::new2(self.v * s, self.d * s, self.d2 * s)
    }
    #[inline]
    fn tanh(self) -> Self {
        let t = self.v.tanh();
        let dt = 1.0 - t * t;
        Dual::new2(t, dt * self.d, dt * self.d2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dual_tanh_product_derivative_matches_calculus() {
        // f(x) = tanh(x) * x at x = 0.4: f' = (1 - tanh²) x + tanh.
        let x = Dual::new(0.4, 1.0);
        let f = x.tanh() * x;
        let t = 0.4f64.tanh();
        assert!((f.d - ((1.0 - t * t) * 0.4 + t)).abs() < 1e-15);
        let y = Dual::new2(0.4, 1.0, -2.0);
        let g = y.tanh() * y;
        assert!((g.d2 + 2.0 * g.d).abs() < 1e-15);
    }
}
