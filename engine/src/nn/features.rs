//! Attribute columns turned into tower inputs: categorical and multi-valued columns become
//! tokens of one vocabulary (a row's tokens weighted so that each feature adds up to 1), numeric
//! columns become standardised numbers. Built once per run from the dataset's Arrow tables.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::config::{FeatureKind, FeatureSpec};
use crate::error::{Error, Result};

/// Tokens seen fewer times than this share one "rare" token per feature.
const MIN_TOKEN_COUNT: usize = 2;

/// Inputs of one tower, one row per dense id.
#[derive(Debug, Clone, Default)]
pub struct FeatureTable {
    /// Row `r`'s tokens are `tokens[offsets[r]..offsets[r + 1]]`, with `weights` alike.
    pub offsets: Vec<usize>,
    pub tokens: Vec<u32>,
    pub weights: Vec<f32>,
    pub n_tokens: usize,
    /// Row-major `n_rows × n_numeric`, standardised; a missing value is 0 (the mean).
    pub numeric: Vec<f32>,
    pub n_numeric: usize,
    /// One line per feature, for the status log.
    pub described: Vec<String>,
}

/// How one feature column becomes tower inputs: fitted on the training rows, then applied to
/// any rows (a later item is encoded as training encoded its peers).
#[derive(Debug, Clone)]
enum ColumnEncoding {
    Numeric {
        name: String,
        mean: f64,
        std: f64,
    },
    Tokens {
        name: String,
        multi: bool,
        index: HashMap<String, u32>,
        rare: u32,
    },
}

/// The fitted encoding of a tower's features: vocabularies and standardisation.
#[derive(Debug, Clone, Default)]
pub struct FeatureEncoding {
    columns: Vec<ColumnEncoding>,
    n_tokens: usize,
    n_numeric: usize,
    described: Vec<String>,
}

