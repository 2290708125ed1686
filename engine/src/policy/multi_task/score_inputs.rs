//! Retrieval scores as a ranker's inputs (`scores: [als]`), and the logistic baseline each head
//! is reported against. A score enters standardised by its mean and spread on the training rows,
//! the same at training (out-of-fold fits, [`crate::core::PairScores`]) and at serving (the
//! deployed policy's score for each candidate).

use serde::{Deserialize, Serialize};

use super::examples::Examples;
use crate::config::MultiTaskConfig;
use crate::core::{HeadBaseline, TrainContext};
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::eval::{head_metrics, Logistic};

/// One retrieval policy read as an input, with its standardisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreInput {
    pub policy: String,
    pub mean: f32,
    pub scale: f32,
}

impl ScoreInput {
    pub fn standardise(&self, score: f32) -> f32 {
        (score - self.mean) / self.scale
    }
}

/// Scores each example's pair with out-of-fold fits of `c.scores` and appends the standardised
/// scores to its dense inputs (one column per policy, in order).
pub fn append(
    c: &MultiTaskConfig,
    ex: &mut Examples,
    ctx: &TrainContext<'_>,
) -> Result<Vec<ScoreInput>> {
    if c.scores.is_empty() {
        return Ok(Vec::new());
    }
    let fits = ctx.pair_scores.ok_or_else(|| {
        Error::Internal(format!(
            "{}: the run offers no out-of-fold scores for `scores:`",
            c.name
        ))
    })?;
    let width = c.scores.len();
    let mut raw = fits.scores(&c.scores, &ex.user, &ex.item, ex.test_from, ctx)?;
    let n = ex.train.len().max(1) as f64;
    let inputs: Vec<ScoreInput> = c
        .scores
        .iter()
        .enumerate()
        .map(|(k, policy)| {
            let values = || ex.train.iter().map(|&r| raw[r * width + k] as f64);
            let mean = values().sum::<f64>() / n;
            let var = values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            ScoreInput {
                policy: policy.clone(),
                mean: mean as f32,
                scale: (var.sqrt() as f32).max(1e-6),
            }
        })
        .collect();
    for row in raw.chunks_mut(width) {
        for (v, input) in row.iter_mut().zip(&inputs) {
            *v = input.standardise(*v);
        }
    }
    ex.append_dense(&raw, width);
    Ok(inputs)
}

/// Per head, a logistic regression on the item's log popularity (its events before the test
/// period) and the standardised retrieval scores (the last `inputs.len()` dense columns),
/// fitted on the training rows and measured on the test rows.
pub fn baselines(ex: &Examples, ds: &Dataset, inputs: &[ScoreInput]) -> Vec<HeadBaseline> {
    let mut popularity = vec![0u32; ds.n_items()];
    for (&i, &t) in ds.seq_items.iter().zip(&ds.seq_times) {
        if t < ex.test_from {
            popularity[i as usize] += 1;
        }
    }
    let width = 1 + inputs.len();
    let scores_at = ex.n_dense - inputs.len();
    let mut x = Vec::with_capacity(ex.item.len() * width);
    for (r, &i) in ex.item.iter().enumerate() {
        let count = popularity.get(i as usize).copied().unwrap_or(0);
        x.push((count as f32).ln_1p());
        x.extend_from_slice(&ex.dense[r * ex.n_dense + scores_at..(r + 1) * ex.n_dense]);
    }
    let mut names = vec!["log popularity".to_string()];
    names.extend(inputs.iter().map(|i| i.policy.clone()));
    (0..ex.heads)
        .map(|h| {
            let y: Vec<f32> = (0..ex.item.len())
                .map(|r| ex.labels[r * ex.heads + h])
                .collect();
            let fit = Logistic::fit(&x, width, &y, &ex.train);
            let p: Vec<f32> = ex.test.iter().map(|&r| fit.predict(&x, width, r)).collect();
            HeadBaseline {
                inputs: names.clone(),
                test: head_metrics(&p, &ex.head_labels(h, &ex.test)),
            }
        })
        .collect()
}
