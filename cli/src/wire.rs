//! The JSON shapes of the HTTP API and of `--json` output: types of our own, built from engine
//! views, never serialised from storage structs, so a change of what is stored cannot change the
//! API by accident. `spec/openapi.json` is generated from these types (`server/openapi.rs`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `GET /healthz`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

/// `POST /models/{name}/rank`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RankBody {
    pub user_id: String,
    /// Items to return (at most `serving.max_limit`).
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Add each item's attributes.
    #[serde(default)]
    pub return_metadata: bool,
}

fn default_limit() -> usize {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RankResponse {
    /// This page's id: events that name it (`request_id`) join to its impressions.
    pub request_id: String,
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f32>,
    /// `"popular"` when the user is unknown and the answer is the popular fallback; `"history"`
    /// when the version never trained on the user and the answer comes from their live
    /// interactions (the primary policy's vectors searched from their history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Each item's attributes, in ranking order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<serde_json::Value>>,
    /// The experiment variant that answered; absent when no experiment split the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<Assignment>,
}

/// A request's place in an experiment (`serving.experiments`): the same for a user on every
/// request and every server.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Assignment {
    pub experiment: String,
    pub variant: String,
}

impl Assignment {
    pub fn of(variant: &Option<(String, String)>) -> Option<Self> {
        variant.as_ref().map(|(e, v)| Assignment {
            experiment: e.clone(),
            variant: v.clone(),
        })
    }
}

/// The answer to `POST /models/{name}/events`: given once every accepted event is on disk.
#[derive(Debug, Serialize, JsonSchema)]
pub struct EventsResponse {
    /// Events in the batch.
    pub received: usize,
    /// Events written.
    pub accepted: usize,
    /// Events whose `event_id` was already accepted: counted, not written again.
    pub duplicates: usize,
}

/// The answer to `POST /models/{name}/items`: given once the changes are on disk and applied
/// (the next query filters on the new values).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemsResponse {
    /// Changes in the batch.
    pub received: usize,
    /// Changes that set values on an item the catalog has.
    pub updated: usize,
    /// Changes that set values on an item the catalog lacked: it is added.
    pub added: usize,
    /// Deletions.
    pub deleted: usize,
}

/// `POST /query` and `POST /models/{name}/query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBody {
    /// The model (for `POST /query`; the path names it otherwise).
    #[serde(default)]
    pub model: Option<String>,
    /// FeedQL text, or `saved`: the name of a query of the model file.
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub saved: Option<String>,
    /// Values of the query's `$parameters`: strings, numbers, booleans or flat lists of them.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Overrides the query's LIMIT.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Overrides the query's OFFSET.
    #[serde(default)]
    pub offset: Option<usize>,
    /// The previous response's `next_page_token`, for the page after it (instead of
    /// `offset`). Any replica serving the model can answer it.
    #[serde(default)]
    pub page_token: Option<String>,
    #[serde(default)]
    pub return_metadata: bool,
    /// Report per stage and per item how the page came about.
    #[serde(default)]
    pub explain: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryResponse {
    /// This page's id: events that name it (`request_id`) join to its impressions.
    pub request_id: String,
    pub model: String,
    pub version: u32,
    /// Items in the whole catalog that satisfy the filter.
    pub eligible: usize,
    pub results: Vec<QueryItem>,
    /// Send it back as `page_token` for the next page; absent after a page shorter than the
    /// limit (the last), and after a page asked for by `offset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// The experiment variant that answered; absent when no experiment split the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<Assignment>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryItem {
    pub id: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// How a page came about: per stage, then per item.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Explanation {
    pub stages: Vec<StageReport>,
    pub items: Vec<ItemExplanation>,
}

