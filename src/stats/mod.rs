//! Mergeable sufficient statistics and the observed-order fit.

pub mod mixing;
mod order;
pub use order::{fit_order, normal_quantile, OrderFit};

/// Count, mean and sum of squared deviations (M2) of a sample, mergeable
/// exactly in a fixed order (Chan et al.), so a fixed reduction tree gives the
/// same bits whatever the schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Moments {
    pub count: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    /// Adds one observation (Welford).
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The combined statistics of two disjoint samples.
    pub fn merge(&self, o: &Moments) -> Moments {
        if self.count == 0 {
            return *o;
        }
        if o.count == 0 {
            return *self;
        }
        let n = self.count + o.count;
        let delta = o.mean - self.mean;
        let mean = self.mean + delta * (o.count as f64 / n as f64);
        let m2 = self.m2 + o.m2 + delta * delta * (self.count as f64 * o.count as f64 / n as f64);
        Moments { count: n, mean, m2 }
    }

    /// The unbiased sample variance (0 for fewer than two observations).
    pub fn variance(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    /// The standard error of the mean.
    pub fn std_error(&self) -> f64 {
        if self.count == 0 {
            f64::INFINITY
        } else {
            (self.variance() / self.count as f64).sqrt()
        }
    }
}

/// Combines per-block statistics along the fixed binary tree over block
/// indices (split at the midpoint), independent of how blocks were computed.
pub fn tree_merge(blocks: &[Moments]) -> Moments {
    match blocks.len() {
        0 => Moments::default(),
        1 => blocks[0],
        n => {
            let mid = n / 2;
            tree_merge(&blocks[..mid]).merge(&tree_merge(&blocks[mid..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_equals_direct_accumulation() {
        let xs: Vec<f64> = (0..101).map(|i| ((i * 37) % 17) as f64 * 0.3 - 1.0).collect();
        let mut all = Moments::default();
        xs.iter().for_each(|&x| all.push(x));
        let blocks: Vec<Moments> = xs
            .chunks(10)
            .map(|c| {
                let mut m = Moments::default();
                c.iter().for_each(|&x| m.push(x));
                m
            })
            .collect();
        let t = tree_merge(&blocks);
        assert_eq!(t.count, 101);
        assert!((t.mean - all.mean).abs() < 1e-14);
        assert!((t.m2 - all.m2).abs() < 1e-11);
        let mean = xs.iter().sum::<f64>() / 101.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 100.0;
        assert!((t.variance() - var).abs() < 1e-12);
    }
}
