//! JSON request and response bodies of the HTTP API (spec/openapi.yaml).

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankBody {
    pub user_id: String,
    #[serde(default = "default_limit")]
    pub limit: usize,
    #[serde(default)]
    pub return_metadata: bool,
}

fn default_limit() -> usize {
    10
}

#[derive(Debug, Serialize)]
pub struct RankResponse {
    pub model: String,
    pub version: u32,
    pub ids: Vec<String>,
    pub scores: Vec<f32>,
    /// `"popular"` when the user is unknown and the answer is the popular fallback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<serde_json::Value>>,
}

/// `POST /query` and `POST /models/{name}/query`.
#[derive(Debug, Deserialize)]
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
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub return_metadata: bool,
    /// Report per stage and per item how the page came about.
    #[serde(default)]
    pub explain: bool,
}

#[derive(Debug, Serialize)]
pub struct QueryResponse {
    pub model: String,
    pub version: u32,
    /// Items in the whole catalog that satisfy the filter.
    pub eligible: usize,
    pub results: Vec<QueryItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<serde_json::Value>,
}

/// The engine's explanation as JSON (the wire shape is defined here, not by the engine).
pub fn explanation(e: &feed_engine::query::Explanation) -> serde_json::Value {
    let stages: Vec<_> = e
        .stages
        .iter()
        .map(|s| serde_json::json!({"stage": s.stage, "input": s.input, "output": s.output, "micros": s.micros}))
        .collect();
    let items: Vec<_> = e
        .items
        .iter()
        .map(|i| {
            let found_by: Vec<_> = i
                .found_by
                .iter()
                .map(|f| serde_json::json!({"retriever": f.retriever, "score": f.score, "rank": f.rank}))
                .collect();
            serde_json::json!({
                "id": i.id,
                "found_by": found_by,
                "explored": i.explored,
                "policy_scores": i.policy_scores,
                "value_model": i.value_model,
                "demotions": i.demotions,
                "position_before_reorder": i.position_before_reorder,
                "score_before_reorder": i.score_before_reorder,
                "score": i.score,
            })
        })
        .collect();
    serde_json::json!({"stages": stages, "items": items})
}

#[derive(Debug, Serialize)]
pub struct QueryItem {
    pub id: String,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ModelSummary {
    pub name: String,
    pub active_version: Option<u32>,
    pub latest_version: Option<u32>,
    pub latest_status: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    pub error_type: &'static str,
    /// For query errors: where in the query text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<QueryLocation>,
}

/// The place in a FeedQL text an error is about.
#[derive(Debug, Serialize)]
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

/// A version as JSON: `view-model --json` and `GET /models/{name}` show the same shape.
pub fn version_json(v: &feed_engine::VersionInfo) -> serde_json::Value {
    serde_json::json!({
        "version": v.version,
        "status": v.status,
        "message": v.message,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
    })
}