/// One stage of the pipeline: items in and out, microseconds spent.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StageReport {
    /// `filter`, `retrieve`, `score`, `reorder` or `limit`.
    pub stage: String,
    pub input: usize,
    pub output: usize,
    pub micros: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ItemExplanation {
    pub id: String,
    /// The retrievers that found the item (`fallback`: the popularity top-up).
    pub found_by: Vec<FoundBy>,
    /// Brought in by an exploration reranker.
    pub explored: bool,
    /// Each policy output the score read, by name (`als`, `ranker.like`).
    pub policy_scores: BTreeMap<String, f64>,
    /// For `score(value_model)`: each term's contribution, weight × output.
    pub value_model: BTreeMap<String, f64>,
    /// For `score(value_model)`: each demotion's factor, 1 − strength × item.column.
    pub demotions: BTreeMap<String, f64>,
    /// The item's 1-based position before the reorder stage, and its score there.
    pub position_before_reorder: Option<usize>,
    pub score_before_reorder: Option<f64>,
    pub score: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FoundBy {
    pub retriever: String,
    pub score: f64,
    /// 1-based rank in that retriever's list.
    pub rank: usize,
}

impl From<&feed_engine::query::Explanation> for Explanation {
    fn from(e: &feed_engine::query::Explanation) -> Self {
        Self {
            stages: e
                .stages
                .iter()
                .map(|s| StageReport {
                    stage: s.stage.to_string(),
                    input: s.input,
                    output: s.output,
                    micros: s.micros,
                })
                .collect(),
            items: e
                .items
                .iter()
                .map(|i| ItemExplanation {
                    id: i.id.clone(),
                    found_by: i
                        .found_by
                        .iter()
                        .map(|f| FoundBy {
                            retriever: f.retriever.clone(),
                            score: f.score,
                            rank: f.rank,
                        })
                        .collect(),
                    explored: i.explored,
                    policy_scores: i.policy_scores.clone(),
                    value_model: i.value_model.clone(),
                    demotions: i.demotions.clone(),
                    position_before_reorder: i.position_before_reorder,
                    score_before_reorder: i.score_before_reorder,
                    score: i.score,
                })
                .collect(),
        }
    }
}

/// `GET /models`: one per model.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelSummary {
    pub name: String,
    pub active_version: Option<u32>,
    pub latest_version: Option<u32>,
    pub latest_status: Option<String>,
}

/// `list-models --json`: one per model.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelListing {
    pub name: String,
    /// `ACTIVE`, `ACTIVE (v3 TRAINING)`, or the newest version's status.
    pub status: String,
    pub active_version: Option<u32>,
    pub latest_version: Option<u32>,
    /// When the ACTIVE version was deployed (`YYYY-MM-DD HH:MM:SS`, UTC).
    pub trained_at: Option<String>,
    /// The primary policy's test NDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg: Option<f64>,
}

/// A version of a model: `view-model --json` and `GET /models/{name}` show the same shape.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Version {
    pub version: u32,
    /// SCHEDULING, FETCHING, TRAINING, DEPLOYING, ACTIVE, INACTIVE or ERROR.
    pub status: String,
    /// Why it is in ERROR, or what it is doing now.
    pub message: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<&feed_engine::VersionInfo> for Version {
    fn from(v: &feed_engine::VersionInfo) -> Self {
        Self {
            version: v.version,
            status: v.status.to_string(),
            message: v.message.clone(),
            created_at: v.created_at,
            updated_at: v.updated_at,
        }
    }
}

/// `GET /models/{name}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelView {
    pub name: String,
    pub active_version: Option<u32>,
    /// The policy `rank` uses when the value model has no weights.
    pub primary_policy: Option<String>,
    pub versions: Vec<Version>,
    /// The evaluation of the ACTIVE version.
    pub metrics: Option<Evaluation>,
}

/// `view-model --json`: a model, and one version in detail.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelDetail {
    pub name: String,
    pub active_version: Option<u32>,
    pub versions: Vec<Version>,
    /// The version detailed below.
    pub version: u32,
    pub status: String,
    pub message: String,
    /// Its status log, oldest first.
    pub log: Vec<LogLine>,
    pub primary_policy: Option<String>,
    pub vector_indexes: Option<BTreeMap<String, VectorIndex>>,
    pub metrics: Option<Evaluation>,
    /// The version's experiments (`serving.experiments`).
    pub experiments: Vec<ExperimentView>,
    /// The shadow version and how its answers compare with ACTIVE's, over every server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowReport>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ExperimentView {
    pub name: String,
    /// Saved queries and `rank`; empty: every request.
    pub applies_to: Vec<String>,
    pub variants: Vec<VariantView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VariantView {
    pub name: String,
    /// Percent of users.
    pub share: f64,
    /// `control`, `version N`, `value model` or `query <name>`.
    pub answers: String,
}

