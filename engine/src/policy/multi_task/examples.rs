//! A ranker's examples, one per impression: the labels of its heads, its dense inputs (the
//! user's affinity to the item's values, their history's length, the hour), its position
//! bucket, and the time split. Everything an input reads of the user's history is from before
//! the impression, so no example sees its own outcome.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};

use crate::config::{HeadConfig, MultiTaskConfig};
use crate::dataset::{Dataset, Impressions, NO_USER};
use crate::error::{Error, Result};

/// Positions past this share one bucket.
pub const MAX_POSITION: usize = 50;

/// An affinity column's value per trained item (`NO_VALUE` for none).
pub const NO_VALUE: u32 = u32::MAX;

/// The examples and where the split falls.
pub struct Examples {
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    pub dense: Vec<f32>,
    pub n_dense: usize,
    pub position: Vec<i32>,
    pub labels: Vec<f32>,
    pub heads: usize,
    /// Row indexes of each part, oldest first.
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
    pub valid_from: i64,
    pub test_from: i64,
    /// Position buckets (0 without position input): 1..=MAX_POSITION, then one for unknown.
    pub positions: usize,
}

/// The dense inputs of one row, shared by training and serving so that both compute them
/// alike: affinity per column, the history's size, and the hour.
pub struct DenseInputs<'a> {
    /// Per affinity column, each trained item's value code.
    pub codes: &'a [Vec<u32>],
    pub hour_of_day: bool,
}

impl DenseInputs<'_> {
    pub fn width(&self) -> usize {
        Self::width_of(self.codes.len(), self.hour_of_day)
    }

    /// Per row: one affinity per column, the history's size, and the hour as sine and cosine.
    pub fn width_of(affinity_columns: usize, hour_of_day: bool) -> usize {
        affinity_columns + 1 + if hour_of_day { 2 } else { 0 }
    }

    /// Appends the inputs of `item` for a user whose earlier items' value counts are
    /// `counts[column]` over `seen` items, at time `now`.
    pub fn push(
        &self,
        out: &mut Vec<f32>,
        item: u32,
        counts: &[HashMap<u32, u32>],
        seen: usize,
        now: i64,
    ) {
        for (c, codes) in self.codes.iter().enumerate() {
            let code = codes.get(item as usize).copied().unwrap_or(NO_VALUE);
            let n = match code {
                NO_VALUE => 0,
                code => counts[c].get(&code).copied().unwrap_or(0),
            };
            out.push(if seen == 0 {
                0.0
            } else {
                n as f32 / seen as f32
            });
        }
        out.push(((seen as f32).ln_1p() / 5.0).min(2.0));
        if self.hour_of_day {
            let hour = now.rem_euclid(86_400) as f32 / 3600.0;
            let angle = hour / 24.0 * std::f32::consts::TAU;
            out.push(angle.sin());
            out.push(angle.cos());
        }
    }

    /// Value counts over `items` (each counted once).
    pub fn counts(&self, items: impl Iterator<Item = u32>) -> (Vec<HashMap<u32, u32>>, usize) {
        let mut counts = vec![HashMap::new(); self.codes.len()];
        let mut n = 0;
        for i in items {
            n += 1;
            self.count(&mut counts, i);
        }
        (counts, n)
    }

    fn count(&self, counts: &mut [HashMap<u32, u32>], item: u32) {
        for (c, codes) in self.codes.iter().enumerate() {
            if let Some(&code) = codes.get(item as usize).filter(|&&c| c != NO_VALUE) {
                *counts[c].entry(code).or_default() += 1;
            }
        }
    }
}

