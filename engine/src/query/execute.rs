//! The pipeline: filter mask → retrieve (prefiltered, exact) → score → cut.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;
use datafusion::scalar::ScalarValue;
use feed_lang::ast::{Call, Count, Order, Query, Score, Select, Value};
use feed_lang::{alias_of, ErrorKind, QueryError};

use rayon::prelude::*;

use super::pages::Pages;
use super::params::{self, ParamValue, Params};
use super::rerank::{self, Ranked};
use super::translate::{self, Scope, Stage};
use crate::error::{did_you_mean, Error, Result};
use crate::eval::top_k;
use crate::serving::artifacts::HISTORY_LEN;
use crate::serving::Snapshot;
use crate::vectors::Search;

/// A query against one model version.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// FeedQL text; or `saved`, the name of a query in the model file.
    pub text: Option<String>,
    pub saved: Option<String>,
    pub params: Params,
    /// Override the query's LIMIT and OFFSET.
    pub limit: Option<usize>,
    pub offset: Option<usize>,
    pub with_metadata: bool,
    /// Report per stage and per item how the page came about.
    pub explain: bool,
}

/// Per stage: how many items went in and out, and the time spent.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub stage: &'static str,
    pub input: usize,
    pub output: usize,
    pub micros: u64,
}

/// The items a query may return: the filter's mask over the catalog and how many it lets
/// through.
#[derive(Clone, Copy)]
struct Eligible<'a> {
    mask: &'a [bool],
    count: usize,
}

/// A retriever that found an item, with the item's score and 1-based rank there.
#[derive(Debug, Clone)]
pub struct FoundBy {
    pub retriever: String,
    pub score: f64,
    pub rank: usize,
}

/// Why an item is where it is.
#[derive(Debug, Clone)]
pub struct ItemExplanation {
    pub id: String,
    pub found_by: Vec<FoundBy>,
    /// Brought in by an exploration reranker.
    pub explored: bool,
    /// Each policy's score used by the score expression.
    pub policy_scores: BTreeMap<String, f64>,
    /// For `score(value_model)`: each term's contribution, weight × policy score.
    pub value_model: BTreeMap<String, f64>,
    /// For `score(value_model)`: each demotion's factor, 1 − strength × item.column.
    pub demotions: BTreeMap<String, f64>,
    pub position_before_reorder: Option<usize>,
    pub score_before_reorder: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Clone)]
pub struct Explanation {
    pub stages: Vec<StageReport>,
    pub items: Vec<ItemExplanation>,
}

/// Lap times of the stages.
struct Clock(std::time::Instant);

impl Clock {
    fn start() -> Self {
        Self(std::time::Instant::now())
    }

    fn lap(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let micros = (now - self.0).as_micros() as u64;
        self.0 = now;
        micros
    }
}

#[derive(Debug, Clone)]
pub struct QueryResult {
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f64>,
    /// Items that satisfy the filter, in the whole catalog.
    pub eligible: usize,
    pub metadata: Option<RecordBatch>,
    /// Per stage: items in and out, time spent (always reported; cheap).
    pub stages: Vec<StageReport>,
    pub explanation: Option<Explanation>,
}

/// The default page size and retriever size.
const DEFAULT_LIMIT: usize = 10;
const DEFAULT_RETRIEVER_LIMIT: usize = 100;

/// What one retriever found: item → (score, 1-based rank).
type Found = HashMap<u32, (f64, usize)>;

/// Candidates gathered by the retrievers, in first-found order.
struct Candidates {
    items: Vec<u32>,
    /// Per retriever alias, what it found.
    found: Vec<(String, Found)>,
}

impl Snapshot {
    /// Runs a FeedQL query.
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult> {
        self.query_with(req, None)
    }

    /// Runs a FeedQL query whose later pages continue the ranking of its first page (within
    /// `serving.page_ttl_seconds`), as remembered in `pages`.
    pub fn query_paged(&self, req: &QueryRequest, pages: &Pages) -> Result<QueryResult> {
        self.query_with(req, Some(pages))
    }

    fn query_with(&self, req: &QueryRequest, pages: Option<&Pages>) -> Result<QueryResult> {
        params::check(&req.params)?;
        let mut defaults = None;
        let text = match (&req.text, &req.saved) {
            (Some(t), None) => t.clone(),
            (None, Some(name)) => {
                let saved = self
                    .config
                    .queries
                    .get(name)
                    .ok_or_else(|| Error::NotFound {
                        what: "saved query",
                        name: name.clone(),
                        hint: did_you_mean(name, self.config.queries.keys().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| Some("see `queries:` in the model file".into())),
                    })?;
                defaults = saved.defaults();
                saved.text().to_string()
            }
            _ => {
                return Err(Error::Invalid(
                    "give either a query text or the name of a saved query".into(),
                ))
            }
        };
        let options = feed_lang::CheckOptions {
            max_limit: self.config.serving.max_limit as u64,
            ..Default::default()
        };
        let q = self.parsed(&text, &options)?;
        match defaults {
            // A saved query's parameter defaults, overridden by the request's own values.
            Some(defaults) if !defaults.is_empty() => {
                let mut effective = req.clone();
                for (k, v) in defaults {
                    effective
                        .params
                        .entry(k.clone())
                        .or_insert_with(|| params::from_default(v));
                }
                self.run(&q, &text, &effective, pages)
            }
            _ => self.run(&q, &text, req, pages),
        }
    }

