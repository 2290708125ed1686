//! Offline evaluation: full ranking over all items with the user's earlier items excluded, on
//! the time-ordered leave-last-out split. Ties are broken by dense item id, exactly as serving
//! orders them, so the metrics describe the lists users would get.

mod report;

pub use report::{EvalReport, PolicyReport, PROTOCOL};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Target};
use crate::policy::TrainedPolicy;

/// The cut-off of every metric.
pub const K: usize = 10;

/// Ranking metrics at [`K`], averaged over evaluated users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(rename = "ndcg@10")]
    pub ndcg: f64,
    /// Hit rate, which equals Recall@10 with one held-out item.
    #[serde(rename = "hr@10")]
    pub hit_rate: f64,
    #[serde(rename = "mrr@10")]
    pub mrr: f64,
    /// Share of the catalog that appears in at least one user's top 10.
    #[serde(rename = "coverage@10")]
    pub coverage: f64,
    /// How many users were evaluated.
    pub users: usize,
}

#[derive(Default)]
struct Acc {
    ndcg: f64,
    hits: f64,
    mrr: f64,
    users: usize,
    /// The items this batch's top-K lists showed.
    covered: Vec<u32>,
}

/// Evaluates `model` on `target` for every user that has one. The model must have been trained
/// (or refit) on the history of that target, [`Target::history`].
pub fn evaluate(
    model: &dyn TrainedPolicy,
    ds: &Dataset,
    target: Target,
    max_users: Option<usize>,
) -> Metrics {
    let n = ds.n_items();
    let history = ds.view(target.history());
    let users = evaluated_users(ds, target, max_users);
    if users.is_empty() || n == 0 {
        return Metrics::default();
    }
    const BATCH: usize = 128;
    // Per-batch sums, collected in batch order and added up sequentially: a parallel reduce
    // would group the float sums differently from run to run, and two runs must agree exactly.
    let batches: Vec<Acc> = users
        .par_chunks(BATCH)
        .map(|chunk| {
            let mut acc = Acc::default();
            let ids: Vec<u32> = chunk.iter().map(|c| c.0).collect();
            let mut scores = vec![0f32; chunk.len() * n];
            model.score_users(&ids, &mut scores);
            for (row, &(u, t)) in scores.chunks_exact_mut(n).zip(chunk) {
                // Exactly what serving excludes: every item of the history (a target the user
                // had already seen cannot be recommended, so it cannot be hit).
                for &seen in history.items(u) {
                    row[seen as usize] = f32::NEG_INFINITY;
                }
                let rank = if row[t as usize] == f32::NEG_INFINITY {
                    usize::MAX
                } else {
                    rank_of(row, t as usize)
                };
                if rank < K {
                    acc.ndcg += 1.0 / ((rank + 2) as f64).log2();
                    acc.hits += 1.0;
                    acc.mrr += 1.0 / (rank + 1) as f64;
                }
                acc.covered
                    .extend(top_k(row, K).into_iter().map(|i| i as u32));
                acc.users += 1;
            }
            acc
        })
        .collect();
    let mut acc = Acc::default();
    let mut covered = vec![false; n];
    for b in batches {
        acc.ndcg += b.ndcg;
        acc.hits += b.hits;
        acc.mrr += b.mrr;
        acc.users += b.users;
        for i in b.covered {
            covered[i as usize] = true;
        }
    }
    let m = acc.users.max(1) as f64;
    Metrics {
        ndcg: acc.ndcg / m,
        hit_rate: acc.hits / m,
        mrr: acc.mrr / m,
        coverage: covered.iter().filter(|c| **c).count() as f64 / n as f64,
        users: acc.users,
    }
}

/// The users evaluated on `target` with their held-out item: all, or an evenly spaced sample of
/// `max_users` of them (deterministic, so that runs compare).
pub fn evaluated_users(ds: &Dataset, target: Target, max_users: Option<usize>) -> Vec<(u32, u32)> {
    let all: Vec<(u32, u32)> = (0..ds.n_users() as u32)
        .filter_map(|u| ds.target(u, target).map(|t| (u, t)))
        .collect();
    match max_users {
        Some(max) if max < all.len() => {
            let step = all.len() as f64 / max as f64;
            (0..max).map(|i| all[(i as f64 * step) as usize]).collect()
        }
        _ => all,
    }
}

/// Whether item `a` (score `sa`) ranks before item `b`: higher score first, then lower id.
/// NaN scores rank last.
#[inline]
pub fn before(sa: f32, a: usize, sb: f32, b: usize) -> bool {
    let (sa, sb) = (
        if sa.is_nan() { f32::NEG_INFINITY } else { sa },
        if sb.is_nan() { f32::NEG_INFINITY } else { sb },
    );
    sa > sb || (sa == sb && a < b)
}

/// The `k` best items of a stream of (item, score), in [`top_k`]'s order, in O(k) memory: for
/// scans too large to materialise a row of scores.
#[derive(Clone)]
pub struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<Kept>,
}

