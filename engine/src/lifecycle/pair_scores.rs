//! Out-of-fold scores of a model's retrieval policies for impression pairs: what a ranker with
//! `scores: [als]` trains on. The pairs are dealt into [`FOLDS`] folds by a hash of (user,
//! item); each fold's rows are scored by the policy fitted on the events before the ranker's
//! test period less that fold's pairs. A row's score then never comes from a model that saw
//! the row's own outcome (or, for a test row, anything of its period), as at serving, where
//! the deployed policy scores candidates the user has not engaged with.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::ModelConfig;
use crate::core::{PairScores, TrainContext};
use crate::dataset::{Cut, Dataset};
use crate::error::{Error, Result};
use crate::policy;

/// Folds per input policy: each fit sees three quarters of the pairs, close enough to the
/// deployed fit's scale that the ranker's weights carry over, at four fits' cost.
pub const FOLDS: u64 = 4;

/// The fold of pair (`user`, `item`): a fixed hash, the same on every run.
pub fn fold_of(user: u32, item: u32) -> u64 {
    let mut x = ((user as u64) << 32 | item as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) % FOLDS
}

/// Fits the model's policies on folds of `ds`'s events.
pub struct FoldFits<'a> {
    pub config: &'a ModelConfig,
    pub ds: &'a Dataset,
}

impl PairScores for FoldFits<'_> {
    fn scores(
        &self,
        policies: &[String],
        users: &[u32],
        items: &[u32],
        before: i64,
        ctx: &TrainContext<'_>,
    ) -> Result<Vec<f32>> {
        let width = policies.len();
        let mut out = vec![0f32; users.len() * width];
        // Rows per fold, grouped by user so that each user is scored once per fold.
        let mut by_fold: Vec<BTreeMap<u32, Vec<usize>>> = vec![BTreeMap::new(); FOLDS as usize];
        for (r, (&u, &i)) in users.iter().zip(items).enumerate() {
            if (u as usize) < self.ds.n_users() {
                by_fold[fold_of(u, i) as usize]
                    .entry(u)
                    .or_default()
                    .push(r);
            }
        }
        let fit_ctx = TrainContext {
            progress: ctx.progress,
            seed: ctx.seed,
            cancel: ctx.cancel,
            log: &|_| {},
            device: ctx.device.clone(),
            validate: None,
            pair_scores: None,
        };
        for (k, name) in policies.iter().enumerate() {
            let config = self.config.policy(name).ok_or_else(|| {
                Error::Internal(format!(
                    "ranker input `{name}` is not a policy of the model"
                ))
            })?;
            let start = Instant::now();
            for (fold, rows) in by_fold.iter().enumerate() {
                ctx.check_cancelled()?;
                let data = self
                    .ds
                    .retain_events(|u, i, t| t < before && fold_of(u, i) != fold as u64);
                let model =
                    policy::build(self.config, config).train(data.view(Cut::All), &fit_ctx)?;
                let heads = model.heads().len();
                for (&u, rows) in rows {
                    let wanted: Vec<u32> = rows.iter().map(|&r| items[r]).collect();
                    let mut scores = vec![0f32; heads * wanted.len()];
                    model.score_heads(u, &wanted, &mut scores);
                    for (&r, &s) in rows.iter().zip(&scores) {
                        out[r * width + k] = s;
                    }
                }
            }
            (ctx.log)(format!(
                "input `{name}`: fitted on {FOLDS} folds of the pairs before the test period in {:.1}s",
                start.elapsed().as_secs_f64()
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_fixed_and_balanced() {
        let mut counts = [0usize; FOLDS as usize];
        for u in 0..200 {
            for i in 0..200 {
                counts[fold_of(u, i) as usize] += 1;
            }
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(fold_of(7, 11), fold_of(7, 11));
    }
}
