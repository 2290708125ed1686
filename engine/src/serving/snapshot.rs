//! An immutable, fully loaded model version. Requests hold an `Arc` of it, so a newer version
//! can replace it at any moment without disturbing a request in flight.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::artifacts::{self, Manifest};
use crate::config::{self, ModelConfig};
use crate::dataset::IdMap;
use crate::error::{Error, IoContext, Result};
use crate::eval::EvalReport;
use crate::policy::{self, TrainedPolicy};
use crate::registry::Registry;
use crate::store;
use crate::vectors::VectorIndex;

/// A per-version cache: key → shared value. Caches live in the snapshot so that a new version
/// starts clean.
pub(crate) type Cache<V> = std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<V>>>;

pub struct Snapshot {
    pub manifest: Manifest,
    pub config: ModelConfig,
    pub report: Option<EvalReport>,
    pub(crate) item_ids: Vec<String>,
    /// External item id → dense id.
    pub(crate) item_index: IdMap,
    /// `item_id` and the attributes, one row per dense item.
    pub(crate) items: RecordBatch,
    pub(crate) users: IdMap,
    /// `user_id` and the attributes, one row per dense user.
    pub(crate) users_table: RecordBatch,
    pub(crate) seen_offsets: Vec<u64>,
    pub(crate) seen_items: Vec<u32>,
    /// Each user's latest items in time order (CSR), for the `history` encoder.
    pub(crate) recent_offsets: Vec<u64>,
    pub(crate) recent_items: Vec<u32>,
    pub(crate) popular: Vec<f32>,
    /// Items by descending popularity (ties by item order).
    pub(crate) popular_order: Vec<u32>,
    /// Rankings by windowed popularity and trending, by window.
    pub(crate) windows: Cache<Vec<(u32, f32)>>,
    /// Parsed queries, by text.
    pub(crate) plans: Cache<feed_lang::ast::Query>,
    /// Filter masks computed for this version, by filter text and parameters, with how many
    /// items each lets through.
    pub(crate) masks: Cache<(Vec<bool>, usize)>,
    /// Each item's event times (seconds), sorted; CSR by item.
    pub(crate) item_time_offsets: Vec<u64>,
    pub(crate) item_times: Vec<i64>,
    /// The newest event time: "now" for time windows over historical data.
    pub(crate) newest_event: i64,
    /// Column orders computed for `column_order`, by their spec: items in order.
    pub(crate) orders: Cache<Vec<u32>>,
    pub(crate) policies: BTreeMap<String, Box<dyn TrainedPolicy>>,
    /// How each policy's item vectors are searched (exact when absent).
    pub(crate) indexes: BTreeMap<String, VectorIndex>,
    /// The ranking score: Σ weight × policy score.
    pub(crate) terms: Vec<(String, f32)>,
    /// Π (1 − strength × item.column) over the value model's demotions, per item; None without.
    pub(crate) demotion: Option<Vec<f32>>,
    /// The value model's expression, when it has one instead of weights.
    pub(crate) value_expression: Option<feed_lang::ast::Expr>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot({} v{})",
            self.manifest.model, self.manifest.version
        )
    }
}

impl Snapshot {
    /// Loads the ACTIVE version of `model`.
    pub fn load_active(registry: &Registry, model: &str) -> Result<Self> {
        if !registry.exists(model) {
            return Err(registry.unknown_model(model));
        }
        let version = registry
            .active_version(model)?
            .ok_or_else(|| registry.no_active_version(model))?;
        Self::load(&registry.version_dir(model, version))
    }

