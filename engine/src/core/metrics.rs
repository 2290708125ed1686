//! Ranking metrics: what evaluation reports and what early stopping compares.

use serde::{Deserialize, Serialize};

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
