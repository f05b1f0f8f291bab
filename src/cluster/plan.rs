//! The work plan across ranks and the fixed reduction tree.
//!
//! Blocks of chains are combined along one binary tree over block indices
//! (split at the midpoint, as [`crate::stats::tree_merge`] does). A rank that
//! owns a contiguous range of blocks merges the maximal tree nodes inside its
//! range itself and sends only those (O(log n) per group, independent of the
//! number of chains); rank 0 finishes the same tree from the node values. The
//! arithmetic at every node is the same whoever performs it, so results are
//! bit-identical for any number of ranks and threads.

use std::collections::HashMap;
use std::ops::Range;

/// Splits items with the given costs into `ranks` contiguous ranges of
/// nearly equal total cost (an item goes to the rank whose share contains the
/// midpoint of its cost interval).
pub fn partition(costs: &[u64], ranks: usize) -> Vec<Range<usize>> {
    let total: u128 = costs.iter().map(|&c| c as u128).sum();
    let mut bounds = vec![0usize; ranks + 1];
    let mut acc: u128 = 0;
    let mut r = 0;
    for (i, &c) in costs.iter().enumerate() {
        let mid2 = 2 * acc + c as u128; // twice the midpoint
                                        // Rank whose share [r·T/R, (r+1)·T/R) contains the midpoint.
        let owner = if total == 0 { 0 } else { ((mid2 * ranks as u128) / (2 * total)).min(ranks as u128 - 1) as usize };
        while r < owner {
            r += 1;
            bounds[r] = i;
        }
        acc += c as u128;
    }
    while r < ranks {
        r += 1;
        bounds[r] = costs.len();
    }
    bounds[ranks] = costs.len();
    (0..ranks).map(|k| bounds[k]..bounds[k + 1]).collect()
}

/// The maximal nodes of the midpoint tree over 0..n that lie inside `owned`.
pub fn owned_nodes(n: usize, owned: Range<usize>) -> Vec<Range<usize>> {
    fn go(lo: usize, hi: usize, owned: &Range<usize>, out: &mut Vec<Range<usize>>) {
        if lo >= hi || hi <= owned.start || lo >= owned.end {
            return;
        }
        if owned.start <= lo && hi <= owned.end {
            out.push(lo..hi);
            return;
        }
        let mid = lo + (hi - lo) / 2;
        go(lo, mid, owned, out);
        go(mid, hi, owned, out);
    }
    let mut out = Vec::new();
    go(0, n, &owned, &mut out);
    out
}

/// Folds `leaves` along the midpoint tree (the value of the node covering them).
pub fn tree_fold<T: Clone>(leaves: &[T], merge: &impl Fn(&T, &T) -> T) -> T {
    assert!(!leaves.is_empty());
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let mid = leaves.len() / 2;
    merge(&tree_fold(&leaves[..mid], merge), &tree_fold(&leaves[mid..], merge))
}

/// The root of the midpoint tree over 0..n from known node values; None if
/// some part of the tree is covered by no known node.
pub fn eval_tree<T: Clone>(n: usize, known: &HashMap<(usize, usize), T>, merge: &impl Fn(&T, &T) -> T) -> Option<T> {
    fn go<T: Clone>(lo: usize, hi: usize, known: &HashMap<(usize, usize), T>, merge: &impl Fn(&T, &T) -> T) -> Option<T> {
        if let Some(v) = known.get(&(lo, hi)) {
            return Some(v.clone());
        }
        if hi - lo <= 1 {
            return None;
        }
        let mid = lo + (hi - lo) / 2;
        Some(merge(&go(lo, mid, known, merge)?, &go(mid, hi, known, merge)?))
    }
    go(0, n, known, merge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_is_contiguous_complete_and_balanced() {
        let costs: Vec<u64> = (0..100).map(|i| if i < 50 { 10 } else { 1 }).collect();
        for ranks in 1..=7 {
            let p = partition(&costs, ranks);
            assert_eq!(p.len(), ranks);
            assert_eq!(p[0].start, 0);
            assert_eq!(p[ranks - 1].end, 100);
            for w in p.windows(2) {
                assert_eq!(w[0].end, w[1].start);
            }
            let total: u64 = costs.iter().sum();
            for r in &p {
                let c: u64 = costs[r.clone()].iter().sum();
                assert!((c as f64 - total as f64 / ranks as f64).abs() <= 10.0, "{ranks}: {p:?}");
            }
        }
        // More ranks than items: some ranks get nothing, nothing is lost.
        let p = partition(&[5, 5], 4);
        assert_eq!(p.iter().map(|r| r.len()).sum::<usize>(), 2);
    }

    #[test]
    fn distributed_tree_equals_the_sequential_tree_bit_for_bit() {
        // Floating-point sums are order-sensitive: any deviation from the
        // fixed tree would show in the bits.
        let leaves: Vec<f64> = (0..37).map(|i| 1.0 / (i as f64 + 0.37) * if i % 3 == 0 { -1e8 } else { 1.0 }).collect();
        let add = |a: &f64, b: &f64| a + b;
        let want = tree_fold(&leaves, &add);
        for ranks in 1..=9 {
            let costs = vec![1u64; leaves.len()];
            let mut known = HashMap::new();
            let mut sent = 0;
            for r in partition(&costs, ranks) {
                for node in owned_nodes(leaves.len(), r) {
                    known.insert((node.start, node.end), tree_fold(&leaves[node.clone()], &add));
                    sent += 1;
                }
            }
            assert!(sent <= ranks * 2 * 6, "O(log n) nodes per rank");
            let got = eval_tree(leaves.len(), &known, &add).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{ranks} ranks");
        }
        let seq: f64 = leaves.iter().sum();
        assert_ne!(seq.to_bits(), want.to_bits(), "the check can tell orders apart");
    }
}
