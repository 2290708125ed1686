//! The evaluation report stored with each version (`metrics.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Metrics;

/// Every policy's metrics, and popularity's as the reference, on one split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// How the numbers were made, in words.
    pub protocol: String,
    pub users: usize,
    pub items: usize,
    pub events: usize,
    /// Plain popularity (all-time counts): the baseline every policy should beat.
    pub reference: PolicyReport,
    pub policies: BTreeMap<String, PolicyReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyReport {
    #[serde(rename = "type")]
    pub kind: String,
    /// Predicting each user's last event from everything before it.
    pub test: Metrics,
    /// Predicting the second-to-last event (what early stopping and selection use).
    pub valid: Metrics,
    pub train_seconds: f64,
    /// Epochs, device and time per epoch of a neural policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<crate::core::TrainingSummary>,
    /// Estimated against measured training memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::core::MemoryReport>,
    /// A ranker's heads on held-out impressions (its `test` and `valid` ranking figures are
    /// then zero: a ranker is not a retriever).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranker: Option<crate::core::RankerReport>,
    /// The trials of its `tuning:` search, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<TuningReport>,
    /// Where its served scores are expected to fall (score drift is measured against it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_reference: Option<super::ScoreReference>,
}

/// A policy's hyper-parameter search: every trial on the validation cut, and the one kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuningReport {
    /// `ndcg@10`, `hr@10` or `mrr@10`.
    pub metric: String,
    /// `grid` or `random`.
    pub method: String,
    pub trials: Vec<TrialReport>,
    /// The index of the trial whose settings trained the version.
    pub best: usize,
}

/// One trial: its settings, its validation figure and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialReport {
    pub settings: crate::config::tuning::Settings,
    pub valid: f64,
    pub seconds: f64,
}

pub const PROTOCOL: &str =
    "time-ordered leave-last-out per user (test = last event, validation = the one before); \
full ranking over all items with the user's earlier items excluded; ties broken by item order";

impl EvalReport {
    /// The policy with the best validation NDCG@10 (first declared wins ties).
    pub fn best_policy<'a>(&'a self, order: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let mut best: Option<(&str, f64)> = None;
        for name in order {
            if let Some(r) = self.policies.get(name).filter(|r| r.ranker.is_none()) {
                if best.is_none_or(|(_, b)| r.valid.ndcg > b) {
                    best = Some((name, r.valid.ndcg));
                }
            }
        }
        best.map(|b| b.0)
    }
}
