//! Substream derivation (DESIGN §3). Every random number of a study comes from
//! one `Pcg64` sequence fixed by the seed; a chain's stream starts at an
//! offset computed from (η index, role, chain index) and is reached by
//! jump-ahead (`advance`, O(128) multiplications). Streams never depend on a
//! rank, a thread or a schedule.
//!
//! Why the offset is mixed: jumping an LCG mod 2¹²⁸ by a multiple of 2⁶⁴
//! leaves the low 64 state bits unchanged, and PCG's XSL-RR output xors the
//! two halves, so streams at offsets k·2⁶⁴ are strongly correlated (we saw
//! means off by 20 standard errors). The packed index is therefore passed
//! through a bijective 128-bit mixer: distinct chains get distinct, unaligned
//! starting points. Two of n streams of L draws overlap with probability at
//! most n²L/2¹²⁸ (below 2⁻²⁰ for 2³⁴ chains of 2⁴⁰ draws).

use rand_pcg::Pcg64;

/// The version of this derivation scheme, stored in every results file: a
/// result is reproducible only by a binary with the same scheme.
pub const RNG_SCHEME: &str = "pcg64-advance-v2: offset = mix128(eta_index<<112 | role<<104 | chain)";

/// The fixed PCG stream constant (the default increment of `Pcg64`).
const INCREMENT: u128 = 0xa02bdbf7bb3c0a7ac28fa16a64abf96;

/// What a stream is used for; part of the offset so different uses never overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An SGA chain of the scheme with this index in the study's scheme list.
    Sga(u8),
    /// An SDE path compared with the scheme with this index.
    Sde(u8),
    /// Drawing the latent (or synthetic real) data set once per study.
    Data(u8),
}

impl Role {
    fn code(self) -> u128 {
        match self {
            Role::Sga(s) => 16 + (s as u128 & 15),
            Role::Sde(s) => 32 + (s as u128 & 15),
            Role::Data(s) => 64 + (s as u128 & 15),
        }
    }
}

/// The largest chain index a stream can name (40 bits).
pub const MAX_CHAIN: u64 = (1 << 40) - 1;

/// SplitMix64 finaliser: turns a user seed into a well-mixed PCG state.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// A bijection of u128 (xorshift and odd multiplications), so distinct chain
/// names give distinct offsets with no power-of-two alignment.
fn mix128(mut x: u128) -> u128 {
    x ^= x >> 64;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    x ^= x >> 61;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93_2b6e_ab9f_0d2f_3a47);
    x ^= x >> 67;
    x
}

/// The generator for one chain: the study's base sequence advanced to the
/// chain's disjoint block.
pub fn stream(seed: u64, eta_index: usize, role: Role, chain: u64) -> Pcg64 {
    assert!(chain <= MAX_CHAIN, "chain index beyond 2^40");
    assert!(eta_index < 1 << 16, "eta index beyond 2^16");
    let state = ((mix64(seed) as u128) << 64) | mix64(seed ^ 0x5851f42d4c957f2d) as u128;
    let mut rng = Pcg64::new(state, INCREMENT);
    let offset = mix128(((eta_index as u128) << 112) | (role.code() << 104) | chain as u128);
    rng.advance(offset);
    rng
}

/// A uniform index in 0..n without modulo bias (Lemire's method), written
/// here so that minibatch draws do not change with the rand crate's version.
#[inline]
pub fn index<R: rand::Rng + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n64 = n as u64;
    let mut m = (rng.next_u64() as u128) * (n64 as u128);
    if (m as u64) < n64 {
        let threshold = n64.wrapping_neg() % n64;
        while (m as u64) < threshold {
            m = (rng.next_u64() as u128) * (n64 as u128);
        }
    }
    (m >> 64) as usize
}

/// A standard normal draw (ziggurat from rand_distr).
#[inline]
pub fn normal<R: rand::Rng + ?Sized>(rng: &mut R) -> f64 {
    use rand::RngExt;
    rng.sample(rand_distr::StandardNormal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_distinct_and_reproducible() {
        let mut a = stream(7, 0, Role::Sga(0), 3);
        let mut b = stream(7, 0, Role::Sga(0), 3);
        let mut c = stream(7, 0, Role::Sga(0), 4);
        let mut d = stream(7, 1, Role::Sga(0), 3);
        let mut e = stream(7, 0, Role::Sde(0), 3);
        let x = a.next_u64();
        assert_eq!(x, b.next_u64());
        assert_ne!(x, c.next_u64());
        assert_ne!(x, d.next_u64());
        assert_ne!(x, e.next_u64());
    }

    #[test]
    fn stream_is_a_jump_into_one_sequence() {
        // Chain 1's stream is chain 0's sequence advanced by the offset difference.
        let mut a = stream(11, 0, Role::Sga(1), 0);
        let d = mix128((Role::Sga(1).code() << 104) | 1).wrapping_sub(mix128(Role::Sga(1).code() << 104));
        a.advance(d);
        let mut b = stream(11, 0, Role::Sga(1), 1);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn neighbouring_streams_are_uncorrelated() {
        // The sample correlation of first normals across 20000 neighbouring
        // chains is N(0, 1/20000): |r| < 4/sqrt(20000) ≈ 0.028.
        let n = 20_000;
        let xs: Vec<(f64, f64)> = (0..n).map(|c| (normal(&mut stream(3, 0, Role::Sga(0), c)), normal(&mut stream(3, 0, Role::Sga(0), c + 1)))).collect();
        let r: f64 = xs.iter().map(|(a, b)| a * b).sum::<f64>() / n as f64;
        assert!(r.abs() < 0.028, "correlation {r}");
        let mean: f64 = xs.iter().map(|p| p.0).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.028, "mean {mean}");
    }

    #[test]
    fn index_is_uniform_enough() {
        let mut r = stream(1, 0, Role::Data(0), 0);
        let mut counts = [0u32; 5];
        for _ in 0..50_000 {
            counts[index(&mut r, 5)] += 1;
        }
        for c in counts {
            // Binomial(50000, 0.2): sd ≈ 89.
            assert!((c as f64 - 10_000.0).abs() < 450.0, "{counts:?}");
        }
    }
}
