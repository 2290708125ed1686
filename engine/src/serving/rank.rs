//! `rank`: the best unseen items for a user, by the version's ranking score. Users the model
//! has never seen get all-time popularity, and the answer says so.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;

use super::Snapshot;
use crate::error::{Error, Result};
use crate::eval::top_k;
use crate::vectors::{Search, VectorIndex};

thread_local! {
    /// `rank_by_index`'s mask, all true between requests (unless marked dirty).
    static RANK_MASK: std::cell::RefCell<(Vec<bool>, bool)> =
        const { std::cell::RefCell::new((Vec::new(), false)) };
}

#[derive(Debug, Clone)]
pub struct RankRequest {
    pub user_id: String,
    pub limit: usize,
    pub with_metadata: bool,
}

#[derive(Debug, Clone)]
pub struct Ranking {
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f32>,
    /// Set when the user is unknown (or has no events) and the answer is the popular fallback.
    pub fallback: Option<&'static str>,
    /// The items' attribute rows, in ranking order.
    pub metadata: Option<RecordBatch>,
}

impl Snapshot {
    #[tracing::instrument(skip(self), fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn rank(&self, req: &RankRequest) -> Result<Ranking> {
        let max = self.config.serving.max_limit;
        if req.limit == 0 || req.limit > max {
            return Err(Error::Invalid(format!(
                "limit must be between 1 and {max} (serving.max_limit), got {}",
                req.limit
            )));
        }
        // A user with no events (listed by fetch.users only) has nothing to personalise from.
        let known = self
            .users
            .get(&req.user_id)
            .filter(|&u| !self.seen(u).is_empty());
        // An expression value model is evaluated by the query engine, over every unseen item.
        if let (Some(_), Some(_)) = (&self.value_expression, known) {
            let mut params = crate::query::Params::new();
            params.insert(
                "user_id".into(),
                crate::query::ParamValue::Str(req.user_id.clone()),
            );
            let text = format!(
                "SELECT * FROM filter(limit = {}) WHERE NOT seen($user_id) ORDER BY score(value_model)",
                self.n_items()
            );
            let r = self.query(&crate::query::QueryRequest {
                text: Some(text),
                params,
                limit: Some(req.limit),
                with_metadata: req.with_metadata,
                ..Default::default()
            })?;
            return Ok(Ranking {
                model: r.model,
                version: r.version,
                ids: r.ids,
                scores: r.scores.iter().map(|&s| s as f32).collect(),
                fallback: None,
                metadata: r.metadata,
            });
        }
        let (top, scores, fallback) = match known {
            // The precomputed popularity order (ties by item order, as `top_k`): no scan.
            None => {
                let top: Vec<usize> = self
                    .popular_order
                    .iter()
                    .take(req.limit)
                    .map(|&i| i as usize)
                    .collect();
                let scores = top.iter().map(|&i| self.popular[i]).collect();
                (top, scores, Some("popular"))
            }
            Some(u) => match self.rank_by_index(u, req.limit) {
                Some((top, scores)) => (top, scores, None),
                None => {
                    let mut row = self.score_row(u)?;
                    let top = top_k(&row, req.limit);
                    let scores = top.iter().map(|&i| std::mem::take(&mut row[i])).collect();
                    (top, scores, None)
                }
            },
        };
        let ids = top.iter().map(|&i| self.item_ids[i].clone()).collect();
        let metadata = if req.with_metadata {
            let idx = UInt32Array::from_iter_values(top.iter().map(|&i| i as u32));
            Some(take_record_batch(&self.items, &idx).map_err(|e| Error::Internal(e.to_string()))?)
        } else {
            None
        };
        Ok(Ranking {
            model: self.manifest.model.clone(),
            version: self.manifest.version,
            ids,
            scores,
            fallback,
            metadata,
        })
    }

    /// Every item's ranking score for user `u` (seen items at -inf): Σ weight × policy score,
    /// times the demotion factors.
    fn score_row(&self, u: u32) -> Result<Vec<f32>> {
        let n = self.n_items();
        let mut row = vec![0f32; n];
        let mut buf = vec![0f32; n];
        for (name, w) in &self.terms {
            let p = self.policies.get(name).ok_or_else(|| {
                Error::Internal(format!("ranking term `{name}` has no loaded policy"))
            })?;
            p.score_users(&[u], &mut buf);
            for (r, b) in row.iter_mut().zip(&buf) {
                *r += w * b;
            }
        }
        // Demotions multiply the weighted sum, as in score(value_model).
        if let Some(factors) = &self.demotion {
            for (r, f) in row.iter_mut().zip(factors) {
                *r *= f;
            }
        }
        for &i in self.seen(u) {
            row[i as usize] = f32::NEG_INFINITY;
        }
        Ok(row)
    }

    /// A ranking that is one policy's dot product (one positive weight, no demotions) over a
    /// catalog with an ANN index is a nearest-neighbour search of the user's vector, seen items
    /// excluded: the index answers instead of a scan of every item. `None` when it does not
    /// apply.
    fn rank_by_index(&self, u: u32, limit: usize) -> Option<(Vec<usize>, Vec<f32>)> {
        let [(name, w)] = self.terms.as_slice() else {
            return None;
        };
        if *w <= 0.0 || self.demotion.is_some() {
            return None;
        }
        let index @ VectorIndex::Ivf(_) = self.vector_index(name) else {
            return None;
        };
        let policy = self.policies.get(name).filter(|p| p.score_is_dot())?;
        let vectors = policy.vectors()?;
        let n = self.n_items();
        let seen = self.seen(u);
        // A per-thread all-true mask with this user's items switched off for the search and on
        // again after: O(seen) per request instead of a fresh catalog-sized mask.
        RANK_MASK.with_borrow_mut(|(mask, dirty)| {
            // A search that panicked left it dirty: start clean.
            if mask.len() != n || *dirty {
                *mask = vec![true; n];
            }
            *dirty = true;
            for &i in seen {
                mask[i as usize] = false;
            }
            let search = Search {
                query: vectors.user(u),
                k: limit,
                mask: Some(mask),
                eligible: n - seen.len(),
            };
            let (found, _) = index.search(vectors.items, vectors.dim, search);
            for &i in seen {
                mask[i as usize] = true;
            }
            *dirty = false;
            Some(found.into_iter().map(|(i, s)| (i as usize, w * s)).unzip())
        })
    }
}
