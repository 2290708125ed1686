//! Rerankers: reorder the scored list, left to right as written in REORDER BY. Each keeps the
//! hard filter: items they bring in (exploration, pin) must be eligible too.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use feed_lang::ast::{Call, Value};
use feed_lang::{ErrorKind, QueryError};

use super::params::{ParamValue, Params};
use crate::error::{Error, Result};
use crate::serving::Snapshot;

/// A ranked item: dense id and score.
pub type Ranked = (u32, f64);

pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub text: &'a str,
    pub params: &'a Params,
    pub mask: &'a [bool],
    /// How many items the page needs (LIMIT + OFFSET): rerankers work on a window around it.
    pub need: usize,
    /// Items brought in by exploration, for explanations.
    pub explored: HashSet<u32>,
    /// Runs a retriever (for exploration), prefiltered by the mask.
    pub retrieve: &'a dyn Fn(&Call, usize) -> Result<Vec<Ranked>>,
}

fn num(call: &Call, name: &str, default: f64, params: &Params) -> Result<f64> {
    match call.arg(name) {
        None => Ok(default),
        Some(Value::Num(n, _)) => Ok(*n),
        Some(Value::Param(p)) => match params.get(&p.name) {
            Some(ParamValue::Num(n)) => Ok(*n),
            Some(other) => Err(Error::Invalid(format!(
                "${} must be a number, got {}",
                p.name,
                other.kind()
            ))),
            None => Err(super::params::missing(&p.name)),
        },
        Some(_) => Err(Error::Invalid(format!(
            "{}({name} = ...) must be a number",
            call.name.name
        ))),
    }
}

fn string(call: &Call, name: &str, params: &Params) -> Result<Option<String>> {
    Ok(super::params::string_arg(call, name, params)?.map(|(s, _)| s))
}