    /// The checked AST of `text`, parsed once per version and text.
    fn parsed(
        &self,
        text: &str,
        options: &feed_lang::CheckOptions,
    ) -> Result<std::sync::Arc<Query>> {
        if let Some(q) = self
            .plans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(text)
        {
            return Ok(q.clone());
        }
        let q = std::sync::Arc::new(
            feed_lang::parse_with(text, options).map_err(|e| Error::query(e, text))?,
        );
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if plans.len() >= MAX_CACHED_PLANS {
            plans.clear();
        }
        plans.insert(text.to_string(), q.clone());
        Ok(q)
    }

    fn user_dense(&self, params: &Params) -> Option<u32> {
        params
            .get("user_id")
            .and_then(ParamValue::as_id)
            .and_then(|id| self.users.get(&id))
    }

    fn run(
        &self,
        q: &Query,
        text: &str,
        req: &QueryRequest,
        pages: Option<&Pages>,
    ) -> Result<QueryResult> {
        let n = self.n_items();
        let limit = match req.limit {
            Some(l) => l,
            None => count(q.limit.as_ref(), &req.params)?.unwrap_or(DEFAULT_LIMIT),
        };
        let offset = match req.offset {
            Some(o) => o,
            None => count(q.offset.as_ref(), &req.params)?.unwrap_or(0),
        };
        let max = self.config.serving.max_limit;
        if limit == 0 || limit > max {
            return Err(Error::Invalid(format!(
                "limit must be between 1 and {max} (serving.max_limit), got {limit}"
            )));
        }
        let max_offset = feed_lang::CheckOptions::default().max_offset as usize;
        if offset > max_offset {
            return Err(Error::Invalid(format!(
                "offset must be at most {max_offset}, got {offset}"
            )));
        }
        let need = limit + offset;
        let user = self.user_dense(&req.params);
        let policies: Vec<String> = self.policies.keys().cloned().collect();
        let user_columns: Vec<String> = self
            .users_table
            .schema()
            .fields()
            .iter()
            .skip(1)
            .map(|f| f.name().clone())
            .collect();
        let user_value = |col: &str| -> Option<ScalarValue> {
            let u = user?;
            let array = self.users_table.column_by_name(col)?;
            ScalarValue::try_from_array(array, u as usize).ok()
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let items_schema = self.items.schema();
        let demotions: Vec<(String, f64)> = self
            .config
            .value_model
            .as_ref()
            .map(|v| v.demotions.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        let mut scope = Scope {
            text,
            stage: Stage::Filter,
            params: &req.params,
            items: items_schema.as_ref(),
            policies: &policies,
            value_model: &self.terms,
            value_expression: self.value_expression.as_ref(),
            demotions: &demotions,
            user_value: &user_value,
            user_columns: &user_columns,
            now_seconds: now,
            item_columns: Default::default(),
            policies_used: Default::default(),
            retrieval_used: Default::default(),
            seen_users: Vec::new(),
            truncate: None,
            value_model_used: false,
            user_used: false,
            params_used: Default::default(),
        };

        let mut clock = Clock::start();
        let mut stages: Vec<StageReport> = Vec::new();

        // Filter: a mask over the whole catalog. Top-level `NOT seen(...)` conjuncts exclude the
        // user's items directly; the rest, when it depends on nothing per request but its
        // parameters, is evaluated once per version and remembered.
        let mut conjuncts = Vec::new();
        if let Some(f) = &q.filter {
            split_and(f, &mut conjuncts);
        }
        let mut excluded_users = Vec::new();
        let mut rest = Vec::new();
        for c in conjuncts {
            match not_seen(c, &req.params)? {
                Some(user) => excluded_users.push(user),
                None => rest.push(c),
            }
        }
        // The filter's mask and how many items it lets through, shared from the per-version
        // cache when it depends on nothing per request but its parameters; copied only when
        // this request's exclusions must change it.
        let base: std::sync::Arc<(Vec<bool>, usize)> = if rest.is_empty() {
            self.cached_mask(ALL_ITEMS_KEY, || Ok(vec![true; n]))?
        } else {
            let mut expr = scope.translate(rest[0])?;
            for c in &rest[1..] {
                expr = expr.and(scope.translate(c)?);
            }
            // Keyed by the filter's text and the values of the parameters it reads (not the user).
            let used: Vec<(&String, Option<&ParamValue>)> = scope
                .params_used
                .iter()
                .map(|p| (p, req.params.get(p)))
                .collect();
            let key = format!(
                "{}\u{0}{used:?}",
                rest.iter()
                    .map(|c| &text[c.span.start..c.span.end])
                    .collect::<Vec<_>>()
                    .join("\u{0}")
            );
            let span = rest[0].span.to(rest[rest.len() - 1].span);
            if scope.seen_users.is_empty() && !scope.user_used {
                self.cached_mask(&key, || self.evaluate_mask(expr, &scope, text, span))?
            } else {
                let m = self.evaluate_mask(expr, &scope, text, span)?;
                let count = m.iter().filter(|x| **x).count();
                std::sync::Arc::new((m, count))
            }
        };
        let mut owned: Option<Vec<bool>> = None;
        let mut eligible = base.1;
        for user in &excluded_users {
            if let Some(d) = self.users.get(user) {
                for &it in self.seen(d) {
                    let m = owned.get_or_insert_with(|| base.0.clone());
                    if m[it as usize] {
                        m[it as usize] = false;
                        eligible -= 1;
                    }
                }
            }
        }
        let mask: &[bool] = owned.as_deref().unwrap_or(&base.0);
        stages.push(StageReport {
            stage: "filter",
            input: n,
            output: eligible,
            micros: clock.lap(),
        });

        // Retrieve: every retriever searches eligible items only; widen if the page needs more.
        let default = [default_retriever()];
        let calls: &[Call] = if q.from.is_empty() { &default } else { &q.from };
        let allowed = Eligible {
            mask,
            count: eligible,
        };
        let mut candidates = self.retrieve(calls, text, &req.params, user, allowed, None)?;
        if candidates.items.len() < need.min(eligible) {
            candidates = self.retrieve(calls, text, &req.params, user, allowed, Some(need))?;
        }
        if let Some(t) = scope.truncate {
            candidates.items.truncate(t.max(need.min(eligible)));
        }
        // Retrievers that cannot widen (an unknown user's similarity, a short id list): fill
        // from the eligible items by popularity, exactly, so the page is as long as it can be.
        if candidates.items.len() < need.min(eligible)
            && !calls
                .iter()
                .all(|c| c.name.name.eq_ignore_ascii_case("ids"))
        {
            let mut present: std::collections::HashSet<u32> =
                candidates.items.iter().copied().collect();
            let mut found = HashMap::new();
            for &i in &self.popular_order {
                if candidates.items.len() >= need.min(eligible) {
                    break;
                }
                if mask[i as usize] && present.insert(i) {
                    candidates.items.push(i);
                    found.insert(i, (self.popular[i as usize] as f64, found.len() + 1));
                }
            }
            candidates.found.push(("fallback".to_string(), found));
        }

        stages.push(StageReport {
            stage: "retrieve",
            input: eligible,
            output: candidates.items.len(),
            micros: clock.lap(),
        });

        // Score.
        scope.stage = Stage::Score;
        let mut order: Vec<usize> = (0..candidates.items.len()).collect();
        let mut scores = vec![0f64; candidates.items.len()];
        let mut scored_batch = None;
        if let Some(Order {
            score, descending, ..
        }) = &q.order
        {
            let expr = match score {
                Score::ValueModel(_) => scope.translate(&value_model_path())?,
                Score::Expr(e) => scope.translate(e)?,
            };
            let batch = self.candidate_batch(&scope, &candidates, user)?;
            let values = translate::evaluate(expr, &batch)?;
            let values = cast(&values, &DataType::Float64)
                .map_err(|_| Error::Invalid("ORDER BY score(...) must be a number".into()))?;
            let values = values
                .as_any()
                .downcast_ref::<Float64Array>()
                .expect("cast to f64");
            for (i, s) in scores.iter_mut().enumerate() {
                *s = if values.is_valid(i) && !values.value(i).is_nan() {
                    values.value(i)
                } else {
                    f64::NEG_INFINITY
                };
            }
            // Missing scores (NULL, NaN) rank last in both directions.
            let key = |i: usize| -> (bool, f64) {
                let v = scores[i];
                (!v.is_finite(), if *descending { -v } else { v })
            };
            order.sort_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(&b))
            });
            scored_batch = Some(batch);
        } else {
            // Without a score, the first retriever's score stands.
            for (i, it) in candidates.items.iter().enumerate() {
                scores[i] = candidates
                    .found
                    .iter()
                    .find_map(|(_, m)| m.get(it).map(|s| s.0))
                    .unwrap_or(0.0);
            }
        }
        stages.push(StageReport {
            stage: "score",
            input: candidates.items.len(),
            output: order.len(),
            micros: clock.lap(),
        });
        let before: Vec<Ranked> = order
            .iter()
            .map(|&i| (candidates.items[i], scores[i]))
            .collect();

