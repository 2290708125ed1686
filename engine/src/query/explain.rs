//! `explain`: why each item of a page is where it is — the retrievers that found it, the policy
//! outputs and value-model terms its score came from, and its place before reordering.

use std::collections::{BTreeMap, HashMap, HashSet};

use datafusion::arrow::array::Float64Array;

use super::plan::Order;
use super::score::Scored;
use super::{Candidates, Ranked, Request};

/// Per stage: how many items went in and out, and the time spent.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub stage: &'static str,
    pub input: usize,
    pub output: usize,
    pub micros: u64,
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
    /// Each policy output the score read, by name (`als`, `ranker.like`).
    pub policy_scores: BTreeMap<String, f64>,
    /// For `score(value_model)`: each term's contribution, weight × output.
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

/// What explaining a page reads of the run.
pub struct Run<'a> {
    pub req: &'a Request<'a>,
    pub order: Option<&'a Order>,
    pub candidates: &'a Candidates,
    pub scored: &'a Scored,
    /// The list before reordering.
    pub before: &'a [Ranked],
    pub explored: &'a HashSet<u32>,
}

pub fn explain(run: &Run<'_>, page: &[Ranked], stages: Vec<StageReport>) -> Explanation {
    let snapshot = run.req.snapshot;
    let position_before: HashMap<u32, (usize, f64)> = run
        .before
        .iter()
        .enumerate()
        .map(|(p, &(i, s))| (i, (p + 1, s)))
        .collect();
    let candidate_row = candidate_rows(run);
    let value_model_used = run.order.is_some_and(|o| o.needs.value_model);
    let items = page
        .iter()
        .map(|&(item, score)| {
            let row = candidate_row.get(&item).copied();
            let found_by = run
                .candidates
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
            if let (Some(batch), Some(row), Some(order)) = (&run.scored.batch, row, run.order) {
                for o in &order.needs.outputs {
                    let col = batch
                        .column_by_name(&format!("policy.{}", o.name))
                        .and_then(|c| c.as_any().downcast_ref::<Float64Array>());
                    if let Some(v) = col {
                        policy_scores.insert(o.name.clone(), v.value(row));
                    }
                }
            }
            let (value_model, demotions) = if value_model_used {
                (
                    snapshot.value.contributions(&policy_scores),
                    snapshot.value.demotion_factors(item),
                )
            } else {
                Default::default()
            };
            let (position_before_reorder, score_before_reorder) = position_before
                .get(&item)
                .copied()
                .map_or((None, None), |(p, s)| (Some(p), Some(s)));
            ItemExplanation {
                id: snapshot.catalog.id(item).to_string(),
                found_by,
                explored: run.explored.contains(&item),
                policy_scores,
                value_model,
                demotions,
                position_before_reorder,
                score_before_reorder,
                score,
            }
        })
        .collect();
    Explanation { stages, items }
}

/// Per page item, the numbers its score read (every numeric column of the scoring batch, by
/// name) and its retrievers' scores and ranks: what an impression records for the ranker to
/// learn from, as served.
pub fn features(run: &Run<'_>, page: &[Ranked]) -> Vec<BTreeMap<String, f64>> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let row_of = candidate_rows(run);
    // The batch's numeric columns as numbers, once.
    let columns: Vec<(String, Float64Array)> = run
        .scored
        .batch
        .iter()
        .flat_map(|b| {
            b.schema()
                .fields()
                .iter()
                .cloned()
                .zip(b.columns().iter().cloned())
                .collect::<Vec<_>>()
        })
        .filter(|(f, _)| f.data_type().is_numeric() || *f.data_type() == DataType::Boolean)
        .filter_map(|(f, c)| {
            let c = cast(&c, &DataType::Float64).ok()?;
            let c = c.as_any().downcast_ref::<Float64Array>()?.clone();
            Some((f.name().clone(), c))
        })
        .collect();
    page.iter()
        .map(|&(item, _)| {
            let mut out = BTreeMap::new();
            if let Some(&row) = row_of.get(&item) {
                for (name, c) in &columns {
                    if row < c.len() && c.is_valid(row) && c.value(row).is_finite() {
                        out.insert(name.clone(), c.value(row));
                    }
                }
            }
            for (alias, found) in &run.candidates.found {
                if let Some(&(score, rank)) = found.get(&item) {
                    out.insert(format!("retrieval.{alias}"), score);
                    out.insert(format!("rank.{alias}"), rank as f64);
                }
            }
            out
        })
        .collect()
}

/// Each candidate's row in the scoring batch.
fn candidate_rows(run: &Run<'_>) -> HashMap<u32, usize> {
    run.candidates
        .items
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k))
        .collect()
}