impl Context<'_> {
    fn column_values(
        &self,
        call: &Call,
        column: &str,
        items: &[u32],
    ) -> Result<Vec<Option<String>>> {
        let batch = &self.snapshot.items;
        let Some(col) = batch.column_by_name(column) else {
            let span = call
                .arg("attribute")
                .or(call.arg("column"))
                .map(|v| v.span())
                .unwrap_or(call.span);
            let names = batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect::<Vec<_>>();
            let mut e = QueryError::new(
                ErrorKind::Check,
                format!("the items have no column `{column}`"),
                span,
            );
            e.hint = feed_lang::did_you_mean(column, names.iter().map(String::as_str))
                .map(|s| format!("did you mean '{s}'?"));
            return Err(Error::query(e, self.text));
        };
        // Only the rows asked for are converted to text.
        let rows = datafusion::arrow::array::UInt32Array::from(items.to_vec());
        let taken = datafusion::arrow::compute::take(col.as_ref(), &rows, None)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let text = cast(&taken, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
        let text = text.as_string::<i32>();
        Ok((0..items.len())
            .map(|k| text.is_valid(k).then(|| text.value(k).to_string()))
            .collect())
    }

    fn numeric_column(&self, call: &Call, column: &str, items: &[u32]) -> Result<Vec<f64>> {
        let values = self.column_values(call, column, items)?;
        Ok(values
            .iter()
            .map(|v| {
                v.as_deref()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .collect())
    }
}

/// Applies the rerankers in order.
pub fn apply(
    calls: &[Call],
    mut ranked: Vec<Ranked>,
    ctx: &mut Context<'_>,
) -> Result<Vec<Ranked>> {
    for call in calls {
        ranked = match call.name.name.to_ascii_lowercase().as_str() {
            "diversity" => diversity(call, ranked, ctx)?,
            "spacing" => spacing(call, ranked, ctx)?,
            "exploration" => exploration(call, ranked, ctx)?,
            "boost" => boost(call, ranked, ctx)?,
            "pin" => pin(call, ranked, ctx)?,
            other => {
                return Err(Error::Internal(format!(
                    "reranker `{other}` passed the checks but has no implementation"
                )))
            }
        };
    }
    Ok(ranked)
}

/// How many of the best items a greedy reranker chooses from.
fn window_size(ctx: &Context<'_>, len: usize) -> usize {
    (ctx.need * 10).max(500).min(len)
}

fn normalise(values: &[f64]) -> Vec<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    values
        .iter()
        .map(|&v| {
            if !v.is_finite() || hi <= lo {
                if v.is_finite() {
                    1.0
                } else {
                    0.0
                }
            } else {
                (v - lo) / (hi - lo)
            }
        })
        .collect()
}

/// Maximal marginal relevance: each next item maximises (1 − λ)·relevance − λ·(greatest
/// similarity to the last `window` items chosen). Similarity is the Jaccard index of an
/// attribute's `|`-separated values, or the cosine of a policy's item vectors.
fn diversity(call: &Call, ranked: Vec<Ranked>, ctx: &Context<'_>) -> Result<Vec<Ranked>> {
    let lambda = num(call, "strength", 0.3, ctx.params)?.clamp(0.0, 1.0);
    let window = num(call, "window", 10.0, ctx.params)?.max(1.0) as usize;
    let n = window_size(ctx, ranked.len());
    let (head, tail) = ranked.split_at(n);
    let items: Vec<u32> = head.iter().map(|r| r.0).collect();
    let relevance = normalise(&head.iter().map(|r| r.1).collect::<Vec<_>>());
    let similarity: Box<dyn Fn(usize, usize) -> f64> =
        if let Some(attr) = string(call, "attribute", ctx.params)? {
            // Values interned to numbers, each item's set sorted: Jaccard by merging.
            let mut ids: std::collections::HashMap<String, u32> = Default::default();
            let sets: Vec<Vec<u32>> = ctx
                .column_values(call, &attr, &items)?
                .into_iter()
                .map(|v| {
                    let mut set: Vec<u32> = v
                        .map(|s| {
                            s.split('|')
                                .map(|part| {
                                    let next = ids.len() as u32;
                                    *ids.entry(part.to_string()).or_insert(next)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    set.sort_unstable();
                    set.dedup();
                    set
                })
                .collect();
            Box::new(move |a, b| jaccard(&sets[a], &sets[b]))
        } else {
            let policy = string(call, "embedding", ctx.params)?.unwrap_or_default();
            let vectors = ctx
                .snapshot
                .policies
                .get(&policy)
                .and_then(|p| p.vectors())
                .ok_or_else(|| {
                    let span = call.arg("embedding").map(|v| v.span()).unwrap_or(call.span);
                    Error::query(
                        QueryError::new(
                            ErrorKind::Check,
                            format!("policy `{policy}` has no item vectors"),
                            span,
                        ),
                        ctx.text,
                    )
                })?;
            let rows: Vec<Vec<f32>> = items
                .iter()
                .map(|&i| {
                    let v = vectors.item(i);
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter().map(|x| x / norm).collect()
                })
                .collect();
            Box::new(move |a, b| crate::policy::linalg::dot(&rows[a], &rows[b]).max(0.0) as f64)
        };
    // Greedy until the page is full (O(page × candidates × window)); the rest keep their order.
    // Greedy until the page is full (O(page × candidates × window)); the rest keep their order.
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    let mut left: Vec<usize> = (0..n).collect();
    while !left.is_empty() && chosen.len() < ctx.need {
        let recent = &chosen[chosen.len().saturating_sub(window)..];
        let (pos, _) = left
            .iter()
            .enumerate()
            .map(|(pos, &c)| {
                let max_sim = recent.iter().map(|&s| similarity(c, s)).fold(0.0, f64::max);
                (pos, (1.0 - lambda) * relevance[c] - lambda * max_sim)
            })
            .fold(
                (0, f64::NEG_INFINITY),
                |best, x| if x.1 > best.1 { x } else { best },
            );
        chosen.push(left.remove(pos));
    }
    chosen.extend(left);
    Ok(chosen
        .into_iter()
        .map(|c| head[c])
        .chain(tail.iter().copied())
        .collect())
}

/// |x ∩ y| / |x ∪ y| of two sorted sets (0 for two empty sets).
fn jaccard(x: &[u32], y: &[u32]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = x.len() + y.len() - both;
    if union == 0 {
        0.0
    } else {
        both as f64 / union as f64
    }
}

/// No more than `max_run` consecutive items with the same value of `attribute`: an item that
/// would extend a run too far waits for the next position where it fits.
fn spacing(call: &Call, ranked: Vec<Ranked>, ctx: &Context<'_>) -> Result<Vec<Ranked>> {
    let attr = string(call, "attribute", ctx.params)?.unwrap_or_default();
    let max_run = num(call, "max_run", 1.0, ctx.params)?.max(1.0) as usize;
    let n = window_size(ctx, ranked.len());
    let (head, tail) = ranked.split_at(n);
    let values = ctx.column_values(call, &attr, &head.iter().map(|r| r.0).collect::<Vec<_>>())?;
    let mut out: Vec<usize> = Vec::with_capacity(n);
    let mut left: Vec<usize> = (0..n).collect();
    while !left.is_empty() && out.len() < ctx.need {
        let run_value = out.last().and_then(|&l| values[l].clone());
        let run = out
            .iter()
            .rev()
            .take_while(|&&o| values[o].is_some() && values[o] == run_value)
            .count();
        let fits = |c: usize| run < max_run || values[c].is_none() || values[c] != run_value;
        // The best item that fits; if none does, the best one regardless.
        let pos = left.iter().position(|&c| fits(c)).unwrap_or(0);
        out.push(left.remove(pos));
    }
    out.extend(left);
    Ok(out
        .into_iter()
        .map(|c| head[c])
        .chain(tail.iter().copied())
        .collect())
}

/// A share of the first positions goes to items of another retriever (in its order) that the
/// list does not already show there: every ⌈1/strength⌉-th slot.
fn exploration(call: &Call, ranked: Vec<Ranked>, ctx: &mut Context<'_>) -> Result<Vec<Ranked>> {
    let strength = num(call, "strength", 0.1, ctx.params)?.clamp(0.0, 1.0);
    if strength == 0.0 {
        return Ok(ranked);
    }
    let Some(Value::Call(retriever)) = call.arg("retriever") else {
        return Err(Error::Invalid(
            "exploration(retriever = ...) must be a retriever call".into(),
        ));
    };
    let every = (1.0 / strength).ceil().max(1.0) as usize;
    let slots = ctx.need.min(ranked.len().max(ctx.need));
    let explore = (ctx.retrieve)(retriever, slots)?;
    let shown: HashSet<u32> = ranked.iter().take(slots).map(|r| r.0).collect();
    let mut fresh = explore
        .into_iter()
        .filter(|(i, _)| !shown.contains(i) && ctx.mask[*i as usize]);
    let mut out: Vec<Ranked> = Vec::with_capacity(ranked.len() + slots / every + 1);
    let mut rest = ranked.into_iter();
    let mut pos = 1;
    let mut used = HashSet::new();
    while pos <= slots {
        if pos % every == 0 {
            if let Some(e) = fresh.next() {
                used.insert(e.0);
                ctx.explored.insert(e.0);
                out.push(e);
                pos += 1;
                continue;
            }
        }
        match rest.next() {
            Some(r) => out.push(r),
            None => break,
        }
        pos += 1;
    }
    out.extend(rest.filter(|r| !used.contains(&r.0)));
    let mut seen = HashSet::new();
    out.retain(|r| seen.insert(r.0));
    Ok(out)
}

/// Score ← (1 − s)·score + s·column, both min-max normalised over the list, then re-sorted.
fn boost(call: &Call, ranked: Vec<Ranked>, ctx: &Context<'_>) -> Result<Vec<Ranked>> {
    let strength = num(call, "strength", 0.2, ctx.params)?.clamp(0.0, 1.0);
    let column = string(call, "column", ctx.params)?.unwrap_or_default();
    let items: Vec<u32> = ranked.iter().map(|r| r.0).collect();
    let values = normalise(&ctx.numeric_column(call, &column, &items)?);
    let scores = normalise(&ranked.iter().map(|r| r.1).collect::<Vec<_>>());
    let mut out: Vec<(usize, Ranked)> = ranked
        .iter()
        .enumerate()
        .map(|(k, r)| {
            (
                k,
                (r.0, (1.0 - strength) * scores[k] + strength * values[k]),
            )
        })
        .collect();
    out.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then(a.0.cmp(&b.0)));
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Fixed items at fixed 1-based positions (e.g. sponsored). Pinned items must satisfy the
/// filter like every other; ids that do not, or that the catalog lacks, are skipped.
fn pin(call: &Call, ranked: Vec<Ranked>, ctx: &Context<'_>) -> Result<Vec<Ranked>> {
    let ids = match call.arg("ids") {
        Some(Value::List(items, _)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Str(s, _) => Some(s.clone()),
                Value::Num(n, _) => Some(format!("{}", *n as i64)),
                _ => None,
            })
            .collect::<Vec<_>>(),
        Some(Value::Param(p)) => match ctx.params.get(&p.name) {
            Some(ParamValue::List(items)) => items.iter().filter_map(ParamValue::as_id).collect(),
            Some(v) => v.as_id().into_iter().collect(),
            None => return Err(super::params::missing(&p.name)),
        },
        _ => Vec::new(),
    };
    let positions: Vec<usize> = match call.arg("positions") {
        Some(Value::List(items, _)) => items
            .iter()
            .filter_map(|v| match v {
                Value::Num(n, _) => Some(*n as usize),
                Value::Param(p) => match ctx.params.get(&p.name) {
                    Some(ParamValue::Num(n)) if *n >= 1.0 => Some(*n as usize),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        Some(Value::Param(p)) => match ctx.params.get(&p.name) {
            Some(ParamValue::List(items)) => items
                .iter()
                .filter_map(|v| match v {
                    ParamValue::Num(n) if *n >= 1.0 => Some(*n as usize),
                    _ => None,
                })
                .collect(),
            _ => {
                return Err(Error::Invalid(format!(
                    "${} must be a list of positions from 1",
                    p.name
                )))
            }
        },
        _ => Vec::new(),
    };
    // Ids fill the positions in order; extra ids or positions stay unused (a sponsored list
    // may be shorter than the slots it could fill).
    let mut pinned: Vec<(usize, u32)> = ids
        .iter()
        .zip(&positions)
        .filter_map(|(id, &pos)| {
            ctx.snapshot
                .item_index(id)
                .filter(|&i| ctx.mask[i as usize])
                .map(|i| (pos.max(1), i))
        })
        .collect();
    pinned.sort();
    // An item pinned twice keeps its first position.
    let mut pinned_set: HashSet<u32> = HashSet::new();
    pinned.retain(|p| pinned_set.insert(p.1));
    let scores: std::collections::HashMap<u32, f64> = ranked.iter().copied().collect();
    let mut out: Vec<Ranked> = ranked
        .into_iter()
        .filter(|r| !pinned_set.contains(&r.0))
        .collect();
    for (pos, item) in pinned {
        let at = (pos - 1).min(out.len());
        out.insert(at, (item, scores.get(&item).copied().unwrap_or(f64::NAN)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_sorted_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 0.0);
        assert_eq!(jaccard(&[7], &[7]), 1.0);
    }

    #[test]
    fn normalise_maps_to_unit_range() {
        assert_eq!(
            normalise(&[2.0, 4.0, f64::NEG_INFINITY]),
            vec![0.0, 1.0, 0.0]
        );
        assert_eq!(normalise(&[3.0, 3.0]), vec![1.0, 1.0]);
    }
}