/// Each affinity column's value code per item (values numbered in sorted order).
pub fn affinity_codes(c: &MultiTaskConfig, ds: &Dataset, path: &str) -> Result<Vec<Vec<u32>>> {
    let mut out = Vec::new();
    for (k, column) in c.affinity.iter().enumerate() {
        let table = ds.item_attributes.as_ref().ok_or_else(|| {
            Error::invalid(
                format!("{path}.affinity[{k}]"),
                format!(
                    "affinity to `{column}` needs `fetch.items`, which the file does not declare"
                ),
            )
        })?;
        let col = table.column_by_name(column).ok_or_else(|| {
            Error::invalid(
                format!("{path}.affinity[{k}]"),
                format!("`{column}` is not a column of `fetch.items`"),
            )
        })?;
        let text = cast(col, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
        let text = text.as_string::<i32>();
        let mut values: Vec<&str> = (0..text.len())
            .filter(|&i| text.is_valid(i))
            .map(|i| text.value(i))
            .collect();
        values.sort_unstable();
        values.dedup();
        let index: HashMap<&str, u32> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, i as u32))
            .collect();
        out.push(
            (0..text.len())
                .map(|i| match text.is_valid(i) {
                    true => index[text.value(i)],
                    false => NO_VALUE,
                })
                .collect(),
        );
    }
    Ok(out)
}

/// The position bucket of a 1-based position (`None`: unknown).
pub fn position_bucket(position: Option<f64>, positions: usize) -> i32 {
    match position {
        Some(p) if p.is_finite() && p >= 1.0 => (p.round() as usize).min(positions - 1) as i32 - 1,
        _ => positions as i32 - 1,
    }
}

impl Examples {
    /// Builds the examples of `c` from the dataset's impressions. `path` locates the policy in
    /// the model file (`policies[2]`) for errors.
    pub fn build(
        c: &MultiTaskConfig,
        ds: &Dataset,
        inputs: &DenseInputs<'_>,
        path: &str,
    ) -> Result<Self> {
        let imp = ds.impressions.as_ref().ok_or_else(|| {
            Error::invalid(
                "fetch.impressions",
                format!("{}: a ranker trains on `fetch.impressions`", c.name),
            )
        })?;
        let n = imp.len();
        let heads = c.heads.len();
        let mut labels = vec![0f32; n * heads];
        for (h, head) in c.heads.iter().enumerate() {
            let column = head_labels(c, head, ds, imp, &format!("{path}.heads[{h}]"))?;
            for (r, y) in column.into_iter().enumerate() {
                labels[r * heads + h] = y;
            }
        }
        // Position buckets: 1..=MAX_POSITION as seen, then one for unknown positions.
        let (position, positions) = match &c.position {
            None => (Vec::new(), 0),
            Some(p) => {
                let values = number_column(imp, &p.column, &format!("{path}.position.column"))?;
                let most = values
                    .iter()
                    .flatten()
                    .filter(|v| v.is_finite() && **v >= 1.0)
                    .map(|v| v.round() as usize)
                    .max()
                    .unwrap_or(1)
                    .min(MAX_POSITION);
                let buckets = most.max(p.serve_at as usize).min(MAX_POSITION) + 1;
                (
                    values
                        .iter()
                        .map(|v| position_bucket(*v, buckets))
                        .collect(),
                    buckets,
                )
            }
        };
        // Dense inputs from each user's distinct earlier items: impressions of one user in time
        // order against their events in time order.
        let n_dense = inputs.width();
        let mut dense = vec![0f32; n * n_dense];
        let mut by_user: HashMap<u32, Vec<usize>> = HashMap::new();
        for r in 0..n {
            by_user.entry(imp.user[r]).or_default().push(r);
        }
        let empty = inputs.counts(std::iter::empty());
        let mut row = Vec::with_capacity(n_dense);
        for (&u, rows) in &by_user {
            let (mut counts, mut seen_n) = (empty.0.clone(), 0usize);
            let mut seen: HashSet<u32> = HashSet::new();
            let (start, end) = match u {
                NO_USER => (0, 0),
                u => (ds.offsets[u as usize], ds.offsets[u as usize + 1]),
            };
            let mut next = start;
            for &r in rows {
                while next < end && ds.seq_times[next] < imp.time[r] {
                    let item = ds.seq_items[next];
                    if seen.insert(item) {
                        seen_n += 1;
                        inputs.count(&mut counts, item);
                    }
                    next += 1;
                }
                row.clear();
                inputs.push(&mut row, imp.item[r], &counts, seen_n, imp.time[r]);
                dense[r * n_dense..(r + 1) * n_dense].copy_from_slice(&row);
            }
        }
        let valid_at = ((n as f64) * (1.0 - c.validation_share - c.test_share)).floor() as usize;
        let test_at = ((n as f64) * (1.0 - c.test_share)).floor() as usize;
        let time_at = |r: usize| imp.time.get(r).copied().unwrap_or(i64::MAX);
        Ok(Self {
            user: imp
                .user
                .iter()
                .map(|&u| if u == NO_USER { ds.n_users() as u32 } else { u })
                .collect(),
            item: imp.item.clone(),
            dense,
            n_dense,
            position,
            labels,
            heads,
            train: (0..valid_at).collect(),
            valid: (valid_at..test_at).collect(),
            test: (test_at..n).collect(),
            valid_from: time_at(valid_at),
            test_from: time_at(test_at),
            positions,
        })
    }