        // Reorder.
        let retrieve = |call: &Call, limit: usize| -> Result<Vec<Ranked>> {
            self.retrieve_one(call, text, &req.params, user, allowed, limit)
        };
        let mut ctx = rerank::Context {
            snapshot: self,
            text,
            params: &req.params,
            mask,
            need,
            explored: Default::default(),
            retrieve: &retrieve,
        };
        let ranked = if q.reorder.is_empty() {
            before.clone()
        } else {
            rerank::apply(&q.reorder, before.clone(), &mut ctx)?
        };
        stages.push(StageReport {
            stage: "reorder",
            input: before.len(),
            output: ranked.len(),
            micros: clock.lap(),
        });

        // Cut.
        let page: Vec<Ranked> = match pages {
            Some(pages) if !req.explain => {
                let fresh: Vec<(String, f64)> = ranked
                    .iter()
                    .map(|&(i, s)| (self.item_ids[i as usize].clone(), s))
                    .collect();
                let key = format!("{}\u{0}{text}\u{0}{:?}", self.manifest.model, req.params);
                let ttl = std::time::Duration::from_secs(self.config.serving.page_ttl_seconds);
                // Remembered items that stopped passing the filter (e.g. seen since) are skipped.
                let keep = |id: &str| self.item_index(id).is_some_and(|i| mask[i as usize]);
                pages
                    .page(&key, ttl, &fresh, offset, limit, keep)
                    .into_iter()
                    .filter_map(|(id, s)| self.item_index(&id).map(|i| (i, s)))
                    .collect()
            }
            _ => ranked.into_iter().skip(offset).take(limit).collect(),
        };
        stages.push(StageReport {
            stage: "limit",
            input: before.len(),
            output: page.len(),
            micros: clock.lap(),
        });
        let ids = page
            .iter()
            .map(|&(i, _)| self.item_ids[i as usize].clone())
            .collect();
        let page_scores = page.iter().map(|&(_, s)| s).collect();
        let metadata = if req.with_metadata {
            Some(self.page_metadata(q, text, &page)?)
        } else {
            None
        };
        let explanation = req.explain.then(|| {
            let position_before: HashMap<u32, (usize, f64)> = before
                .iter()
                .enumerate()
                .map(|(p, &(i, s))| (i, (p + 1, s)))
                .collect();
            let candidate_row: HashMap<u32, usize> = candidates
                .items
                .iter()
                .enumerate()
                .map(|(k, &i)| (i, k))
                .collect();
            let items = page
                .iter()
                .map(|&(item, score)| {
                    let row = candidate_row.get(&item).copied();
                    let found_by = candidates
                        .found
                        .iter()
                        .filter_map(|(alias, m)| {
                            m.get(&item).map(|&(s, r)| FoundBy {
                                retriever: alias.clone(),
                                score: s,
                                rank: r,
                            })
                        })
                        .collect();
                    let mut policy_scores = BTreeMap::new();
                    if let (Some(batch), Some(row)) = (&scored_batch, row) {
                        for p in &scope.policies_used {
                            if let Some(col) = batch.column_by_name(&format!("policy.{p}")) {
                                if let Some(v) = col.as_any().downcast_ref::<Float64Array>() {
                                    policy_scores.insert(p.clone(), v.value(row));
                                }
                            }
                        }
                    }
                    let value_model = if scope.value_model_used && self.value_expression.is_none() {
                        self.terms
                            .iter()
                            .map(|(p, w)| {
                                (
                                    p.clone(),
                                    *w as f64 * policy_scores.get(p).copied().unwrap_or(0.0),
                                )
                            })
                            .collect()
                    } else {
                        BTreeMap::new()
                    };
                    let demotions = if scope.value_model_used {
                        self.demotion_factors(item)
                    } else {
                        BTreeMap::new()
                    };
                    let (position_before_reorder, score_before_reorder) = position_before
                        .get(&item)
                        .copied()
                        .map_or((None, None), |(p, s)| (Some(p), Some(s)));
                    ItemExplanation {
                        id: self.item_ids[item as usize].clone(),
                        found_by,
                        explored: ctx.explored.contains(&item),
                        policy_scores,
                        value_model,
                        demotions,
                        position_before_reorder,
                        score_before_reorder,
                        score,
                    }
                })
                .collect();
            Explanation {
                stages: stages.clone(),
                items,
            }
        });
        Ok(QueryResult {
            model: self.manifest.model.clone(),
            version: self.manifest.version,
            ids,
            scores: page_scores,
            eligible,
            metadata,
            stages,
            explanation,
        })
    }

    /// The factor each demotion of the value model applies to `item`: 1 − strength × value.
    fn demotion_factors(&self, item: u32) -> BTreeMap<String, f64> {
        let demotions = self.config.value_model.as_ref().map(|v| &v.demotions);
        demotions
            .into_iter()
            .flatten()
            .map(|(col, strength)| {
                let value = self
                    .items
                    .column_by_name(col)
                    .and_then(|c| cast(c, &DataType::Float64).ok())
                    .and_then(|c| {
                        let c = c.as_any().downcast_ref::<Float64Array>()?;
                        c.is_valid(item as usize).then(|| c.value(item as usize))
                    })
                    .unwrap_or(0.0);
                (col.clone(), 1.0 - strength * value)
            })
            .collect()
    }

    /// Items ranked by a per-item score of their event times (windowed popularity, trending),
    /// computed once per version and `key`.
    fn ranked_by(
        &self,
        key: String,
        score: impl Fn(i64, &[i64]) -> f32,
    ) -> std::sync::Arc<Vec<(u32, f32)>> {
        if let Some(r) = self
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return r.clone();
        }
        let now = self.newest_event;
        let scores: Vec<f32> = (0..self.n_items() as u32)
            .map(|i| score(now, self.item_times(i)))
            .collect();
        let ranked: Vec<(u32, f32)> = top_k(&scores, scores.len())
            .into_iter()
            .map(|i| (i as u32, scores[i]))
            .collect();
        let ranked = std::sync::Arc::new(ranked);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_CACHED_ORDERS {
            windows.clear();
        }
        windows.insert(key, ranked.clone());
        ranked
    }

    /// Items ordered by `column_order(columns = 'year DESC, title')`, nulls last; computed once per
    /// spec and version.
    fn column_order(
        &self,
        call: &Call,
        text: &str,
        params: &Params,
    ) -> Result<std::sync::Arc<Vec<u32>>> {
        use datafusion::arrow::compute::{lexsort_to_indices, SortColumn, SortOptions};
        let (spec, span) = params::string_arg(call, "columns", params)?
            .ok_or_else(|| Error::Invalid("column_order needs columns = '...'".into()))?;
        if let Some(order) = self
            .orders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&spec)
        {
            return Ok(order.clone());
        }
        let schema = self.items.schema();
        let mut columns = Vec::new();
        for part in spec.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let (name, descending) = match words.as_slice() {
                [name] => (*name, false),
                [name, dir] if dir.eq_ignore_ascii_case("desc") => (*name, true),
                [name, dir] if dir.eq_ignore_ascii_case("asc") => (*name, false),
                _ => {
                    let mut e = QueryError::new(
                        ErrorKind::Check,
                        format!("`{}` is not `column [ASC|DESC]`", part.trim()),
                        span,
                    );
                    e.hint = Some("e.g. columns = 'year DESC, title'".into());
                    return Err(Error::query(e, text));
                }
            };
            let Ok(index) = schema.index_of(name) else {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let mut e = QueryError::new(
                    ErrorKind::Check,
                    format!("the items have no column `{name}`"),
                    span,
                );
                e.hint = did_you_mean(name, names).map(|s| format!("did you mean '{s}'?"));
                return Err(Error::query(e, text));
            };
            columns.push(SortColumn {
                values: self.items.column(index).clone(),
                options: Some(SortOptions {
                    descending,
                    nulls_first: false,
                }),
            });
        }
        let indices = lexsort_to_indices(&columns, None)
            .map_err(|e| Error::Invalid(format!("cannot order by {spec}: {e}")))?;
        let order = std::sync::Arc::new(indices.values().to_vec());
        let mut orders = self.orders.lock().unwrap_or_else(|e| e.into_inner());
        if orders.len() >= MAX_CACHED_ORDERS {
            orders.clear();
        }
        orders.insert(spec, order.clone());
        Ok(order)
    }

    /// The attribute rows of a page: every column for `SELECT *`, else the selected ones.
    fn page_metadata(&self, q: &Query, text: &str, page: &[Ranked]) -> Result<RecordBatch> {
        let idx = UInt32Array::from_iter_values(page.iter().map(|&(i, _)| i));
        let batch = datafusion::arrow::compute::take_record_batch(&self.items, &idx)
            .map_err(|e| Error::Internal(e.to_string()))?;
        match &q.select {
            Select::All(_) => Ok(batch),
            Select::Columns(cols) => {
                let mut keep = vec![0usize];
                for c in cols {
                    let name = &c.parts[1].name;
                    let i = batch.schema().index_of(name).map_err(|_| {
                        Error::query(
                            QueryError::new(
                                ErrorKind::Check,
                                format!("the items have no column `{name}`"),
                                c.parts[1].span,
                            ),
                            text,
                        )
                    })?;
                    keep.push(i);
                }
                batch
                    .project(&keep)
                    .map_err(|e| Error::Internal(e.to_string()))
            }
        }
    }

    /// Evaluates a filter over the whole catalog (with `seen.<k>` columns for its `seen()` calls).
    /// The mask cached under `key` for this version (with its count), computing it once.
    fn cached_mask(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<Vec<bool>>,
    ) -> Result<std::sync::Arc<(Vec<bool>, usize)>> {
        if let Some(m) = self
            .masks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Ok(m.clone());
        }
        let m = compute()?;
        let count = m.iter().filter(|x| **x).count();
        let m = std::sync::Arc::new((m, count));
        let mut masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        if masks.len() >= MAX_CACHED_MASKS {
            masks.clear();
        }
        masks.insert(key.to_string(), m.clone());
        Ok(m)
    }

    fn evaluate_mask(
        &self,
        expr: datafusion::logical_expr::Expr,
        scope: &Scope<'_>,
        text: &str,
        span: feed_lang::Span,
    ) -> Result<Vec<bool>> {
        let n = self.n_items();
        let mut columns = self.item_columns(&scope.item_columns, None);
        for (i, u) in scope.seen_users.iter().enumerate() {
            let mut seen = vec![false; n];
            if let Some(d) = self.users.get(u) {
                for &it in self.seen(d) {
                    seen[it as usize] = true;
                }
            }
            columns.push((
                format!("seen.{i}"),
                std::sync::Arc::new(BooleanArray::from(seen)) as ArrayRef,
            ));
        }
        let values = translate::evaluate(expr, &translate::batch(columns, n)?)?;
        let values = values.as_boolean_opt().ok_or_else(|| {
            Error::query(
                QueryError::new(
                    ErrorKind::Check,
                    "WHERE needs a condition (true or false)",
                    span,
                ),
                text,
            )
        })?;
        Ok((0..n)
            .map(|i| values.is_valid(i) && values.value(i))
            .collect())
    }

    /// `item.<col>` columns for the evaluation batch: the whole catalog, or the given rows.
    fn item_columns(
        &self,
        names: &std::collections::BTreeSet<String>,
        rows: Option<&UInt32Array>,
    ) -> Vec<(String, ArrayRef)> {
        names
            .iter()
            .filter_map(|name| {
                let col = self.items.column_by_name(name)?.clone();
                let col = match rows {
                    Some(r) => take(col.as_ref(), r, None).ok()?,
                    None => col,
                };
                Some((format!("item.{name}"), col))
            })
            .collect()
    }

    fn candidate_batch(
        &self,
        scope: &Scope<'_>,
        c: &Candidates,
        user: Option<u32>,
    ) -> Result<RecordBatch> {
        let rows = UInt32Array::from(c.items.clone());
        let mut columns = self.item_columns(&scope.item_columns, Some(&rows));
        for name in &scope.policies_used {
            let policy = self
                .policies
                .get(name)
                .ok_or_else(|| Error::Internal(format!("policy `{name}` is not loaded")))?;
            let mut out = vec![0f32; c.items.len()];
            // An unknown user has no personal scores: 0 for every candidate.
            if let Some(u) = user {
                policy.score_items(u, &c.items, &mut out);
            }
            columns.push((
                format!("policy.{name}"),
                std::sync::Arc::new(Float64Array::from_iter_values(
                    out.iter().map(|&v| v as f64),
                )) as ArrayRef,
            ));
        }
        for alias in &scope.retrieval_used {
            let found = c.found.iter().find(|(a, _)| a == alias).map(|(_, m)| m);
            let score: Float64Array = c
                .items
                .iter()
                .map(|i| found.and_then(|m| m.get(i)).map(|s| s.0))
                .collect();
            let rank: Float64Array = c
                .items
                .iter()
                .map(|i| found.and_then(|m| m.get(i)).map(|s| s.1 as f64))
                .collect();
            columns.push((
                format!("retrieval.{alias}"),
                std::sync::Arc::new(score) as ArrayRef,
            ));
            columns.push((
                format!("rank.{alias}"),
                std::sync::Arc::new(rank) as ArrayRef,
            ));
        }
        translate::batch(columns, c.items.len())
    }

    /// Runs the retrievers over eligible items; `at_least` widens every limit to it.
    fn retrieve(
        &self,
        calls: &[Call],
        text: &str,
        params: &Params,
        user: Option<u32>,
        eligible: Eligible<'_>,
        at_least: Option<usize>,
    ) -> Result<Candidates> {
        let mut items = Vec::new();
        let mut seen = vec![false; self.n_items()];
        let mut found = Vec::new();
        // Over a large catalog retrievers run concurrently (a vector scan and a popularity walk
        // overlap); below it the threads cost more than they save. Results merge in the order the
        // query lists them.
        let one = |call: &Call| -> Result<Vec<Ranked>> {
            let limit = match call.arg("limit") {
                Some(v) => arg_count(v, params)?,
                None => DEFAULT_RETRIEVER_LIMIT,
            };
            let limit = at_least.map_or(limit, |a| limit.max(a));
            self.retrieve_one(call, text, params, user, eligible, limit)
        };
        let lists: Vec<Result<Vec<Ranked>>> =
            if calls.len() > 1 && self.n_items() >= PARALLEL_RETRIEVAL_ITEMS {
                calls.par_iter().map(one).collect()
            } else {
                calls.iter().map(one).collect()
            };
        for (call, list) in calls.iter().zip(lists) {
            let list = list?;
            let mut map = HashMap::with_capacity(list.len());
            for (rank, &(item, score)) in list.iter().enumerate() {
                map.insert(item, (score, rank + 1));
                if !seen[item as usize] {
                    seen[item as usize] = true;
                    items.push(item);
                }
            }
            found.push((alias_of(call).to_ascii_lowercase(), map));
        }
        Ok(Candidates { items, found })
    }

    fn retrieve_one(
        &self,
        call: &Call,
        text: &str,
        params: &Params,
        user: Option<u32>,
        eligible: Eligible<'_>,
        limit: usize,
    ) -> Result<Vec<(u32, f64)>> {
        let mask = eligible.mask;
        let name = call.name.name.to_ascii_lowercase();
        let unavailable = |what: &str| {
            Error::query(
                QueryError::new(
                    ErrorKind::Check,
                    format!("{what} is not available in this version yet"),
                    call.span,
                ),
                text,
            )
        };
        match name.as_str() {
            "popular" => match window(call, text, params)? {
                // Walk the precomputed order: no scan of the catalog.
                None => Ok(self
                    .popular_order
                    .iter()
                    .filter(|&&i| mask[i as usize])
                    .take(limit)
                    .map(|&i| (i, self.popular[i as usize] as f64))
                    .collect()),
                Some(w) => {
                    let ranked = self.ranked_by(format!("popular/{w}"), |now, times| {
                        count_between(times, now.saturating_sub(w), now) as f32
                    });
                    Ok(walk(&ranked, mask, limit))
                }
            },
            "trending" => {
                // Growth of the last window over the one before, as a Poisson z-score.
                let w = window(call, text, params)?.unwrap_or(7 * 86_400);
                let ranked = self.ranked_by(format!("trending/{w}"), |now, t| {
                    let recent = count_between(t, now.saturating_sub(w), now) as f64;
                    let before = count_between(
                        t,
                        now.saturating_sub(w.saturating_mul(2)),
                        now.saturating_sub(w),
                    ) as f64;
                    ((recent - before) / (before + 1.0).sqrt()) as f32
                });
                Ok(walk(&ranked, mask, limit))
            }
            "column_order" => {
                let order = self.column_order(call, text, params)?;
                Ok(order
                    .iter()
                    .filter(|&&i| mask[i as usize])
                    .take(limit)
                    .enumerate()
                    .map(|(pos, &i)| (i, 0.0 - pos as f64))
                    .collect())
            }
            "filter" => Ok((0..self.n_items() as u32)
                .filter(|&i| mask[i as usize])
                .take(limit)
                .map(|i| (i, 0.0))
                .collect()),
            "ids" => {
                let value = call
                    .arg("ids")
                    .or_else(|| call.args.first().map(|a| &a.value))
                    .expect("checked: ids has its argument");
                let wanted = id_list(value, params)?;
                let mut out = Vec::new();
                let mut taken = std::collections::HashSet::new();
                for id in wanted {
                    if let Some(i) = self.item_index(&id) {
                        if mask[i as usize] && taken.insert(i) {
                            out.push((i, 0.0));
                        }
                    }
                }
                out.truncate(limit.max(out.len()));
                Ok(out)
            }
            "similarity" => {
                let Some(Value::Str(policy, span)) = call.arg("embedding") else {
                    return Err(Error::Invalid(
                        "similarity(embedding = ...) must name a policy".into(),
                    ));
                };
                let model = self.policies.get(policy).ok_or_else(|| {
                    let mut e = QueryError::new(
                        ErrorKind::Check,
                        format!("no policy is named `{policy}`"),
                        *span,
                    );
                    e.hint = did_you_mean(policy, self.policies.keys().map(String::as_str))
                        .map(|s| format!("did you mean '{s}'?"));
                    Error::query(e, text)
                })?;
                let vectors = model.vectors().ok_or_else(|| {
                    Error::query(
                        QueryError::new(
                            ErrorKind::Check,
                            format!("policy `{policy}` has no vectors to search"),
                            *span,
                        ),
                        text,
                    )
                })?;
                let encoder = match call.arg("encoder") {
                    Some(Value::Str(s, _)) => s.to_ascii_lowercase(),
                    _ if call.arg("item").is_some() => "item".into(),
                    _ if call.arg("items").is_some() => "items".into(),
                    _ => "user".into(),
                };
                let mean = |items: &[u32]| -> Option<Vec<f32>> {
                    if items.is_empty() {
                        return None;
                    }
                    let mut q = vec![0f32; vectors.dim];
                    for &i in items {
                        for (a, b) in q.iter_mut().zip(vectors.item(i)) {
                            *a += b / items.len() as f32;
                        }
                    }
                    Some(q)
                };
                // The user named by the call (`user = $user_id` or a literal), not any user.
                let named_user = match call.arg("user") {
                    Some(v) => id_list(v, params)?
                        .first()
                        .and_then(|id| self.users.get(id)),
                    None => user,
                };
                let query: Option<Vec<f32>> = match encoder.as_str() {
                    "user" => named_user.map(|u| vectors.user(u).to_vec()),
                    // A sequence encoder (SASRec) reads the latest items in order; other
                    // policies average the latest `HISTORY_LEN` item vectors.
                    "history" => named_user.and_then(|u| {
                        let recent = self.recent(u);
                        model
                            .encode_sequence(recent)
                            .or_else(|| mean(&recent[recent.len().saturating_sub(HISTORY_LEN)..]))
                    }),
                    "item" => {
                        let id = id_list(call.arg("item").expect("checked"), params)?;
                        let items: Vec<u32> =
                            id.iter().filter_map(|i| self.item_index(i)).collect();
                        mean(&items)
                    }
                    _ => {
                        let ids = id_list(call.arg("items").expect("checked"), params)?;
                        let items: Vec<u32> =
                            ids.iter().filter_map(|i| self.item_index(i)).collect();
                        mean(&items)
                    }
                };
                // Nothing to search from (an unknown user or item): no candidates from here.
                let Some(query) = query else {
                    return Ok(Vec::new());
                };
                // The policy's index: IVF over a large catalog, an exact scan of the eligible
                // items when that is cheaper (small catalogs, selective filters). Either way
                // `min(limit, eligible)` eligible items.
                let search = Search {
                    query: &query,
                    k: limit,
                    mask: (eligible.count < self.n_items()).then_some(mask),
                    eligible: eligible.count,
                };
                let (found, method) =
                    self.vector_index(policy)
                        .search(vectors.items, vectors.dim, search);
                tracing::debug!(?method, found = found.len(), "similarity");
                Ok(found.into_iter().map(|(i, s)| (i, s as f64)).collect())
            }
            other => Err(unavailable(&format!("the `{other}` retriever"))),
        }
    }
}

