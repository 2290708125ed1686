//! `rank`: the best unseen items for a user, by the version's ranking score. Users the model
//! has never seen get all-time popularity, and the answer says so.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;

use super::{score, Request};
use crate::error::{Error, Result};
use crate::expr::{Params, Values};
use crate::serving::artifacts::HISTORY_LEN;
use crate::serving::{ScoringUser, Snapshot, UserState, UserView};
use crate::util::topk::top_k;
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
    /// Report per item the policy outputs its value read (what an impression records).
    pub features: bool,
}

#[derive(Debug, Clone)]
pub struct Ranking {
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f32>,
    /// `popular` when the user is unknown (or has no events) and the answer is the popular
    /// fallback; `history` when only live events know the user and the answer searches the
    /// primary policy's vectors from their history.
    pub fallback: Option<&'static str>,
    /// The items' attribute rows, in ranking order.
    pub metadata: Option<RecordBatch>,
    /// With `features`: per item, the value model's policy outputs (`policy.<output>`) and its
    /// popularity (`popularity`).
    pub features: Option<Vec<std::collections::BTreeMap<String, f64>>>,
}

impl Snapshot {
    #[tracing::instrument(skip(self), fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn rank(&self, req: &RankRequest) -> Result<Ranking> {
        self.rank_live(req, self.user_state())
    }

    /// [`Self::rank`] reading user state from `users` (live events over this version's).
    #[tracing::instrument(skip(self, users), fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn rank_live(&self, req: &RankRequest, users: &dyn UserState) -> Result<Ranking> {
        let max = self.config.serving.max_limit;
        if req.limit == 0 || req.limit > max {
            return Err(Error::invalid(
                "limit",
                format!(
                    "limit must be between 1 and {max} (serving.max_limit), got {}",
                    req.limit
                ),
            ));
        }
        // A user with no events (listed by fetch.users only) has nothing to personalise from;
        // one the version never trained on (known from live events only) has no vectors yet.
        let view = users.user(&req.user_id).filter(|u| u.has_events());
        let dense = view.as_ref().and_then(|u| u.dense);
        // Vectors encoded now from the user's live history, where a policy reads one.
        let scoring = view
            .as_ref()
            .map(|v| self.scoring_user(v))
            .unwrap_or_default();
        // Personal scores need a user the version trained on (one listed by `fetch.users`
        // alone has an id but an untrained vector, whatever live events came since).
        let trained = self
            .user_state()
            .user(&req.user_id)
            .is_some_and(|u| u.has_events());
        let (top, scores, fallback) = match view {
            Some(user) if trained => match self.rank_by_index(&user, &scoring, req.limit) {
                Some((top, scores)) => (top, scores, None),
                None => {
                    let mut row = self.value_row(&user, &scoring)?;
                    let top = top_k(&row, req.limit);
                    let scores = top.iter().map(|&i| std::mem::take(&mut row[i])).collect();
                    (top, scores, None)
                }
            },
            // A user the version never trained on, with live interactions: their history.
            // Otherwise the precomputed popularity order (ties by item order, as `top_k`): no
            // scan. What the user already interacted with stays out, as in a personal ranking.
            view => match view
                .as_ref()
                .and_then(|u| self.rank_by_history(u, &scoring, req.limit))
            {
                Some((top, scores)) => (top, scores, Some("history")),
                None => {
                    let seen = view.as_ref().map(|v| &v.seen[..]).unwrap_or_default();
                    let top: Vec<usize> = self
                        .catalog
                        .popular_order
                        .iter()
                        .filter(|i| seen.binary_search(i).is_err() && !self.catalog.is_deleted(**i))
                        .take(req.limit)
                        .map(|&i| i as usize)
                        .collect();
                    let scores = top.iter().map(|&i| self.catalog.popular[i]).collect();
                    (top, scores, Some("popular"))
                }
            },
        };
        let ids = top
            .iter()
            .map(|&i| self.catalog.id(i as u32).to_string())
            .collect();
        let features = if req.features {
            // Personal outputs only for a user the version trained on, as the ranking had.
            let user = ScoringUser {
                dense: dense.filter(|_| trained),
                ..scoring.clone()
            };
            Some(self.rank_features(&user, &top)?)
        } else {
            None
        };
        let metadata = if req.with_metadata {
            let idx = UInt32Array::from_iter_values(top.iter().map(|&i| i as u32));
            Some(
                take_record_batch(&self.catalog.table, &idx)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
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
            features,
        })
    }

    /// The numbers behind a ranking, per item: the value model's policy outputs and the
    /// item's popularity.
    fn rank_features(
        &self,
        user: &ScoringUser,
        top: &[usize],
    ) -> Result<Vec<std::collections::BTreeMap<String, f64>>> {
        let items: Vec<u32> = top.iter().map(|&i| i as u32).collect();
        let outputs: Vec<_> = self.value.needs().outputs.iter().collect();
        let scores = self.policies.score(user, &items, &outputs)?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let mut f: std::collections::BTreeMap<String, f64> = outputs
                    .iter()
                    .zip(&scores)
                    .map(|(o, s)| (format!("policy.{}", o.name), s[k] as f64))
                    .collect();
                f.insert("popularity".into(), self.catalog.popular[i as usize] as f64);
                f
            })
            .collect())
    }

    /// Every item's value for `user` (seen items at -inf), by the one value-model evaluator: the
    /// weighted sum through each policy's batched scoring, or the expression over the catalog.
    fn value_row(&self, user: &UserView<'_>, scoring: &ScoringUser) -> Result<Vec<f32>> {
        let n = self.n_items();
        let mut row = match user.dense {
            Some(_) => self.value.score_catalog(&self.policies, scoring, n)?,
            None => None,
        };
        if row.is_none() {
            // An expression: evaluated like `ORDER BY score(value_model)` over every item.
            let params = Params::new();
            let request = Request {
                snapshot: self,
                users: self.user_state(),
                params: &params,
                user: Some(user.clone()),
                text: "",
                scoring: scoring.clone().into(),
            };
            let needs = self.value.needs();
            let user_value = |col: &str| self.users.attribute(user.dense?, col);
            let values = Values {
                params: &params,
                user: &user_value,
                user_types: &needs.user_columns,
                now_seconds: super::execute::now_seconds(),
            };
            let items: Vec<u32> = (0..n as u32).collect();
            let batch = score::batch(&request, needs, &items, None, &values)?;
            let value = score::value_model(&request, &batch, &items, &values)?;
            // Items without a value rank after every valued one, but still rank: only seen
            // items are excluded.
            row = Some(
                value
                    .into_iter()
                    .map(|v| {
                        v.filter(|v| v.is_finite())
                            .map_or(f32::MIN, |v| (v as f32).max(f32::MIN))
                    })
                    .collect(),
            );
        }
        let mut row = row.expect("computed above");
        for &i in user.seen.iter().chain(self.catalog.deleted_ids()) {
            row[i as usize] = f32::NEG_INFINITY;
        }
        Ok(row)
    }

    /// A ranking that is one policy's dot product (one positive weight, no demotions) over a
    /// catalog with an ANN index is a nearest-neighbour search of the user's vector, seen items
    /// excluded: the index answers instead of a scan of every item. `None` when it does not
    /// apply.
    /// For a user the version never trained on but who has live interactions: the primary
    /// policy's item vectors searched from their history (its sequence encoder, else the mean
    /// of their latest items), their items excluded. `None` when that policy has no vectors.
    fn rank_by_history(
        &self,
        user: &UserView<'_>,
        scoring: &ScoringUser,
        limit: usize,
    ) -> Option<(Vec<usize>, Vec<f32>)> {
        let name = &self.manifest.primary_policy;
        let vectors = self.policies.vectors(name)?;
        let recent = &user.recent[..];
        let latest = &recent[recent.len().saturating_sub(HISTORY_LEN)..];
        // The policy's own user encoding of the history (a tower), else its sequence encoder,
        // else the mean of the latest items.
        let query = scoring
            .live
            .get(name.as_str())
            .cloned()
            .or_else(|| self.policies.encode_sequence(name, recent))
            .or_else(|| vectors.mean_of(latest))?;
        let mut mask = vec![true; self.n_items()];
        for &i in user.seen.iter() {
            mask[i as usize] = false;
        }
        for &i in self.catalog.deleted_ids() {
            mask[i as usize] = false;
        }
        let search = Search {
            query: &query,
            k: limit,
            eligible: mask.iter().filter(|m| **m).count(),
            mask: Some(&mask),
        };
        let (found, _) = self.policies.search(name, search)?;
        Some(found.into_iter().map(|(i, s)| (i as usize, s)).unzip())
    }

    fn rank_by_index(
        &self,
        user: &UserView<'_>,
        scoring: &ScoringUser,
        limit: usize,
    ) -> Option<(Vec<usize>, Vec<f32>)> {
        let [term] = self.value.terms()? else {
            return None;
        };
        let u = user.dense?;
        if term.weight <= 0.0 || self.value.has_demotions() {
            return None;
        }
        let name = &term.output.policy;
        let VectorIndex::Ivf(_) = self.policies.vector_index(name) else {
            return None;
        };
        self.policies
            .get(name)
            .filter(|p| p.score_is_dot() && p.heads().len() == 1)?;
        let vectors = self.policies.vectors(name)?;
        let w = term.weight as f32;
        let n = self.n_items();
        let seen: &[u32] = &user.seen;
        let deleted = self.catalog.deleted_ids();
        // A per-thread all-true mask with this user's items switched off for the search and on
        // again after: O(seen) per request instead of a fresh catalog-sized mask.
        RANK_MASK.with_borrow_mut(|(mask, dirty)| {
            // A search that panicked left it dirty: start clean.
            if mask.len() != n || *dirty {
                *mask = vec![true; n];
            }
            *dirty = true;
            let mut eligible = n;
            for &i in seen.iter().chain(deleted) {
                if std::mem::replace(&mut mask[i as usize], false) {
                    eligible -= 1;
                }
            }
            let search = Search {
                query: scoring
                    .live
                    .get(name.as_str())
                    .map_or(vectors.user(u), Vec::as_slice),
                k: limit,
                mask: Some(mask),
                eligible,
            };
            let found = self.policies.search(name, search).map(|(f, _)| f);
            for &i in seen.iter().chain(deleted) {
                mask[i as usize] = true;
            }
            *dirty = false;
            Some(found?.into_iter().map(|(i, s)| (i as usize, w * s)).unzip())
        })
    }
}