    /// Appends `width` more dense inputs to every row (`columns`: one row of `width` per
    /// example, row-major).
    pub fn append_dense(&mut self, columns: &[f32], width: usize) {
        let old = self.n_dense;
        let mut dense = Vec::with_capacity(self.item.len() * (old + width));
        for r in 0..self.item.len() {
            dense.extend_from_slice(&self.dense[r * old..(r + 1) * old]);
            dense.extend_from_slice(&columns[r * width..(r + 1) * width]);
        }
        self.dense = dense;
        self.n_dense += width;
    }

    /// Where the examination logits start: per bucket, the logit of its training rows' rate of
    /// any engagement over the highest bucket's. The logged order puts better items first, so
    /// this falls faster than examination does; training corrects it, in fewer steps than from
    /// a constant (which the heads' logits would first absorb, then give back).
    pub fn examination_start(&self) -> Vec<f32> {
        let mut rows = vec![0usize; self.positions];
        let mut engaged = vec![0usize; self.positions];
        for &r in &self.train {
            let b = self.position[r] as usize;
            rows[b] += 1;
            if self.labels[r * self.heads..(r + 1) * self.heads]
                .iter()
                .any(|&y| y > 0.0)
            {
                engaged[b] += 1;
            }
        }
        let rate: Vec<Option<f64>> = rows
            .iter()
            .zip(&engaged)
            .map(|(&n, &k)| (n >= 100).then(|| (k as f64 + 1.0) / (n as f64 + 2.0)))
            .collect();
        let known: Vec<f64> = rate.iter().flatten().copied().collect();
        let top = known.iter().copied().fold(0.0, f64::max);
        let mean = known.iter().sum::<f64>() / known.len().max(1) as f64;
        rate.iter()
            .map(|r| {
                let q = (r.unwrap_or(mean) / top.max(1e-9)).clamp(0.02, 0.95);
                (q / (1.0 - q)).ln() as f32
            })
            .collect()
    }

    /// Head `h`'s labels of rows `at`.
    pub fn head_labels(&self, h: usize, at: &[usize]) -> Vec<f32> {
        at.iter()
            .map(|&r| self.labels[r * self.heads + h])
            .collect()
    }
}

