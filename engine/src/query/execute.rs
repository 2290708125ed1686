//! The pipeline over a bound plan: filter mask → retrieve (prefiltered, exact, widened when
//! short) → score → reorder → cut, with stage timings and `explain`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{RecordBatch, UInt32Array};
use rayon::prelude::*;

use super::args::Arg;
use super::bind;
use super::explain::{self, Explanation, StageReport};
use super::filter;
use super::pages::Pages;
use super::plan::Plan;
use super::rerank::RerankContext;
use super::score;
use super::token::{self, PageToken};
use super::{Candidates, Eligible, Ranked, Request};
use crate::error::{did_you_mean, Error, Result};
use crate::expr::{self, ParamValue, Params, Values};
use crate::serving::{Snapshot, UserState};

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
    /// Continue from the page that returned this `next_page_token` (instead of `offset`):
    /// stateless, so any replica can serve it.
    pub page_token: Option<String>,
    pub with_metadata: bool,
    /// Report per stage and per item how the page came about.
    pub explain: bool,
    /// Report per item the numbers its score read (for impressions: what the ranker learns
    /// from, as served).
    pub features: bool,
}

#[derive(Debug, Clone)]
pub struct QueryResult {
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f64>,
    /// Items that satisfy the filter, in the whole catalog.
    pub eligible: usize,
    /// Items of earlier pages before this one (the request's or the query's OFFSET).
    pub offset: usize,
    /// What the next page's request sends back as `page_token`; `None` after a page shorter
    /// than the limit (the last), or after a page found by `offset` (whose earlier pages are
    /// unknown).
    pub next_page_token: Option<String>,
    pub metadata: Option<RecordBatch>,
    /// Per stage: items in and out, time spent (always reported; cheap).
    pub stages: Vec<StageReport>,
    pub explanation: Option<Explanation>,
    /// With `features`: per page item, the values its score read by column (`policy.als`,
    /// `item.year`, `value_model`, `recent.0`) and its retrievers' scores and ranks
    /// (`retrieval.pop`, `rank.pop`).
    pub features: Option<Vec<std::collections::BTreeMap<String, f64>>>,
}

/// The default page size.
const DEFAULT_LIMIT: usize = 10;

/// Catalogs from this size on run several retrievers on several threads.
const PARALLEL_RETRIEVAL_ITEMS: usize = 100_000;

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

impl Snapshot {
    /// Runs a FeedQL query.
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn query(&self, req: &QueryRequest) -> Result<QueryResult> {
        self.query_with(req, None, self.user_state())
    }

    /// Runs a FeedQL query whose later pages continue the ranking of its first page (within
    /// `serving.page_ttl_seconds`), as remembered in `pages`.
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn query_paged(&self, req: &QueryRequest, pages: &Pages) -> Result<QueryResult> {
        self.query_with(req, Some(pages), self.user_state())
    }

    /// [`Self::query_paged`] with `users` for this version's own user state: live events
    /// layered over it (`live::LiveUsers::over`).
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn query_live(
        &self,
        req: &QueryRequest,
        pages: Option<&Pages>,
        users: &dyn UserState,
    ) -> Result<QueryResult> {
        self.query_with(req, pages, users)
    }

    /// The bound plan of `text` in this version, bound once and cached.
    pub fn plan(&self, text: &str) -> Result<Arc<Plan>> {
        let plan = self.caches.plans.get_or_try_insert(text, || {
            let options = feed_lang::CheckOptions {
                max_limit: self.config.serving.max_limit as u64,
                ..Default::default()
            };
            let q = feed_lang::parse_with(text, &options).map_err(|e| Error::query(e, text))?;
            let mut plan = bind::bind(&q, text, &self.names).map_err(|e| Error::query(e, text))?;
            // `score(value_model)` reads what the version's value model reads.
            if let Some(order) = plan.order.as_mut().filter(|o| o.needs.value_model) {
                order.needs.merge(self.value.needs());
                for (k, v) in &self.value.needs().params {
                    plan.params
                        .entry(k.clone())
                        .or_default()
                        .extend(v.iter().cloned());
                }
            }
            Ok(Arc::new(plan) as Arc<dyn std::any::Any + Send + Sync>)
        })?;
        plan.downcast::<Plan>()
            .map_err(|_| Error::Internal("the plan cache holds something else".into()))
    }

