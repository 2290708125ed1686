//! The score stage: an evaluation batch over the candidates (item columns, policy outputs,
//! retrieval scores and ranks, the value model) and the `ORDER BY score(...)` order.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Float64Type};

use super::plan::{Order, Score};
use super::{Candidates, Request};
use crate::error::{Error, Result};
use crate::expr::{self, Bound, Needs, Values};

/// The scored candidates: their order (indexes into the candidates), scores, and the batch the
/// scores were computed from (for `explain`).
pub struct Scored {
    pub order: Vec<usize>,
    pub scores: Vec<f64>,
    pub batch: Option<RecordBatch>,
}

/// An expression that bound but fails on this data (an integer division by zero, a value of a
/// type binding could not know): the query's, at its span (400); the hint names the parameters
/// it reads, whose values may be the cause.
pub fn evaluation_error(req: &Request<'_>, b: &Bound, what: &str, message: String) -> Error {
    let mut e = feed_lang::QueryError::new(
        feed_lang::ErrorKind::Check,
        format!("{what} cannot be evaluated: {message}"),
        b.span,
    );
    if !b.needs.params.is_empty() {
        let names: Vec<String> = b.needs.params.keys().map(|p| format!("${p}")).collect();
        e.hint = Some(format!("check the values of {}", names.join(", ")));
    }
    Error::query(e, req.text)
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// The columns `needs` names, for `items`: `item.<col>`, `policy.<output>`,
/// `retrieval.<alias>` and `rank.<alias>` (from `found`), and `value_model`.
pub fn batch(
    req: &Request<'_>,
    needs: &Needs,
    items: &[u32],
    found: Option<&Candidates>,
    values: &Values<'_>,
) -> Result<RecordBatch> {
    let snapshot = req.snapshot;
    let rows = UInt32Array::from(items.to_vec());
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    for name in &needs.item_columns {
        let col = snapshot.catalog.column(name).ok_or_else(|| {
            Error::Internal(format!("bound column `{name}` is not in the catalog"))
        })?;
        columns.push((
            format!("item.{name}"),
            take(col.as_ref(), &rows, None).map_err(internal)?,
        ));
    }
    let outputs: Vec<_> = needs.outputs.iter().collect();
    let scores = match outputs.is_empty() {
        true => Vec::new(),
        false => snapshot
            .policies
            .score(req.scoring_user(), items, &outputs)?,
    };
    for (o, scores) in outputs.iter().zip(scores) {
        columns.push((
            format!("policy.{}", o.name),
            Arc::new(Float64Array::from_iter_values(
                scores.iter().map(|&v| v as f64),
            )) as ArrayRef,
        ));
    }
    for alias in &needs.retrieval {
        let found = found
            .and_then(|c| c.found.iter().find(|(a, _)| a == alias))
            .map(|(_, m)| m);
        let score: Float64Array = items
            .iter()
            .map(|i| found.and_then(|m| m.get(i)).map(|s| s.0))
            .collect();
        let rank: Float64Array = items
            .iter()
            .map(|i| found.and_then(|m| m.get(i)).map(|s| s.1 as f64))
            .collect();
        columns.push((format!("retrieval.{alias}"), Arc::new(score) as ArrayRef));
        columns.push((format!("rank.{alias}"), Arc::new(rank) as ArrayRef));
    }
    columns.extend(super::recent::columns(
        req,
        &needs.recent,
        Some(items),
        values.now_seconds,
    )?);
    let mut batch = expr::batch(columns, items.len())?;
    if needs.value_model {
        let value = value_model(req, &batch, items, values)?;
        let mut columns: Vec<(String, ArrayRef)> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .collect();
        columns.push((
            "value_model".into(),
            Arc::new(Float64Array::from(value)) as ArrayRef,
        ));
        batch = expr::batch(columns, items.len())?;
    }
    Ok(batch)
}

/// The value model over a batch that holds its needs.
pub fn value_model(
    req: &Request<'_>,
    batch: &RecordBatch,
    items: &[u32],
    values: &Values<'_>,
) -> Result<Vec<Option<f64>>> {
    req.snapshot
        .value
        .evaluate(batch, items, values, |message| {
            Error::Internal(format!("the value model cannot be evaluated: {message}"))
        })
}

/// Scores the candidates and orders them; without `ORDER BY`, the first retriever's score
/// stands and the retrieval order is kept.
pub fn score(
    req: &Request<'_>,
    order: Option<&Order>,
    candidates: &Candidates,
    values: &Values<'_>,
) -> Result<Scored> {
    let items = &candidates.items;
    let mut scores = vec![0f64; items.len()];
    let mut ranks: Vec<usize> = (0..items.len()).collect();
    let Some(order) = order else {
        for (s, it) in scores.iter_mut().zip(items) {
            *s = candidates
                .found
                .iter()
                .find_map(|(_, m)| m.get(it).map(|s| s.0))
                .unwrap_or(0.0);
        }
        return Ok(Scored {
            order: ranks,
            scores,
            batch: None,
        });
    };
    let batch = batch(req, &order.needs, items, Some(candidates), values)?;
    let value: Vec<Option<f64>> = match &order.score {
        Score::ValueModel => {
            let col = batch
                .column_by_name("value_model")
                .ok_or_else(|| Error::Internal("the value model column is missing".into()))?;
            let col = col.as_primitive::<Float64Type>();
            (0..items.len())
                .map(|i| col.is_valid(i).then(|| col.value(i)))
                .collect()
        }
        Score::Expr(b) => {
            let e = expr::substitute(&b.expr, values)?;
            let failed = |message: String| evaluation_error(req, b, "the score", message);
            let v = expr::evaluate(e, &batch, failed)?;
            let v = cast(&v, &DataType::Float64)
                .map_err(|e| failed(format!("it is not a number: {e}")))?;
            let v = v.as_primitive::<Float64Type>();
            (0..items.len())
                .map(|i| v.is_valid(i).then(|| v.value(i)))
                .collect()
        }
    };
    for (s, v) in scores.iter_mut().zip(value) {
        *s = match v {
            Some(v) if !v.is_nan() => v,
            _ => f64::NEG_INFINITY,
        };
    }
    // Missing scores (NULL, NaN) rank last in both directions.
    let key = |i: usize| -> (bool, f64) {
        let v = scores[i];
        (!v.is_finite(), if order.descending { -v } else { v })
    };
    ranks.sort_by(|&a, &b| {
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cmp(&b))
    });
    Ok(Scored {
        order: ranks,
        scores,
        batch: Some(batch),
    })
}
