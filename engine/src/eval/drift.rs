//! Score drift: where a policy's served scores are expected to fall, and the population
//! stability index (PSI) of what was served against it.
//!
//! The reference is the deciles of the top-10 scores the deployed model gives the validation
//! users (every item they have seen excluded, as serving excludes it): what a `/rank` page of
//! that policy looks like on the data it was made from. Served pages that filter or reorder
//! shift the mix too, so PSI is read per query shape over time: a jump says the inputs moved.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{evaluated_users, RANK_BATCH};
use crate::core::Scorer;
use crate::dataset::{Cut, Dataset, Target};
use crate::util::topk::top_k;

/// Bins of the reference (deciles).
const BINS: usize = 10;
/// Scores per user in the reference: a page's worth.
const PAGE: usize = 10;
/// The smallest share a bin counts with, so that an empty bin does not make PSI infinite (the
/// usual smoothing).
const FLOOR: f64 = 1e-4;

/// A policy's reference score distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreReference {
    /// Ascending bin edges: bin `i` holds scores in `[edges[i-1], edges[i])`; the first and last
    /// bins are open.
    pub edges: Vec<f64>,
    /// The share of reference scores in each bin (`edges.len() + 1` of them).
    pub expected: Vec<f64>,
    /// How many scores it was made from.
    pub samples: usize,
}

impl ScoreReference {
    /// The bin of score `x`.
    pub fn bin(&self, x: f64) -> usize {
        self.edges.partition_point(|e| *e <= x)
    }

    pub fn bins(&self) -> usize {
        self.expected.len()
    }

    /// PSI = Σ (actual − expected) · ln(actual / expected) over the bins, from served counts per
    /// bin; `None` before anything was served. Under 0.1 is usually read as stable, above 0.25
    /// as a shift.
    pub fn psi(&self, counts: &[u64]) -> Option<f64> {
        let total: u64 = counts.iter().sum();
        if total == 0 || counts.len() != self.expected.len() {
            return None;
        }
        Some(
            counts
                .iter()
                .zip(&self.expected)
                .map(|(&c, &e)| {
                    let a = (c as f64 / total as f64).max(FLOOR);
                    let e = e.max(FLOOR);
                    (a - e) * (a / e).ln()
                })
                .sum(),
        )
    }

    /// The reference of a sample of scores: its deciles (equal edges merged, so ties never make
    /// an empty bin), and each bin's share.
    pub fn of(mut scores: Vec<f64>) -> Option<Self> {
        scores.retain(|s| s.is_finite());
        if scores.is_empty() {
            return None;
        }
        scores.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = (1..BINS).map(|i| scores[i * scores.len() / BINS]).collect();
        edges.dedup();
        // A bin below the smallest edge holds nothing when every score ties at the minimum.
        if edges.first() == scores.first() {
            edges.remove(0);
        }
        let mut reference = Self {
            expected: vec![0.0; edges.len() + 1],
            edges,
            samples: scores.len(),
        };
        for &s in &scores {
            let b = reference.bin(s);
            reference.expected[b] += 1.0;
        }
        for e in &mut reference.expected {
            *e /= scores.len() as f64;
        }
        Some(reference)
    }
}

/// The reference of `model` (trained on all events, as deployed): the top-10 scores of the
/// validation users, or of `max_users` of them.
pub fn score_reference(
    model: &dyn Scorer,
    ds: &Dataset,
    max_users: Option<usize>,
) -> Option<ScoreReference> {
    let n = ds.n_items();
    let history = ds.view(Cut::All);
    let users = evaluated_users(ds, Target::Valid, max_users);
    if users.is_empty() || n == 0 {
        return None;
    }
    // Batches in order and their scores concatenated in order: the same reference every run.
    let batches: Vec<Vec<f64>> = users
        .par_chunks(RANK_BATCH)
        .map(|chunk| {
            let ids: Vec<u32> = chunk.iter().map(|c| c.0).collect();
            let mut scores = vec![0f32; chunk.len() * n];
            model.score_users(&ids, &mut scores);
            let mut out = Vec::with_capacity(chunk.len() * PAGE);
            for (row, &(u, _)) in scores.chunks_exact_mut(n).zip(chunk) {
                for &seen in history.items(u) {
                    row[seen as usize] = f32::NEG_INFINITY;
                }
                out.extend(
                    top_k(row, PAGE)
                        .into_iter()
                        .map(|i| row[i] as f64)
                        .filter(|s| s.is_finite()),
                );
            }
            out
        })
        .collect();
    ScoreReference::of(batches.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_near_zero_on_the_reference_and_large_on_a_shift() {
        let scores: Vec<f64> = (0..1000).map(|i| i as f64 / 1000.0).collect();
        let r = ScoreReference::of(scores.clone()).unwrap();
        assert_eq!((r.bins(), r.samples), (10, 1000));
        assert!(r.expected.iter().all(|e| (e - 0.1).abs() < 1e-9), "{r:?}");
        let mut same = vec![0u64; r.bins()];
        for &s in &scores {
            same[r.bin(s)] += 1;
        }
        assert!(r.psi(&same).unwrap() < 1e-9);
        // Everything served in the top decile.
        let mut shifted = vec![0u64; r.bins()];
        shifted[9] = 500;
        assert!(r.psi(&shifted).unwrap() > 1.0);
        assert_eq!(r.psi(&vec![0; r.bins()]), None);
        // Ties merge edges: no empty bin.
        let tied =
            ScoreReference::of(vec![1.0; 50].into_iter().chain([2.0; 50]).collect()).unwrap();
        assert_eq!(tied.bins(), 2, "{tied:?}");
        assert!(tied.expected.iter().all(|&e| e > 0.0));
    }
}