    fn query_with(
        &self,
        req: &QueryRequest,
        pages: Option<&Pages>,
        users: &dyn UserState,
    ) -> Result<QueryResult> {
        expr::check_params(&req.params)?;
        let (text, defaults) = match (&req.text, &req.saved) {
            (Some(t), None) => (t.as_str(), None),
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
                (saved.text.as_str(), Some(&saved.defaults))
            }
            _ => {
                return Err(Error::invalid(
                    "query",
                    "give either a query text or the name of a saved query",
                ))
            }
        };
        let plan = self.plan(text)?;
        // A saved query's parameter defaults, overridden by the request's own values.
        let params = match defaults {
            Some(defaults) if !defaults.is_empty() => {
                let mut p = req.params.clone();
                for (k, v) in defaults {
                    p.entry(k.clone()).or_insert_with(|| expr::from_default(v));
                }
                Cow::Owned(p)
            }
            _ => Cow::Borrowed(&req.params),
        };
        run(self, &plan, req, &params, pages, users)
    }
}

pub(crate) fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs a bound plan for one request.
pub(crate) fn run(
    snapshot: &Snapshot,
    plan: &Plan,
    req: &QueryRequest,
    params: &Params,
    pages: Option<&Pages>,
    users: &dyn UserState,
) -> Result<QueryResult> {
    // A LIMIT or OFFSET the request overrides needs no parameter value.
    expr::check_uses(&plan.params, params, |u| {
        (u.what == bind::LIMIT_USE && req.limit.is_some())
            || (u.what == bind::OFFSET_USE && req.offset.is_some())
    })?;
    let limit = match (req.limit, &plan.limit) {
        (Some(l), _) => l,
        (None, Some(l)) => l.get(params)?,
        (None, None) => DEFAULT_LIMIT,
    };
    let max_offset = feed_lang::CheckOptions::default().max_offset as usize;
    let fingerprint = token::fingerprint(&snapshot.manifest.model, &plan.text, params);
    let token = match &req.page_token {
        None => None,
        Some(_) if req.offset.is_some() => {
            return Err(Error::invalid(
                "page_token",
                "give either `offset` or `page_token`, not both",
            ))
        }
        Some(text) => {
            let t = PageToken::decode(text, max_offset)?;
            if t.fingerprint != fingerprint {
                return Err(Error::invalid(
                    "page_token",
                    "belongs to another model, query or parameter values",
                )
                .with_hint("send it with the request whose response gave it, or leave it out for the first page"));
            }
            Some(t)
        }
    };
    let offset = match (&token, req.offset, &plan.offset) {
        (Some(t), _, _) => t.offset,
        (None, Some(o), _) => o,
        (None, None, Some(o)) => o.get(params)?,
        (None, None, None) => 0,
    };
    let max = snapshot.config.serving.max_limit;
    if limit == 0 || limit > max {
        return Err(Error::invalid(
            "limit",
            format!("limit must be between 1 and {max} (serving.max_limit), got {limit}"),
        ));
    }
    if offset > max_offset {
        return Err(Error::invalid(
            "offset",
            format!("offset must be at most {max_offset}, got {offset}"),
        ));
    }
    let need = limit + offset;
    let user = params
        .get("user_id")
        .and_then(ParamValue::as_id)
        .and_then(|id| users.user(&id));
    let request = Request {
        snapshot,
        users,
        params,
        user,
        text: &plan.text,
        scoring: Default::default(),
    };
    let user_value = |col: &str| {
        let u = request.user.as_ref()?.dense?;
        snapshot.users.attribute(u, col)
    };
    let no_types = Default::default();
    let user_types = plan
        .filter
        .rest
        .as_ref()
        .map(|r| &r.needs.user_columns)
        .unwrap_or(&no_types);
    let score_types = plan
        .order
        .as_ref()
        .map(|o| &o.needs.user_columns)
        .unwrap_or(&no_types);
    let now = now_seconds();
    let filter_values = Values {
        params,
        user: &user_value,
        user_types,
        now_seconds: now,
    };
    let score_values = Values {
        user_types: score_types,
        ..filter_values
    };

    let mut clock = Clock::start();
    let mut stages: Vec<StageReport> = Vec::new();
    let n = snapshot.n_items();

    // Filter: a mask over the whole catalog.
    let mask = filter::evaluate(&request, &plan.filter, &filter_values)?;
    let eligible = mask.eligible();
    stages.push(StageReport {
        stage: "filter",
        input: n,
        output: eligible.count,
        micros: clock.lap(),
    });

    // Retrieve: every retriever searches eligible items only; widen if the page needs more.
    let mut candidates = gather(&request, plan, eligible, None)?;
    let wanted = need.min(eligible.count);
    if candidates.items.len() < wanted {
        candidates = gather(&request, plan, eligible, Some(need))?;
    }
    if let Some(rest) = &plan.filter.rest {
        let mut cut: Option<usize> = None;
        for t in &rest.needs.truncate {
            let t = t.get(params)?;
            cut = Some(cut.map_or(t, |c| c.min(t)));
        }
        if let Some(t) = cut {
            candidates.items.truncate(t.max(wanted));
        }
    }
    // Retrievers that cannot widen (an unknown user's similarity, a short id list): fill from
    // the eligible items by popularity, exactly, so the page is as long as it can be.
    if candidates.items.len() < wanted && plan.sources.iter().any(|s| s.retriever.tops_up()) {
        top_up(&request, &mut candidates, eligible, wanted);
    }
    stages.push(StageReport {
        stage: "retrieve",
        input: eligible.count,
        output: candidates.items.len(),
        micros: clock.lap(),
    });

    // Score.
    let scored = score::score(&request, plan.order.as_ref(), &candidates, &score_values)?;
    stages.push(StageReport {
        stage: "score",
        input: candidates.items.len(),
        output: scored.order.len(),
        micros: clock.lap(),
    });
    let before: Vec<Ranked> = scored
        .order
        .iter()
        .map(|&i| (candidates.items[i], scored.scores[i]))
        .collect();

    // Reorder.
    let mut ctx = RerankContext {
        req: &request,
        eligible,
        need,
        explored: Default::default(),
    };
    let mut ranked = before.clone();
    for r in &plan.rerankers {
        ranked = r.rerank(ranked, &mut ctx)?;
    }
    stages.push(StageReport {
        stage: "reorder",
        input: before.len(),
        output: ranked.len(),
        micros: clock.lap(),
    });

    // Cut.
    let page: Vec<Ranked> = match (&token, pages) {
        // Stateless: the ranking now, without what earlier pages served.
        (Some(t), _) => ranked
            .into_iter()
            .filter(|&(i, _)| !t.served(snapshot.catalog.id(i)))
            .take(limit)
            .collect(),
        (None, Some(pages)) if !req.explain => {
            // Ids are made only for the items the page reads, not one per candidate.
            let fresh = ranked
                .iter()
                .map(|&(i, s)| (snapshot.catalog.id(i).to_string(), s));
            let key = format!(
                "{}\u{0}{}\u{0}{params:?}",
                snapshot.manifest.model, plan.text
            );
            let ttl = std::time::Duration::from_secs(snapshot.config.serving.page_ttl_seconds);
            // Remembered items that stopped passing the filter (e.g. seen since) are skipped.
            let keep = |id: &str| {
                snapshot
                    .catalog
                    .dense(id)
                    .is_some_and(|i| eligible.mask[i as usize])
            };
            pages
                .page(&key, ttl, fresh, offset, limit, keep)
                .into_iter()
                .filter_map(|(id, s)| snapshot.catalog.dense(&id).map(|i| (i, s)))
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
    let ids: Vec<String> = page
        .iter()
        .map(|&(i, _)| snapshot.catalog.id(i).to_string())
        .collect();
    // A page found by a token or as a first page can be continued by token; one found by an
    // offset cannot (its earlier pages are unknown here).
    let continued = match token {
        Some(t) => Some(t),
        None if offset == 0 => Some(PageToken::first(fingerprint)),
        None => None,
    };
    let next_page_token = continued
        .map(|t| t.after(ids.iter().map(String::as_str)))
        // A full page may have more after it (even when served items have since left the eligible
        // set, so that counts say nothing); a short one is the last.
        .filter(|next| ids.len() == limit && next.offset <= max_offset)
        .map(|next| next.encode());
    let page_scores = page.iter().map(|&(_, s)| s).collect();
    let metadata = if req.with_metadata {
        Some(page_metadata(snapshot, plan.select.as_deref(), &page)?)
    } else {
        None
    };
    let run = explain::Run {
        req: &request,
        order: plan.order.as_ref(),
        candidates: &candidates,
        scored: &scored,
        before: &before,
        explored: &ctx.explored,
    };
    let explanation = req
        .explain
        .then(|| explain::explain(&run, &page, stages.clone()));
    let features = req.features.then(|| explain::features(&run, &page));
    Ok(QueryResult {
        model: snapshot.manifest.model.clone(),
        version: snapshot.manifest.version,
        ids,
        scores: page_scores,
        eligible: eligible.count,
        offset,
        next_page_token,
        metadata,
        stages,
        explanation,
        features,
    })
}

/// Runs the retrievers over eligible items; `at_least` widens every limit to it. Over a large
/// catalog they run concurrently (a vector scan and a popularity walk overlap); below it the
/// threads cost more than they save. Results merge in the order the query lists them.
fn gather(
    req: &Request<'_>,
    plan: &Plan,
    eligible: Eligible<'_>,
    at_least: Option<usize>,
) -> Result<Candidates> {
    let one = |s: &super::plan::Source| -> Result<Vec<Ranked>> {
        let limit = s.limit.get(req.params)?;
        if let (Arg::Param(p), true) = (&s.limit, limit > bind::MAX_RETRIEVER_LIMIT) {
            return Err(Error::invalid(
                format!("${p}"),
                format!(
                    "${p} asks a retriever for {limit} candidates; it finds at most {}",
                    bind::MAX_RETRIEVER_LIMIT
                ),
            ));
        }
        // No retriever can find more items than the catalog holds.
        let limit = at_least
            .map_or(limit, |a| limit.max(a))
            .min(req.snapshot.n_items());
        s.retriever.retrieve(req, eligible, limit)
    };
    let lists: Vec<Result<Vec<Ranked>>> =
        if plan.sources.len() > 1 && req.snapshot.n_items() >= PARALLEL_RETRIEVAL_ITEMS {
            plan.sources.par_iter().map(one).collect()
        } else {
            plan.sources.iter().map(one).collect()
        };
    let mut items = Vec::new();
    let mut taken = vec![false; req.snapshot.n_items()];
    let mut found = Vec::with_capacity(lists.len());
    for (source, list) in plan.sources.iter().zip(lists) {
        let list = list?;
        let mut map = HashMap::with_capacity(list.len());
        for (rank, &(item, score)) in list.iter().enumerate() {
            map.insert(item, (score, rank + 1));
            if !taken[item as usize] {
                taken[item as usize] = true;
                items.push(item);
            }
        }
        found.push((source.alias.clone(), map));
    }
    Ok(Candidates { items, found })
}

/// Tops the candidates up to `wanted` with eligible items by popularity (found by `fallback`).
fn top_up(req: &Request<'_>, candidates: &mut Candidates, eligible: Eligible<'_>, wanted: usize) {
    let catalog = &req.snapshot.catalog;
    let mut present: std::collections::HashSet<u32> = candidates.items.iter().copied().collect();
    let mut found = HashMap::new();
    for &i in &catalog.popular_order {
        if candidates.items.len() >= wanted {
            break;
        }
        if eligible.mask[i as usize] && present.insert(i) {
            candidates.items.push(i);
            found.insert(i, (catalog.popular[i as usize] as f64, found.len() + 1));
        }
    }
    candidates.found.push(("fallback".to_string(), found));
}

/// The attribute rows of a page: every column for `SELECT *`, else `item_id` and the selected
/// ones.
fn page_metadata(
    snapshot: &Snapshot,
    select: Option<&[String]>,
    page: &[Ranked],
) -> Result<RecordBatch> {
    let idx = UInt32Array::from_iter_values(page.iter().map(|&(i, _)| i));
    let batch = datafusion::arrow::compute::take_record_batch(&snapshot.catalog.table, &idx)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let Some(columns) = select else {
        return Ok(batch);
    };
    let mut keep = vec![0usize];
    for name in columns {
        keep.push(batch.schema().index_of(name).map_err(|_| {
            Error::Internal(format!("bound column `{name}` is not in the catalog"))
        })?);
    }
    batch
        .project(&keep)
        .map_err(|e| Error::Internal(e.to_string()))
}
