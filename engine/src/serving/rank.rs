//! `rank`: the best unseen items for a user, by the version's ranking score. Users the model
//! has never seen get all-time popularity, and the answer says so.

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;

use super::Snapshot;
use crate::error::{Error, Result};
use crate::eval::top_k;

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
        let n = self.n_items();
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
        let (mut row, fallback) = match known {
            Some(u) => {
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
                (row, None)
            }
            None => (self.popular.clone(), Some("popular")),
        };
        let top = top_k(&row, req.limit);
        let ids = top.iter().map(|&i| self.item_ids[i].clone()).collect();
        let scores = top.iter().map(|&i| std::mem::take(&mut row[i])).collect();
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
}
