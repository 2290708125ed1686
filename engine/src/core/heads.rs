//! What a ranker's evaluation reports, per head: the vocabulary of `eval` (which computes it)
//! and of the policies (which carry it with their weights).

use serde::{Deserialize, Serialize};

/// One head's figures on one set of rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadMetrics {
    pub rows: usize,
    /// Share of rows with the engagement.
    pub base_rate: f64,
    pub auc: f64,
    pub log_loss: f64,
    /// Log loss over the entropy of the base rate (lower is better; 1 = the base rate's).
    pub normalized_entropy: f64,
    /// Σ over bins of (rows in bin / rows) × |mean prediction − observed rate|.
    pub ece: f64,
    /// Σ predictions over Σ engagements (1 = right on average).
    pub predicted_over_observed: f64,
    /// Per bin: mean prediction, observed rate, rows.
    pub reliability: Vec<[f64; 3]>,
}

/// How a ranker's impressions were split by time, and each head's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RankerReport {
    /// In words: the time split and what the figures are.
    pub protocol: String,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub test_rows: usize,
    /// Validation starts at this time (seconds since the epoch), and test at `test_from`.
    pub valid_from: i64,
    pub test_from: i64,
    pub heads: Vec<HeadReport>,
}

/// One head: test figures after calibration, and before it (the raw network).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadReport {
    pub head: String,
    /// `isotonic`, `platt` or `none`, fitted on the validation rows.
    pub calibration: String,
    pub test: HeadMetrics,
    pub test_uncalibrated: HeadMetrics,
    pub valid: HeadMetrics,
    /// The same test rows scored by a logistic regression on simpler inputs (absent in
    /// versions made before it was reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<HeadBaseline>,
}

/// A head's baseline: a logistic regression on the item's popularity and the retrieval scores
/// the ranker reads, fitted on the training rows and calibrated by itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeadBaseline {
    /// Its inputs, in words (`log popularity`, `als`).
    pub inputs: Vec<String>,
    pub test: HeadMetrics,
}