/// Catalogs from this size on run several retrievers on several threads.
const PARALLEL_RETRIEVAL_ITEMS: usize = 100_000;

/// Column orders cached per version, at most (each holds one u32 per item).
const MAX_CACHED_ORDERS: usize = 16;

/// Parsed queries cached per version, at most.
const MAX_CACHED_PLANS: usize = 1024;

/// The cache key of the mask that lets every item through (no filter).
const ALL_ITEMS_KEY: &str = "\u{0}all";

/// Cached filter masks per version, at most (a query mix with more distinct filters recomputes).
const MAX_CACHED_MASKS: usize = 256;

/// The conjuncts of a top-level AND chain.
fn split_and<'a>(e: &'a feed_lang::ast::Expr, out: &mut Vec<&'a feed_lang::ast::Expr>) {
    use feed_lang::ast::{BinaryOp, ExprKind};
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            split_and(lhs, out);
            split_and(rhs, out);
        }
        _ => out.push(e),
    }
}

/// The user id of a `NOT seen(x)` conjunct.
fn not_seen(e: &feed_lang::ast::Expr, params: &Params) -> Result<Option<String>> {
    use feed_lang::ast::{ExprKind, UnaryOp};
    let ExprKind::Unary {
        op: UnaryOp::Not,
        expr,
    } = &e.kind
    else {
        return Ok(None);
    };
    let ExprKind::Call { name, args } = &expr.kind else {
        return Ok(None);
    };
    if !name.name.eq_ignore_ascii_case("seen") || args.len() != 1 {
        return Ok(None);
    }
    Ok(match &args[0].kind {
        ExprKind::Str(s) => Some(s.clone()),
        ExprKind::Param(p) => Some(
            params
                .get(p)
                .ok_or_else(|| params::missing(p))?
                .as_id()
                .ok_or_else(|| {
                    Error::Invalid(format!("${p} must be a user id (a string) for seen()"))
                })?,
        ),
        _ => None,
    })
}