impl FeatureEncoding {
    /// Fits `specs` on the first `n_rows` rows of `table` (`None` when the file fetches no such
    /// table). `what` names the table in errors (`fetch.items`).
    pub fn fit(
        n_rows: usize,
        table: Option<&RecordBatch>,
        specs: &[FeatureSpec],
        what: &str,
    ) -> Result<Self> {
        let mut out = Self::default();
        if specs.is_empty() {
            return Ok(out);
        }
        let table = table.ok_or_else(|| {
            Error::invalid(
                what,
                format!(
                    "features {:?} need `{what}`, which the model file does not declare",
                    specs.iter().map(|s| s.column()).collect::<Vec<_>>()
                ),
            )
        })?;
        for spec in specs {
            let name = spec.column();
            let column = column(table, name, what)?;
            let kind = spec.kind().unwrap_or_else(|| infer(column.as_ref()));
            match kind {
                FeatureKind::Numeric => {
                    let values = numbers(&column, name, what)?;
                    let present: Vec<f64> = (0..values.len().min(n_rows))
                        .filter(|&i| values.is_valid(i) && values.value(i).is_finite())
                        .map(|i| values.value(i))
                        .collect();
                    let mean = present.iter().sum::<f64>() / present.len().max(1) as f64;
                    let var = present.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / present.len().max(1) as f64;
                    let std = var.sqrt().max(1e-9);
                    out.described.push(format!(
                        "{name}: numeric (mean {mean:.3}, std {std:.3}, {} missing)",
                        n_rows - present.len().min(n_rows)
                    ));
                    out.columns.push(ColumnEncoding::Numeric {
                        name: name.to_string(),
                        mean,
                        std,
                    });
                    out.n_numeric += 1;
                }
                FeatureKind::Categorical | FeatureKind::Multi => {
                    let multi = kind == FeatureKind::Multi;
                    let text = texts(&column, name, what)?;
                    let mut counts: HashMap<String, usize> = HashMap::new();
                    for i in 0..n_rows.min(text.len()) {
                        if text.is_valid(i) {
                            for t in split(text.value(i), multi) {
                                *counts.entry(t.to_string()).or_default() += 1;
                            }
                        }
                    }
                    // Frequent values in sorted order get their own token (reproducible ids);
                    // the rest share one.
                    let mut vocab: Vec<&str> = counts
                        .iter()
                        .filter(|(_, &c)| c >= MIN_TOKEN_COUNT)
                        .map(|(t, _)| t.as_str())
                        .collect();
                    vocab.sort_unstable();
                    let base = out.n_tokens as u32;
                    let index: HashMap<String, u32> = vocab
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (t.to_string(), base + i as u32))
                        .collect();
                    let rare = base + vocab.len() as u32;
                    out.n_tokens += vocab.len() + 1;
                    out.described.push(format!(
                        "{name}: {} ({} values, {} rare)",
                        if multi { "multi-valued" } else { "categorical" },
                        vocab.len(),
                        counts.len() - vocab.len()
                    ));
                    out.columns.push(ColumnEncoding::Tokens {
                        name: name.to_string(),
                        multi,
                        index,
                        rare,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Token and numeric input counts: the shape of a tower's input layers.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_tokens, self.n_numeric)
    }

    /// The inputs of `n_rows` rows of `table` (rows past its end have no values).
    pub fn encode(
        &self,
        n_rows: usize,
        table: Option<&RecordBatch>,
        what: &str,
    ) -> Result<FeatureTable> {
        let mut out = FeatureTable::empty(n_rows);
        out.n_tokens = self.n_tokens;
        out.n_numeric = self.n_numeric;
        out.described = self.described.clone();
        let Some(table) = table.filter(|_| !self.columns.is_empty()) else {
            out.numeric = vec![0.0; n_rows * self.n_numeric];
            return Ok(out);
        };
        let mut row_tokens: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_rows];
        let mut numeric_columns: Vec<Vec<f32>> = Vec::new();
        for c in &self.columns {
            match c {
                ColumnEncoding::Numeric { name, mean, std } => {
                    let values = numbers(&column(table, name, what)?, name, what)?;
                    numeric_columns.push(
                        (0..n_rows)
                            .map(|i| {
                                if i < values.len()
                                    && values.is_valid(i)
                                    && values.value(i).is_finite()
                                {
                                    ((values.value(i) - mean) / std) as f32
                                } else {
                                    0.0
                                }
                            })
                            .collect(),
                    );
                }
                ColumnEncoding::Tokens {
                    name,
                    multi,
                    index,
                    rare,
                } => {
                    let text = texts(&column(table, name, what)?, name, what)?;
                    for (r, tokens) in row_tokens.iter_mut().enumerate() {
                        if r >= text.len() || !text.is_valid(r) {
                            continue;
                        }
                        let values = split(text.value(r), *multi);
                        let w = 1.0 / values.len().max(1) as f32;
                        for t in values {
                            tokens.push((index.get(t).copied().unwrap_or(*rare), w));
                        }
                    }
                }
            }
        }
        out.offsets = Vec::with_capacity(n_rows + 1);
        out.offsets.push(0);
        for tokens in row_tokens {
            for (t, w) in tokens {
                out.tokens.push(t);
                out.weights.push(w);
            }
            out.offsets.push(out.tokens.len());
        }
        out.numeric = (0..n_rows)
            .flat_map(|r| numeric_columns.iter().map(move |c| c[r]))
            .collect();
        Ok(out)
    }
}

fn column(table: &RecordBatch, name: &str, what: &str) -> Result<ArrayRef> {
    table.column_by_name(name).cloned().ok_or_else(|| {
        Error::invalid(
            what,
            format!("feature `{name}` is not a column of `{what}`"),
        )
    })
}

fn numbers(column: &ArrayRef, name: &str, what: &str) -> Result<Float64Array> {
    let values = cast(column, &DataType::Float64)
        .map_err(|e| Error::invalid(what, format!("feature `{name}` is not numeric: {e}")))?;
    Ok(values
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("f64")
        .clone())
}

fn texts(column: &ArrayRef, name: &str, what: &str) -> Result<StringArray> {
    let text = cast(column, &DataType::Utf8).map_err(|e| {
        Error::invalid(
            what,
            format!("feature `{name}` cannot be read as text: {e}"),
        )
    })?;
    Ok(text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8")
        .clone())
}

/// A value's tokens: the whole (trimmed) value, or its `|`-separated parts.
fn split(s: &str, multi: bool) -> Vec<&str> {
    if multi {
        s.split('|')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect()
    } else {
        vec![s.trim()]
    }
}

impl FeatureTable {
    /// No features: `n_rows` empty rows.
    pub fn empty(n_rows: usize) -> Self {
        Self {
            offsets: vec![0; n_rows + 1],
            ..Default::default()
        }
    }

    /// Encodes `specs` from `table` (one row per dense id; `None` when the file fetches no such
    /// table), fitted on the same rows. `what` names the table in errors (`fetch.items`).
    pub fn build(
        n_rows: usize,
        table: Option<&RecordBatch>,
        specs: &[FeatureSpec],
        what: &str,
    ) -> Result<Self> {
        FeatureEncoding::fit(n_rows, table, specs, what)?.encode(n_rows, table, what)
    }

    pub fn row_tokens(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.offsets[r]..self.offsets[r + 1];
        (&self.tokens[range.clone()], &self.weights[range])
    }

    /// The most tokens one row has: what a batch pads its rows to.
    pub fn most_row_tokens(&self) -> usize {
        self.offsets
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(0)
    }

    pub fn row_numeric(&self, r: usize) -> &[f32] {
        &self.numeric[r * self.n_numeric..(r + 1) * self.n_numeric]
    }
}

/// Numbers are numeric; text with `|` separators is multi-valued; other text is categorical.
fn infer(column: &dyn Array) -> FeatureKind {
    if column.data_type().is_numeric() {
        return FeatureKind::Numeric;
    }
    let multi = cast(column, &DataType::Utf8).ok().is_some_and(|text| {
        let text = text.as_any().downcast_ref::<StringArray>().expect("utf8");
        (0..text.len()).any(|i| text.is_valid(i) && text.value(i).contains('|'))
    });
    if multi {
        FeatureKind::Multi
    } else {
        FeatureKind::Categorical
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;
    use crate::config::TypedFeature;

    fn table() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("item_id", DataType::Utf8, false),
            Field::new("year", DataType::Int64, true),
            Field::new("genres", DataType::Utf8, true),
            Field::new("group", DataType::Int64, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
                Arc::new(Int64Array::from(vec![
                    Some(1990),
                    Some(2000),
                    None,
                    Some(2010),
                ])),
                Arc::new(StringArray::from(vec![
                    Some("Drama|Comedy"),
                    Some("Drama"),
                    None,
                    Some("Comedy|Noir"),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 1, 2])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn kinds_are_inferred_or_declared_and_rows_weigh_one_per_feature() {
        let specs = vec![
            FeatureSpec::Column("year".into()),
            FeatureSpec::Column("genres".into()),
            FeatureSpec::Typed(TypedFeature {
                column: "group".into(),
                kind: FeatureKind::Categorical,
            }),
        ];
        let t = FeatureTable::build(4, Some(&table()), &specs, "fetch.items").unwrap();
        assert_eq!(t.n_numeric, 1);
        // Years standardised; the missing one at the mean (0).
        assert!(
            (t.row_numeric(0)[0] + 1.2247).abs() < 1e-3,
            "{:?}",
            t.numeric
        );
        assert_eq!(t.row_numeric(2)[0], 0.0);
        // genres: Comedy, Drama (twice or more) + a rare token for Noir; group: 1, 2 + rare.
        assert_eq!(t.n_tokens, 3 + 3);
        let (tokens, weights) = t.row_tokens(0);
        assert_eq!(tokens.len(), 3); // Drama, Comedy, group 1
        assert_eq!(weights, &[0.5, 0.5, 1.0]);
        let (tokens, _) = t.row_tokens(3);
        assert!(tokens.contains(&2), "Noir is rare: {tokens:?}");
        assert_eq!(t.row_tokens(2).0.len(), 1); // no genres, group 1
        assert!(
            t.described[1].starts_with("genres: multi-valued"),
            "{:?}",
            t.described
        );
    }

    #[test]
    fn a_missing_column_or_table_says_which() {
        let e = FeatureTable::build(
            4,
            Some(&table()),
            &[FeatureSpec::Column("yeer".into())],
            "fetch.items",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`yeer` is not a column of `fetch.items`"), "{e}");
        let e = FeatureTable::build(4, None, &[FeatureSpec::Column("age".into())], "fetch.users")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fetch.users"), "{e}");
        assert_eq!(
            FeatureTable::build(3, None, &[], "fetch.users")
                .unwrap()
                .offsets,
            vec![0; 4]
        );
    }
}
