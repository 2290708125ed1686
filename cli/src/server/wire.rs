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
}
