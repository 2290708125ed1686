//! Offline evaluation: full ranking over all items with the user's earlier items excluded, on
//! the time-ordered leave-last-out split. Ties are broken by dense item id, exactly as serving
//! orders them, so the metrics describe the lists users would get.

mod calibration;
mod drift;
mod heads;
mod logistic;
mod report;

pub use crate::core::{HeadReport, RankerReport};
pub use calibration::{sigmoid, Calibration};
pub use drift::{score_reference, ScoreReference};
pub use heads::{auc, head_metrics, HeadMetrics, BINS};
pub use logistic::Logistic;
pub use report::{EvalReport, PolicyReport, TrialReport, TuningReport, PROTOCOL};

use rayon::prelude::*;

use crate::core::Scorer;
use crate::dataset::{Dataset, Target};
use crate::util::topk::{rank_of, top_k};

pub use crate::core::{Metrics, K};

/// Users ranked at once per thread: each batch holds `RANK_BATCH × items` scores.
pub const RANK_BATCH: usize = 128;

/// The floats an evaluation holds at once over `items` items (a batch of scores per thread):
/// part of a training run's memory, since validation runs between epochs.
pub fn ranking_floats(items: usize) -> f64 {
    (rayon::current_num_threads() * RANK_BATCH) as f64 * items as f64
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
    model: &dyn Scorer,
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
    // Per-batch sums, collected in batch order and added up sequentially: a parallel reduce
    // would group the float sums differently from run to run, and two runs must agree exactly.
    let batches: Vec<Acc> = users
        .par_chunks(RANK_BATCH)
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
            impressions: None,
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
}