/// The first `limit` eligible items of a precomputed ranking.
fn walk(ranked: &[(u32, f32)], mask: &[bool], limit: usize) -> Vec<Ranked> {
    ranked
        .iter()
        .filter(|(i, _)| mask[*i as usize])
        .take(limit)
        .map(|&(i, s)| (i, s as f64))
        .collect()
}

/// `window = '7d'` in seconds (units s, m, h, d, w), if given.
fn window(call: &Call, text: &str, params: &Params) -> Result<Option<i64>> {
    let Some((value, span)) = params::string_arg(call, "window", params)? else {
        return Ok(None);
    };
    let units = [
        ('s', 1i64),
        ('m', 60),
        ('h', 3_600),
        ('d', 86_400),
        ('w', 7 * 86_400),
    ];
    let parsed = units.iter().find_map(|&(u, secs)| {
        let n: f64 = value.strip_suffix(u)?.trim().parse().ok()?;
        // At most ten years: windows are about recency.
        (n > 0.0 && n.is_finite() && n * (secs as f64) <= 10.0 * 365.0 * 86_400.0)
            .then_some((n * secs as f64) as i64)
    });
    match parsed {
        Some(w) => Ok(Some(w)),
        _ => {
            let mut e = QueryError::new(
                ErrorKind::Check,
                format!("`{value}` is not a time window"),
                span,
            );
            e.hint = Some("write a number and a unit: '30m', '24h', '7d', '2w'".into());
            Err(Error::query(e, text))
        }
    }
}