    /// Loads a deployed version from its folder.
    #[tracing::instrument]
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = artifacts::read_manifest(dir)?;
        let yaml_path = dir.join("model.yaml");
        let text = std::fs::read_to_string(&yaml_path)
            .ctx(|| format!("reading {}", yaml_path.display()))?;
        let config = config::parse(&text, &yaml_path.display().to_string(), dir)
            .map_err(|e| Error::Internal(format!("stored model file no longer parses: {e}")))?;
        let data = dir.join("dataset");
        let items = store::read_table(&data.join("items.arrow"))?;
        let item_ids = string_column(&items, "item_id")?;
        let item_index = IdMap::from_ids(item_ids.clone());
        let users_table = store::read_table(&data.join("users.arrow"))?;
        let users = IdMap::from_ids(string_column(&users_table, "user_id")?);
        let seen_offsets = store::read_u64s(&data.join("seen_offsets.u64"))?;
        let seen_items = store::read_u32s(&data.join("seen_items.u32"))?;
        let popular = store::read_f32s(&data.join("popular.f32"))?;
        // Versions of format 1 kept no time order: their history is the seen set.
        let (recent_offsets, recent_items) = if manifest.format >= 2 {
            (
                store::read_u64s(&data.join("recent_offsets.u64"))?,
                store::read_u32s(&data.join("recent_items.u32"))?,
            )
        } else {
            (seen_offsets.clone(), seen_items.clone())
        };
        let item_time_offsets = store::read_u64s(&data.join("item_time_offsets.u64"))?;
        let item_times = store::read_i64s(&data.join("item_times.i64"))?;
        let newest_event = item_times.iter().copied().max().unwrap_or(0);
        let mut popular_order: Vec<u32> = (0..popular.len() as u32).collect();
        popular_order.sort_by(|&a, &b| {
            popular[b as usize]
                .total_cmp(&popular[a as usize])
                .then(a.cmp(&b))
        });
        if item_ids.len() != manifest.items
            || users.len() != manifest.users
            || seen_offsets.len() != users.len() + 1
            || recent_offsets.len() != users.len() + 1
            || popular.len() != item_ids.len()
        {
            return Err(Error::Internal(format!(
                "artifacts in {} disagree with the manifest",
                dir.display()
            )));
        }
        let mut policies = BTreeMap::new();
        for p in &config.policies {
            let model = policy::load(p, &dir.join("policies").join(p.name()))?;
            if model.n_items() != item_ids.len() {
                return Err(Error::Internal(format!(
                    "policy `{}` scores {} items, the catalog has {}",
                    p.name(),
                    model.n_items(),
                    item_ids.len()
                )));
            }
            policies.insert(p.name().to_string(), model);
        }
        let root = store::lance::root(&dir.to_string_lossy());
        let mut indexes = BTreeMap::new();
        for (policy, info) in &manifest.indexes {
            if info.kind == "ivf_sq8" {
                let ivf = store::lance::read_ivf(&root, policy)?;
                let vectors = policies.get(policy).and_then(|p| p.vectors());
                let n = item_ids.len();
                if vectors.is_none_or(|v| v.dim != ivf.dim)
                    || ivf.ids.len() != n
                    || ivf.ids.iter().any(|&i| i as usize >= n)
                {
                    return Err(Error::Internal(format!(
                        "the vector index of `{policy}` does not match its vectors"
                    )));
                }
                indexes.insert(policy.clone(), VectorIndex::Ivf(Box::new(ivf)));
            }
        }
        let terms = match config.value_model.as_ref().and_then(|v| v.weights.as_ref()) {
            Some(w) => w.iter().map(|(k, v)| (k.clone(), *v as f32)).collect(),
            None => vec![(manifest.primary_policy.clone(), 1.0)],
        };
        let value_expression = match config
            .value_model
            .as_ref()
            .and_then(|v| v.expression.as_ref())
        {
            Some(text) => Some(feed_lang::parse_score(text).map_err(|e| {
                Error::Internal(format!("stored value model no longer parses: {e}"))
            })?),
            None => None,
        };
        let demotion = demotion_factors(&config, &items)?;
        let report = artifacts::read_report(dir)?;
        Ok(Self {
            demotion,
            value_expression,
            manifest,
            config,
            report,
            item_ids,
            item_index,
            items,
            users,
            users_table,
            seen_offsets,
            seen_items,
            recent_offsets,
            recent_items,
            popular,
            item_time_offsets,
            item_times,
            newest_event,
            orders: Default::default(),
            popular_order,
            masks: Default::default(),
            plans: Default::default(),
            windows: Default::default(),
            policies,
            indexes,
            terms,
        })
    }

    pub fn model(&self) -> &str {
        &self.manifest.model
    }

    pub fn version(&self) -> u32 {
        self.manifest.version
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// Item `i`'s event times, sorted.
    pub(crate) fn item_times(&self, i: u32) -> &[i64] {
        &self.item_times[self.item_time_offsets[i as usize] as usize
            ..self.item_time_offsets[i as usize + 1] as usize]
    }

    /// The dense id of an external item id.
    pub(crate) fn item_index(&self, id: &str) -> Option<u32> {
        self.item_index.get(id)
    }

    /// The external ids of the users the version knows.
    pub fn user_ids(&self) -> &[String] {
        self.users.ids()
    }

    /// How `rank` scores: `(policy, weight)` terms of the weighted sum.
    pub fn terms(&self) -> &[(String, f32)] {
        &self.terms
    }

    /// How `policy`'s item vectors are searched.
    pub(crate) fn vector_index(&self, policy: &str) -> &VectorIndex {
        self.indexes.get(policy).unwrap_or(&VectorIndex::Exact)
    }

    /// User `u`'s latest items (at most `HISTORY_LEN`, or the longest SASRec `max_seq_len`),
    /// oldest first.
    pub(crate) fn recent(&self, u: u32) -> &[u32] {
        &self.recent_items
            [self.recent_offsets[u as usize] as usize..self.recent_offsets[u as usize + 1] as usize]
    }

    /// The items user `u` interacted with, sorted.
    pub(crate) fn seen(&self, u: u32) -> &[u32] {
        &self.seen_items
            [self.seen_offsets[u as usize] as usize..self.seen_offsets[u as usize + 1] as usize]
    }
}

fn string_column(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("table has no `{name}` column")))?;
    let col = cast(col, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(col
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}

/// Π (1 − strength × item.column) per item over the value model's demotions (a missing value
/// demotes nothing).
fn demotion_factors(config: &ModelConfig, items: &RecordBatch) -> Result<Option<Vec<f32>>> {
    let Some(demotions) = config
        .value_model
        .as_ref()
        .map(|v| &v.demotions)
        .filter(|d| !d.is_empty())
    else {
        return Ok(None);
    };
    let mut factors = vec![1f32; items.num_rows()];
    for (column, strength) in demotions {
        let col = items.column_by_name(column).ok_or_else(|| {
            Error::Internal(format!(
                "demotion column `{column}` is missing from the items"
            ))
        })?;
        let values = cast(col, &DataType::Float64).map_err(|e| Error::Internal(e.to_string()))?;
        let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        for (f, v) in factors.iter_mut().zip(values.iter()) {
            *f *= (1.0 - strength * v.unwrap_or(0.0)) as f32;
        }
    }
    Ok(Some(factors))
}