/// A head's 0/1 label per impression.
fn head_labels(
    c: &MultiTaskConfig,
    head: &HeadConfig,
    ds: &Dataset,
    imp: &Impressions,
    path: &str,
) -> Result<Vec<f32>> {
    if let Some(column) = &head.label {
        let values = number_column(imp, column, &format!("{path}.label"))?;
        return Ok(values
            .into_iter()
            .map(|v| match (v, head.threshold) {
                (Some(v), Some(t)) => (v >= t) as u8 as f32,
                (Some(v), None) => (v != 0.0) as u8 as f32,
                (None, _) => 0.0,
            })
            .collect());
    }
    let event = head.event.as_deref().unwrap_or_default();
    let Some(kind) = ds.event_types.iter().position(|t| t == event) else {
        return Err(Error::invalid(
            format!("{path}.event"),
            format!(
                "no fetched event has type `{event}` (the events have: {})",
                ds.event_types.join(", ")
            ),
        ));
    };
    // This type's event times per (user, item).
    let mut times: HashMap<(u32, u32), Vec<i64>> = HashMap::new();
    for u in 0..ds.n_users() {
        for e in ds.offsets[u]..ds.offsets[u + 1] {
            if ds.seq_types[e] as usize == kind {
                times
                    .entry((u as u32, ds.seq_items[e]))
                    .or_default()
                    .push(ds.seq_times[e]);
            }
        }
    }
    let window = c.attribution_seconds as i64;
    Ok((0..imp.len())
        .map(|r| {
            let t = imp.time[r];
            times
                .get(&(imp.user[r], imp.item[r]))
                .is_some_and(|ts| ts.iter().any(|&e| e >= t && e <= t + window)) as u8
                as f32
        })
        .collect())
}

/// Column `name` of the impressions as numbers (booleans as 0/1); `path` locates the field
/// that names it.
fn number_column(imp: &Impressions, name: &str, path: &str) -> Result<Vec<Option<f64>>> {
    let col = imp.column(name).ok_or_else(|| {
        let names: Vec<String> = imp
            .columns
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        Error::invalid(
            path,
            format!(
                "`{name}` is not a column of `fetch.impressions` (it yields: user_id, item_id, timestamp{})",
                names.iter().map(|n| format!(", {n}")).collect::<String>()
            ),
        )
    })?;
    let t = col.data_type();
    if !(t.is_numeric() || *t == DataType::Boolean) {
        return Err(Error::invalid(
            path,
            format!(
                "column `{name}` of `fetch.impressions` is {}; a label or position is a boolean or a number",
                crate::fetch::type_words(t)
            ),
        ));
    }
    let values = cast(col, &DataType::Float64).map_err(|e| Error::Internal(e.to_string()))?;
    let values = values.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i)))
        .collect())
}

/// The label and position columns a ranker names, checked against the planned schema of
/// `fetch.impressions` before any row is read: each exists and is a boolean or a number.
pub fn check_columns(
    c: &MultiTaskConfig,
    schema: &datafusion::arrow::datatypes::Schema,
) -> std::result::Result<(), (String, String, Option<String>)> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut wanted: Vec<(String, &str)> = c
        .heads
        .iter()
        .enumerate()
        .filter_map(|(h, head)| {
            head.label
                .as_deref()
                .map(|l| (format!("heads[{h}].label"), l))
        })
        .collect();
    if let Some(p) = &c.position {
        wanted.push(("position.column".into(), p.column.as_str()));
    }
    for (field, column) in wanted {
        let Some(f) = schema.fields().iter().find(|f| f.name() == column) else {
            let hint = crate::error::did_you_mean(column, names.iter().copied())
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!(
                        "add `... AS {column}` to `fetch.impressions` (it yields: {})",
                        names.join(", ")
                    )
                });
            return Err((
                field,
                format!("`{column}` is not a column of `fetch.impressions`"),
                Some(hint),
            ));
        };
        let t = f.data_type();
        if !(t.is_numeric() || *t == DataType::Boolean) {
            return Err((
                field,
                format!(
                    "column `{column}` of `fetch.impressions` is {}; expected a boolean or a number",
                    crate::fetch::type_words(t)
                ),
                Some(format!(
                    "compute it in the SQL, e.g. `CAST({column} AS DOUBLE) AS {column}` or `({column} = 'yes') AS {column}`"
                )),
            ));
        }
    }
    Ok(())
}