impl From<&feed_engine::config::experiments::Experiment> for ExperimentView {
    fn from(e: &feed_engine::config::experiments::Experiment) -> Self {
        use feed_engine::config::experiments::Arm;
        Self {
            name: e.name.clone(),
            applies_to: e.applies_to.clone(),
            variants: e
                .variants
                .iter()
                .map(|v| VariantView {
                    name: v.name.clone(),
                    share: v.share,
                    answers: match &v.arm {
                        Arm::Control => "control".into(),
                        Arm::Version(n) => format!("version {n}"),
                        Arm::ValueModel(_) => "value model".into(),
                        Arm::Query(q) => format!("query {q}"),
                    },
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ShadowReport {
    pub version: u32,
    /// Whether `SHADOW` names it now (servers score requests with it).
    pub active: bool,
    pub since: Option<DateTime<Utc>>,
    /// The ACTIVE version it was last compared with.
    pub against: Option<u32>,
    /// Requests answered by both.
    pub compared: u64,
    /// Mean overlap@k of the shadow's page with ACTIVE's.
    pub overlap: Option<f64>,
    /// Mean Spearman correlation of the shared items' ranks.
    pub rank_correlation: Option<f64>,
    /// Latency bucket bounds (seconds) under which half and 99% of the requests fell.
    pub active_p50_seconds: Option<f64>,
    pub active_p99_seconds: Option<f64>,
    pub shadow_p50_seconds: Option<f64>,
    pub shadow_p99_seconds: Option<f64>,
    pub errors: u64,
    pub skipped: u64,
}

impl From<&crate::detail::Shadow> for ShadowReport {
    fn from(s: &crate::detail::Shadow) -> Self {
        use feed_engine::registry::ShadowStats;
        let st = s.stats.clone().unwrap_or_default();
        let q = |c: &[u64], p| ShadowStats::quantile(c, p);
        Self {
            version: s.version,
            active: s.pointer.is_some(),
            since: s.pointer.as_ref().map(|p| p.since),
            against: s.stats.as_ref().map(|x| x.against),
            compared: st.compared,
            overlap: st.mean_overlap(),
            rank_correlation: st.mean_correlation(),
            active_p50_seconds: q(&st.active_latency, 0.5),
            active_p99_seconds: q(&st.active_latency, 0.99),
            shadow_p50_seconds: q(&st.shadow_latency, 0.5),
            shadow_p99_seconds: q(&st.shadow_latency, 0.99),
            errors: st.errors,
            skipped: st.skipped,
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogLine {
    pub ts: DateTime<Utc>,
    pub status: String,
    pub message: String,
}

impl From<&feed_engine::registry::LogEntry> for LogLine {
    fn from(e: &feed_engine::registry::LogEntry) -> Self {
        Self {
            ts: e.ts,
            status: e.status.to_string(),
            message: e.message.clone(),
        }
    }
}

/// A line of a version's status log, as `GET /models/{name}/status` streams it (event
/// `status`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusLine {
    pub version: u32,
    pub ts: DateTime<Utc>,
    pub status: String,
    pub message: String,
}

impl StatusLine {
    pub fn new(version: u32, e: &feed_engine::registry::LogEntry) -> Self {
        Self {
            version,
            ts: e.ts,
            status: e.status.to_string(),
            message: e.message.clone(),
        }
    }
}

/// The end of a followed version (event `end`): the status it ended in and why.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StatusEnd {
    pub version: u32,
    pub status: String,
    pub message: String,
}

impl From<&feed_engine::VersionInfo> for StatusEnd {
    fn from(v: &feed_engine::VersionInfo) -> Self {
        Self {
            version: v.version,
            status: v.status.to_string(),
            message: v.message.clone(),
        }
    }
}

/// An API key as `feedctl keys list --json` shows it: never the key.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Requests per second; `null`: no limit.
    pub rate_limit: Option<f64>,
}

impl From<&feed_engine::registry::ApiKey> for KeyInfo {
    fn from(k: &feed_engine::registry::ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            scope: k.scope.to_string(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            rate_limit: k.rate_limit,
        }
    }
}

/// How one policy's item vectors are indexed.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VectorIndex {
    /// `exact` or `ivf_sq8`.
    pub kind: String,
    pub dim: usize,
    pub partitions: usize,
    /// Partitions probed for k = 10, 100, 1000.
    pub probes: Vec<usize>,
    /// Mean recall against exact search that tuning measured at those probes.
    pub tuned_recall: Vec<f32>,
    pub build_seconds: f64,
    /// Bytes the index holds in memory besides the vectors.
    pub index_bytes: usize,
    pub vector_bytes: usize,
}

impl From<&feed_engine::serving::artifacts::IndexInfo> for VectorIndex {
    fn from(i: &feed_engine::serving::artifacts::IndexInfo) -> Self {
        Self {
            kind: i.kind.clone(),
            dim: i.dim,
            partitions: i.partitions,
            probes: i.probes.clone(),
            tuned_recall: i.tuned_recall.clone(),
            build_seconds: i.build_seconds,
            index_bytes: i.index_bytes,
            vector_bytes: i.vector_bytes,
        }
    }
}

/// A version's offline evaluation: every policy, and popularity as the reference.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Evaluation {
    /// How the numbers were made, in words.
    pub protocol: String,
    pub users: usize,
    pub items: usize,
    pub events: usize,
    pub reference: PolicyEvaluation,
    pub policies: BTreeMap<String, PolicyEvaluation>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PolicyEvaluation {
    #[serde(rename = "type")]
    pub kind: String,
    /// Predicting each user's last event from everything before it.
    pub test: Metrics,
    /// Predicting the second-to-last event (what early stopping and selection use).
    pub valid: Metrics,
    pub train_seconds: f64,
    /// Epochs, device and time per epoch of a neural policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
    /// Training memory: the estimate the run was admitted with against `training.memory_limit`,
    /// and the measured peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// A ranker's heads on held-out impressions (its `test` and `valid` ranking figures are
    /// then zero: a ranker does not retrieve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranker: Option<RankerEvaluation>,
    /// Its `tuning:` search: every trial's settings and validation figure, and the one kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
}

/// A policy's hyper-parameter search.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Tuning {
    /// `ndcg@10`, `hr@10` or `mrr@10`, on the validation cut.
    pub metric: String,
    /// `grid` or `random`.
    pub method: String,
    /// The index in `trials` of the one whose settings trained the version.
    pub best: usize,
    pub trials: Vec<Trial>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Trial {
    pub settings: BTreeMap<String, serde_json::Value>,
    pub valid: f64,
    pub seconds: f64,
}

impl From<&feed_engine::eval::TuningReport> for Tuning {
    fn from(t: &feed_engine::eval::TuningReport) -> Self {
        Self {
            metric: t.metric.clone(),
            method: t.method.clone(),
            best: t.best,
            trials: t
                .trials
                .iter()
                .map(|x| Trial {
                    settings: x.settings.clone(),
                    valid: x.valid,
                    seconds: x.seconds,
                })
                .collect(),
        }
    }
}

/// A ranker's impressions split by time, and each head's figures.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RankerEvaluation {
    pub protocol: String,
    pub train_rows: usize,
    pub valid_rows: usize,
    pub test_rows: usize,
    /// Where validation and test start (seconds since the epoch).
    pub valid_from: i64,
    pub test_from: i64,
    pub heads: Vec<HeadEvaluation>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HeadEvaluation {
    pub head: String,
    /// The calibration map fitted on validation: `isotonic`, `platt` or `none`.
    pub calibration: String,
    /// On test, calibrated (as served).
    pub test: HeadFigures,
    /// On test, the network's own probabilities: the calibration's effect.
    pub test_uncalibrated: HeadFigures,
    pub valid: HeadFigures,
    /// The same test impressions scored by a logistic regression on the item's popularity and
    /// the retrieval scores the ranker reads: what the network earns over the obvious model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<HeadBaseline>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HeadBaseline {
    /// Its inputs, in words (`log popularity`, `als`).
    pub inputs: Vec<String>,
    pub test: HeadFigures,
}

/// One head's figures on a set of impressions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HeadFigures {
    pub rows: usize,
    pub base_rate: f64,
    pub auc: f64,
    pub log_loss: f64,
    /// Log loss over the entropy of the base rate (1 = no better than the base rate).
    pub normalized_entropy: f64,
    /// Expected calibration error over 10 equal-mass bins.
    pub ece: f64,
    pub predicted_over_observed: f64,
    /// Per bin: mean prediction, observed rate, rows (a reliability diagram's points).
    pub reliability: Vec<[f64; 3]>,
}

impl From<&feed_engine::eval::HeadMetrics> for HeadFigures {
    fn from(m: &feed_engine::eval::HeadMetrics) -> Self {
        Self {
            rows: m.rows,
            base_rate: m.base_rate,
            auc: m.auc,
            log_loss: m.log_loss,
            normalized_entropy: m.normalized_entropy,
            ece: m.ece,
            predicted_over_observed: m.predicted_over_observed,
            reliability: m.reliability.clone(),
        }
    }
}

impl From<&feed_engine::eval::RankerReport> for RankerEvaluation {
    fn from(r: &feed_engine::eval::RankerReport) -> Self {
        Self {
            protocol: r.protocol.clone(),
            train_rows: r.train_rows,
            valid_rows: r.valid_rows,
            test_rows: r.test_rows,
            valid_from: r.valid_from,
            test_from: r.test_from,
            heads: r
                .heads
                .iter()
                .map(|h| HeadEvaluation {
                    head: h.head.clone(),
                    calibration: h.calibration.clone(),
                    test: (&h.test).into(),
                    test_uncalibrated: (&h.test_uncalibrated).into(),
                    valid: (&h.valid).into(),
                    baseline: h.baseline.as_ref().map(|b| HeadBaseline {
                        inputs: b.inputs.clone(),
                        test: (&b.test).into(),
                    }),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Memory {
    pub estimated_bytes: u64,
    /// The most resident memory training added over what the process held before it; absent
    /// on a GPU or where `/proc` cannot be read.
    pub measured_bytes: Option<u64>,
    /// The estimate by part (`attention maps`, `full-softmax logits` …), in bytes.
    pub parts: BTreeMap<String, u64>,
}

/// Ranking metrics at 10, averaged over the evaluated users.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Metrics {
    #[serde(rename = "ndcg@10")]
    pub ndcg: f64,
    #[serde(rename = "hr@10")]
    pub hit_rate: f64,
    #[serde(rename = "mrr@10")]
    pub mrr: f64,
    /// Share of the catalog in at least one user's top 10.
    #[serde(rename = "coverage@10")]
    pub coverage: f64,
    pub users: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Training {
    /// Where it trained, and why there.
    pub device: String,
    pub epochs: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    pub best_valid_ndcg: Option<f64>,
    pub seconds_per_epoch: f64,
    pub train_seconds_per_epoch: f64,
    /// What `history[].valid` measures (`NDCG@10` or a held-out loss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// The training curve: every epoch's mean loss, validation figure and seconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Epoch>,
}

/// One epoch of a neural training.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Epoch {
    pub epoch: usize,
    pub loss: f64,
    pub valid: Option<f64>,
    pub seconds: f64,
}

impl From<&feed_engine::eval::EvalReport> for Evaluation {
    fn from(r: &feed_engine::eval::EvalReport) -> Self {
        fn metrics(m: &feed_engine::eval::Metrics) -> Metrics {
            Metrics {
                ndcg: m.ndcg,
                hit_rate: m.hit_rate,
                mrr: m.mrr,
                coverage: m.coverage,
                users: m.users,
            }
        }
        fn policy(p: &feed_engine::eval::PolicyReport) -> PolicyEvaluation {
            PolicyEvaluation {
                kind: p.kind.clone(),
                test: metrics(&p.test),
                valid: metrics(&p.valid),
                train_seconds: p.train_seconds,
                training: p.training.as_ref().map(|t| Training {
                    device: t.device.clone(),
                    epochs: t.epochs,
                    best_epoch: t.best_epoch,
                    best_valid_ndcg: t.best_valid_ndcg,
                    seconds_per_epoch: t.seconds_per_epoch,
                    train_seconds_per_epoch: t.train_seconds_per_epoch,
                    validation: t.validation.clone(),
                    history: t
                        .history
                        .iter()
                        .map(|p| Epoch {
                            epoch: p.epoch,
                            loss: p.loss,
                            valid: p.valid,
                            seconds: p.seconds,
                        })
                        .collect(),
                }),
                memory: p.memory.as_ref().map(|m| Memory {
                    estimated_bytes: m.estimated_bytes,
                    measured_bytes: m.measured_bytes,
                    parts: m.parts.iter().cloned().collect(),
                }),
                ranker: p.ranker.as_ref().map(Into::into),
                tuning: p.tuning.as_ref().map(Into::into),
            }
        }
        Self {
            protocol: r.protocol.clone(),
            users: r.users,
            items: r.items,
            events: r.events,
            reference: policy(&r.reference),
            policies: r
                .policies
                .iter()
                .map(|(k, p)| (k.clone(), policy(p)))
                .collect(),
        }
    }
}

/// Every error: what went wrong, its kind, and for query errors where.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: String,
    /// `bad_request`, `invalid_body`, `query`, `invalid`, `config`, `not_found`,
    /// `method_not_allowed`, `timeout`, `too_large`, `unsupported_media_type`, `cancelled`,
    /// `unauthorized` (no valid API key), `forbidden` (the key's scope), `rate_limited`,
    /// `internal`.
    pub error_type: String,
    /// What is at fault, for the request's mistakes (422): `$since`, `limit`, `params`; for a
    /// model file's, the field path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For query errors: where in the query text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<QueryLocation>,
}

/// The place in a FeedQL text an error is about.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryLocation {
    pub line: usize,
    pub column: usize,
    /// Byte offsets of the span.
    pub start: usize,
    pub end: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The error with the query line and a caret under the span.
    pub rendered: String,
}
