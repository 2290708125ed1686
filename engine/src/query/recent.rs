//! `recent(user, 'type', within)` and `affinity(user, item.column, within)`: inputs from the
//! user's live events in a window, for filters and scores. `recent` is the number of the
//! user's events of a type; `affinity` a candidate's share of the user's interactions: the
//! share of them whose item has the candidate's value of the column (for a multi-valued
//! `a|b` column, the largest share over the candidate's values). Both are 0 for a user with
//! no live events in the window.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;

use super::Request;
use crate::error::{Error, Result};
use crate::expr::{self, Arg, Recent};

/// The `recent.<k>` columns of `needs`, for `items` (`None`: every item of the catalog).
pub fn columns(
    req: &Request<'_>,
    inputs: &[Recent],
    items: Option<&[u32]>,
    now: f64,
) -> Result<Vec<(String, ArrayRef)>> {
    let n = items.map_or(req.snapshot.n_items(), <[u32]>::len);
    let mut out = Vec::with_capacity(inputs.len());
    for (k, input) in inputs.iter().enumerate() {
        let seconds = window(input.window(), req)?;
        let user = input.user().get(req.params)?;
        let events = req.users.recent_events(&user, now - seconds as f64);
        let column: ArrayRef = match input {
            Recent::Count { kind, .. } => {
                let count = events.iter().filter(|e| e.kind == *kind).count() as f64;
                Arc::new(Float64Array::from(vec![count; n]))
            }
            Recent::Affinity { column, .. } => {
                let liked: Vec<u32> = events
                    .iter()
                    .filter(|e| e.interaction)
                    .filter_map(|e| e.item)
                    .collect();
                Arc::new(affinity(req, column, &liked, items, n)?)
            }
        };
        out.push((format!("recent.{k}"), column));
    }
    Ok(out)
}

/// A window over live events, in seconds: a literal checked at bind, or a parameter (a 422
/// naming it).
pub(super) fn window(arg: &Arg<String>, req: &Request<'_>) -> Result<i64> {
    let text = arg.get(req.params)?;
    expr::check_live_window(&text).map_err(|m| match arg {
        Arg::Param(p) => Error::invalid(format!("${p}"), format!("${p}: {m}")),
        Arg::Lit(_) => Error::Internal(format!("a checked window failed: {m}")),
    })
}

/// Each row's share of `liked` items sharing one of its values of `column`.
fn affinity(
    req: &Request<'_>,
    column: &str,
    liked: &[u32],
    items: Option<&[u32]>,
    n: usize,
) -> Result<Float64Array> {
    if liked.is_empty() {
        return Ok(Float64Array::from(vec![0.0; n]));
    }
    let all =
        req.snapshot.catalog.column(column).ok_or_else(|| {
            Error::Internal(format!("bound column `{column}` is not in the catalog"))
        })?;
    let text = |rows: &[u32]| -> Result<ArrayRef> {
        let picked = take(all.as_ref(), &UInt32Array::from(rows.to_vec()), None)
            .map_err(|e| Error::Internal(e.to_string()))?;
        cast(&picked, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    let theirs = text(liked)?;
    let theirs = theirs.as_string::<i32>();
    for r in 0..theirs.len() {
        if theirs.is_valid(r) {
            for v in values(theirs.value(r)) {
                *counts.entry(v.to_string()).or_default() += 1;
            }
        }
    }
    let total = liked.len() as f64;
    let candidates = match items {
        Some(rows) => text(rows)?,
        None => cast(all, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?,
    };
    let candidates = candidates.as_string::<i32>();
    Ok((0..n)
        .map(|r| {
            let best = if candidates.is_valid(r) {
                values(candidates.value(r))
                    .filter_map(|v| counts.get(v))
                    .max()
                    .copied()
                    .unwrap_or(0)
            } else {
                0
            };
            Some(best as f64 / total)
        })
        .collect())
}

/// A value's parts: `a|b` is multi-valued; each distinct part counted once.
fn values(text: &str) -> impl Iterator<Item = &str> {
    let mut parts: Vec<&str> = text
        .split('|')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    parts.sort_unstable();
    parts.dedup();
    parts.into_iter()
}
