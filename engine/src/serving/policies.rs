//! A version's trained policies, their vector indexes, and their outputs scored by name.

use std::collections::BTreeMap;

use crate::core::TrainedPolicy;
use crate::error::{Error, Result};
use crate::expr::OutputRef;
use crate::vectors::VectorIndex;

pub struct Policies {
    pub(crate) trained: BTreeMap<String, Box<dyn TrainedPolicy>>,
    /// How each policy's item vectors are searched (exact when absent).
    pub(crate) indexes: BTreeMap<String, VectorIndex>,
}

impl Policies {
    pub fn get(&self, name: &str) -> Option<&dyn TrainedPolicy> {
        self.trained.get(name).map(|p| p.as_ref())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trained.keys().map(String::as_str)
    }

    /// How `policy`'s item vectors are searched.
    pub fn vector_index(&self, policy: &str) -> &VectorIndex {
        self.indexes.get(policy).unwrap_or(&VectorIndex::Exact)
    }

    /// The named outputs for `items` (one column per output, in `outputs` order), each policy
    /// scored once whatever number of its heads are asked for. A user the version does not know
    /// has no personal scores: 0 for every item.
    pub fn score(
        &self,
        user: Option<u32>,
        items: &[u32],
        outputs: &[&OutputRef],
    ) -> Result<Vec<Vec<f32>>> {
        let mut by_policy: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        let mut out = Vec::with_capacity(outputs.len());
        for o in outputs {
            let policy = self
                .trained
                .get(&o.policy)
                .ok_or_else(|| Error::Internal(format!("policy `{}` is not loaded", o.policy)))?;
            let rows = by_policy.entry(o.policy.as_str()).or_insert_with(|| {
                let heads = policy.heads().len();
                let mut rows = vec![0f32; heads * items.len()];
                if let Some(u) = user {
                    policy.score_heads(u, items, &mut rows);
                }
                rows
            });
            let n = items.len();
            let row = rows.get(o.head * n..(o.head + 1) * n).ok_or_else(|| {
                Error::Internal(format!("policy `{}` has no head {}", o.policy, o.head))
            })?;
            out.push(row.to_vec());
        }
        Ok(out)
    }
}