/// Ordered so that the heap's top is the worst item kept.
#[derive(Clone)]
struct Kept(f32, u32);

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if before(self.0, self.1 as usize, other.0, other.1 as usize) {
            std::cmp::Ordering::Less
        } else if before(other.0, other.1 as usize, self.0, self.1 as usize) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    /// Offers an item; NaN and -inf are never kept.
    #[inline]
    pub fn push(&mut self, item: u32, score: f32) {
        if self.k == 0 || score.is_nan() || score == f32::NEG_INFINITY {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Kept(score, item));
        } else if let Some(worst) = self.heap.peek() {
            if before(score, item as usize, worst.0, worst.1 as usize) {
                self.heap.pop();
                self.heap.push(Kept(score, item));
            }
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|k| (k.1, k.0))
            .collect()
    }
}

/// The 0-based position of item `t` in the full ordering of `row`.
pub fn rank_of(row: &[f32], t: usize) -> usize {
    let st = row[t];
    row.iter()
        .enumerate()
        .filter(|&(i, &s)| before(s, i, st, t))
        .count()
}

/// The indexes of the `k` best scores, best first, skipping `-inf` (excluded items).
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    // A sorted insertion buffer is fastest for a page; a selection for large k (widening).
    if k > 64 {
        let mut all: Vec<usize> = (0..row.len())
            .filter(|&i| row[i] != f32::NEG_INFINITY && !row[i].is_nan())
            .collect();
        let order = |a: &usize, b: &usize| {
            if before(row[*a], *a, row[*b], *b) {
                std::cmp::Ordering::Less
            } else if before(row[*b], *b, row[*a], *a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        };
        if all.len() > k {
            all.select_nth_unstable_by(k - 1, order);
            all.truncate(k);
        }
        all.sort_unstable_by(order);
        return all;
    }
    let mut best: Vec<usize> = Vec::with_capacity(k.min(row.len()) + 1);
    for (i, &s) in row.iter().enumerate() {
        if s == f32::NEG_INFINITY || s.is_nan() {
            continue;
        }
        if best.len() == k {
            let last = best[k - 1];
            if !before(s, i, row[last], last) {
                continue;
            }
            best.pop();
        }
        let pos = best.partition_point(|&j| before(row[j], j, s, i));
        best.insert(pos, i);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_sample_is_even_and_deterministic() {
        use crate::dataset::{FetchStats, IdMap};
        let n_users = 10u32;
        let ds = Dataset {
            users: IdMap::from_ids((0..n_users).map(|u| format!("u{u}")).collect()),
            items: IdMap::from_ids((0..3).map(|i| format!("i{i}")).collect()),
            event_types: vec!["event".into()],
            offsets: (0..=n_users as usize).map(|u| u * 3).collect(),
            seq_items: (0..n_users).flat_map(|_| [0, 1, 2]).collect(),
            seq_times: (0..n_users as i64 * 3).collect(),
            seq_types: vec![0; n_users as usize * 3],
            seq_values: vec![1.0; n_users as usize * 3],
            item_attributes: None,
            user_attributes: None,
            stats: FetchStats::default(),
        };
        assert_eq!(evaluated_users(&ds, Target::Test, None).len(), 10);
        let sample: Vec<u32> = evaluated_users(&ds, Target::Test, Some(4))
            .iter()
            .map(|u| u.0)
            .collect();
        assert_eq!(sample, vec![0, 2, 5, 7]);
        assert!(evaluated_users(&ds, Target::Valid, Some(4))
            .iter()
            .all(|&(_, t)| t == 1));
    }

    #[test]
    fn ranking_is_by_score_then_id() {
        let row = [0.5, 0.9, 0.5, f32::NEG_INFINITY, 0.1];
        assert_eq!(top_k(&row, 3), vec![1, 0, 2]);
        assert_eq!(top_k(&row, 10), vec![1, 0, 2, 4]);
        assert!(top_k(&row, 0).is_empty());
        // The selection path agrees with the insertion path.
        let big: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 10.0)
            .collect();
        let a = top_k(&big, 300);
        let mut b: Vec<usize> = (0..big.len()).collect();
        b.sort_by(|&x, &y| {
            if before(big[x], x, big[y], y) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        assert_eq!(a, b[..300].to_vec());
        assert_eq!(top_k(&big, 64), b[..64].to_vec());
        // The streaming form agrees too.
        let mut stream = TopK::new(300);
        for (i, &s) in big.iter().enumerate() {
            stream.push(i as u32, s);
        }
        let streamed: Vec<usize> = stream
            .into_sorted()
            .into_iter()
            .map(|(i, _)| i as usize)
            .collect();
        assert_eq!(streamed, b[..300].to_vec());
        assert_eq!(top_k(&row, usize::MAX).len(), 4);
        assert_eq!(rank_of(&row, 1), 0);
        assert_eq!(rank_of(&row, 2), 2);
        assert_eq!(rank_of(&row, 4), 3);
    }
}