/// How many of the sorted `times` fall in `(from, to]`.
fn count_between(times: &[i64], from: i64, to: i64) -> usize {
    times.partition_point(|&t| t <= to) - times.partition_point(|&t| t <= from)
}

fn default_retriever() -> Call {
    feed_lang::parse("SELECT * FROM popular(limit = 100)")
        .expect("the default retriever parses")
        .from
        .remove(0)
}

fn value_model_path() -> feed_lang::ast::Expr {
    feed_lang::parse_expression("value_model").expect("parses")
}

fn count(c: Option<&Count>, params: &Params) -> Result<Option<usize>> {
    Ok(match c {
        None => None,
        Some(Count::Literal(n, _)) => Some(*n as usize),
        Some(Count::Param(p)) => match params.get(&p.name) {
            Some(ParamValue::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as usize),
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "${} must be a whole number, got {}",
                    p.name,
                    other.kind()
                )))
            }
            None => return Err(params::missing(&p.name)),
        },
    })
}

fn arg_count(v: &Value, params: &Params) -> Result<usize> {
    match v {
        Value::Num(n, _) => Ok(*n as usize),
        Value::Param(p) => match params.get(&p.name) {
            Some(ParamValue::Num(n)) if *n >= 0.0 && n.fract() == 0.0 => Ok(*n as usize),
            Some(other) => Err(Error::Invalid(format!(
                "${} must be a whole number, got {}",
                p.name,
                other.kind()
            ))),
            None => Err(params::missing(&p.name)),
        },
        _ => Err(Error::Invalid("limit must be a whole number".into())),
    }
}

/// Ids from a literal, a literal list, or a parameter holding either.
fn id_list(v: &Value, params: &Params) -> Result<Vec<String>> {
    let from_param = |p: &ParamValue, name: &str| -> Result<Vec<String>> {
        match p {
            ParamValue::List(items) => items
                .iter()
                .map(|i| {
                    i.as_id()
                        .ok_or_else(|| Error::Invalid(format!("${name} must hold ids (strings)")))
                })
                .collect(),
            other => other
                .as_id()
                .map(|s| vec![s])
                .ok_or_else(|| Error::Invalid(format!("${name} must be an id or a list of ids"))),
        }
    };
    match v {
        Value::Str(s, _) => Ok(vec![s.clone()]),
        Value::Num(n, _) => Ok(vec![format!("{}", *n as i64)]),
        Value::List(items, _) => items
            .iter()
            .map(|i| id_list(i, params).map(|v| v.into_iter().next().unwrap_or_default()))
            .collect(),
        Value::Param(p) => {
            let value = params
                .get(&p.name)
                .ok_or_else(|| params::missing(&p.name))?;
            from_param(value, &p.name)
        }
        _ => Err(Error::Invalid("expected ids".into())),
    }
}
