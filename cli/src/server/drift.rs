//! Score drift per served version: each policy's served scores counted in the bins of its
//! reference distribution (stored with the version's evaluation), read as PSI by `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use feed_engine::eval::{EvalReport, ScoreReference};

/// A policy's PSI so far (`None` before anything was served) and how many scores it is over.
pub type PolicyDrift = (String, Option<f64>, u64);

/// The served scores of one version, per policy with a reference.
#[derive(Default)]
pub struct Drift {
    policies: BTreeMap<String, (ScoreReference, Vec<AtomicU64>)>,
}

impl Drift {
    /// Counters for every policy of `report` that has a reference (none for a version made
    /// before references were kept).
    pub fn new(report: Option<&EvalReport>) -> Self {
        let policies = report
            .map(|r| {
                r.policies
                    .iter()
                    .filter_map(|(name, p)| {
                        let reference = p.score_reference.clone()?;
                        let counts = (0..reference.bins()).map(|_| AtomicU64::new(0)).collect();
                        Some((name.clone(), (reference, counts)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { policies }
    }

    /// Counts a served page's scores: each item's `policy.<name>` values (the features a
    /// query or rank computed for it).
    pub fn observe(&self, features: &[BTreeMap<String, f64>]) {
        for item in features {
            for (key, &value) in item {
                let Some((reference, counts)) = key
                    .strip_prefix("policy.")
                    .and_then(|name| self.policies.get(name))
                else {
                    continue;
                };
                if value.is_finite() {
                    counts[reference.bin(value)].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Per policy: PSI of what was served so far (`None` before anything was) and the count.
    pub fn psi(&self) -> Vec<PolicyDrift> {
        self.policies
            .iter()
            .map(|(name, (reference, counts))| {
                let counts: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                (name.clone(), reference.psi(&counts), counts.iter().sum())
            })
            .collect()
    }
}
