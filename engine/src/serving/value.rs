//! The value model: how policy outputs become one ranking score. The one evaluator that `rank`,
//! `ORDER BY score(value_model)` and `explain` share, demotions included:
//!
//! value = demote(combine(outputs), Π (1 − strength × item.column))
//!
//! where `combine` is Σ weight × output (`weights:`) or a score expression (`expression:`), and
//! `demote(v, f)` takes the share 1 − f of |v| off v: v × f for a positive value (as a plain
//! multiplication would), v × (2 − f) for a negative one, which a multiplication would raise
//! (weights over heads are negative for hides). A missing demotion value demotes nothing.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, Float64Array, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};

use super::catalog::Catalog;
use super::policies::Policies;
use crate::config::{self, ModelConfig};
use crate::error::{Error, Result};
use crate::expr::{self, Bound, Names, Needs, OutputRef, Stage, Values};

/// One term of the weighted sum.
#[derive(Debug, Clone)]
pub struct Term {
    pub output: OutputRef,
    pub weight: f64,
}

pub enum Combine {
    /// Σ weight × output.
    Weights(Vec<Term>),
    /// A score expression over outputs and item columns.
    Expression(Box<Bound>),
}

/// One demotion: its column and factor per item.
pub struct Demotion {
    pub column: String,
    factors: Vec<f64>,
}

pub struct ValueModel {
    pub(crate) combine: Combine,
    pub(crate) demotions: Vec<Demotion>,
    /// Π over the demotions, per item; `None` without demotions.
    factors: Option<Vec<f64>>,
    needs: Needs,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

impl ValueModel {
    /// The value model of a stored file: its weights (or, without a `value_model`, the primary
    /// policy alone) or its expression, bound against the version's names.
    pub fn load(
        config: &ModelConfig,
        names: &Names,
        catalog: &Catalog,
        primary: &str,
    ) -> Result<Self> {
        let stored = |e: feed_lang::QueryError| {
            Error::Internal(format!(
                "the stored value model no longer binds: {}",
                e.message
            ))
        };
        let vm = config.value_model.as_ref();
        let combine = match vm.map(|v| &v.combine) {
            Some(config::Combine::Expression(text)) => {
                let e = feed_lang::parse_score(text).map_err(stored)?;
                Combine::Expression(Box::new(
                    expr::bind(&e, Stage::ValueModel, names, &[]).map_err(stored)?,
                ))
            }
            Some(config::Combine::Weights(weights)) => Combine::Weights(
                weights
                    .iter()
                    .map(|w| Term {
                        output: OutputRef {
                            name: w.output.clone(),
                            policy: w.policy.clone(),
                            head: w.head,
                        },
                        weight: w.weight,
                    })
                    .collect(),
            ),
            // Without a value model, the primary policy alone (its one output).
            None => Combine::Weights(vec![Term {
                output: OutputRef {
                    name: primary.to_string(),
                    policy: primary.to_string(),
                    head: 0,
                },
                weight: 1.0,
            }]),
        };
        let mut demotions = Vec::new();
        for (column, strength) in vm.map(|v| &v.demotions).into_iter().flatten() {
            // By the one name rule, as `validate` checked it.
            let span = feed_lang::Span::new(0, column.len());
            let col = names
                .item(column, span)
                .ok()
                .and_then(|(stored, _)| catalog.column(stored))
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "demotion column `{column}` is missing from the items"
                    ))
                })?;
            let values = cast(col, &DataType::Float64).map_err(internal)?;
            let factors = values
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| 1.0 - strength * v.unwrap_or(0.0))
                .collect();
            demotions.push(Demotion {
                column: column.clone(),
                factors,
            });
        }
        let factors = (!demotions.is_empty()).then(|| {
            (0..catalog.len())
                .map(|i| demotions.iter().map(|d| d.factors[i]).product())
                .collect()
        });
        let needs = match &combine {
            Combine::Weights(terms) => Needs {
                outputs: terms.iter().map(|t| t.output.clone()).collect(),
                ..Default::default()
            },
            Combine::Expression(b) => b.needs.clone(),
        };
        Ok(Self {
            combine,
            demotions,
            factors,
            needs,
        })
    }

    /// What evaluating it reads: policy outputs, and for an expression item columns and
    /// parameters.
    pub fn needs(&self) -> &Needs {
        &self.needs
    }

    /// The weighted sum's terms, when the value model is one.
    pub fn terms(&self) -> Option<&[Term]> {
        match &self.combine {
            Combine::Weights(t) => Some(t),
            Combine::Expression(_) => None,
        }
    }

    pub fn has_demotions(&self) -> bool {
        self.factors.is_some()
    }

    /// Each candidate's value, from a batch holding the columns [`Self::needs`] names
    /// (`policy.<output>`, `item.<col>`) for `items`. NULL or NaN values are `None`.
    pub fn evaluate(
        &self,
        batch: &RecordBatch,
        items: &[u32],
        values: &Values<'_>,
        on_error: impl Fn(String) -> Error,
    ) -> Result<Vec<Option<f64>>> {
        let mut out: Vec<Option<f64>> = match &self.combine {
            Combine::Weights(terms) => {
                let mut sum = vec![0f64; items.len()];
                for t in terms {
                    let col = output_column(batch, &t.output.name)?;
                    for (s, v) in sum.iter_mut().zip(col.values()) {
                        *s += t.weight * v;
                    }
                }
                sum.into_iter().map(Some).collect()
            }
            Combine::Expression(b) => {
                let e = expr::substitute(&b.expr, values)?;
                let v = expr::evaluate(e, batch, on_error)?;
                let v = cast(&v, &DataType::Float64).map_err(internal)?;
                let v = v.as_primitive::<Float64Type>();
                (0..items.len())
                    .map(|i| (v.is_valid(i) && !v.value(i).is_nan()).then(|| v.value(i)))
                    .collect()
            }
        };
        if let Some(f) = &self.factors {
            for (o, &i) in out.iter_mut().zip(items) {
                if let Some(o) = o {
                    *o = demote(*o, f[i as usize]);
                }
            }
        }
        Ok(out)
    }

    /// Every item's value for dense user `u`, when the value model is a weighted sum: each term a
    /// full row of the policy's batched scoring. `None` for an expression.
    pub fn score_catalog(
        &self,
        policies: &Policies,
        user: &super::ScoringUser,
        n: usize,
    ) -> Result<Option<Vec<f32>>> {
        let Combine::Weights(terms) = &self.combine else {
            return Ok(None);
        };
        let mut row = vec![0f32; n];
        for t in terms {
            let buf = policies.score_row(&t.output.policy, t.output.head, user, n)?;
            let w = t.weight as f32;
            for (r, b) in row.iter_mut().zip(&buf) {
                *r += w * b;
            }
        }
        if let Some(f) = &self.factors {
            for (r, f) in row.iter_mut().zip(f) {
                *r = demote(*r as f64, *f) as f32;
            }
        }
        Ok(Some(row))
    }

    /// For `explain`: each term's contribution, weight × output (weighted sums only).
    pub fn contributions(&self, outputs: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
        match &self.combine {
            Combine::Weights(terms) => terms
                .iter()
                .map(|t| {
                    (
                        t.output.name.clone(),
                        t.weight * outputs.get(&t.output.name).copied().unwrap_or(0.0),
                    )
                })
                .collect(),
            Combine::Expression(_) => BTreeMap::new(),
        }
    }

    /// For `explain`: each demotion's factor for `item`, 1 − strength × item.column.
    pub fn demotion_factors(&self, item: u32) -> BTreeMap<String, f64> {
        self.demotions
            .iter()
            .map(|d| (d.column.clone(), d.factors[item as usize]))
            .collect()
    }
}

/// `value` demoted by `factor` (the product of 1 − strength × column): the share 1 − factor of
/// its magnitude taken off, so that a demotion lowers a negative value too.
pub fn demote(value: f64, factor: f64) -> f64 {
    value - (1.0 - factor) * value.abs()
}

/// The `policy.<output>` column of a scoring batch.
fn output_column<'b>(batch: &'b RecordBatch, output: &str) -> Result<&'b Float64Array> {
    batch
        .column_by_name(&format!("policy.{output}"))
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| Error::Internal(format!("the scoring batch lacks output `{output}`")))
}

#[cfg(test)]
mod tests {
    use super::demote;

    /// A demotion takes the same share off a positive and a negative value, so it lowers both.
    #[test]
    fn demotions_lower_positive_and_negative_values() {
        assert_eq!(demote(10.0, 0.5), 5.0);
        assert_eq!(demote(-10.0, 0.5), -15.0);
        assert_eq!(demote(-10.0, 1.0), -10.0);
        assert_eq!(demote(0.0, 0.2), 0.0);
        assert!(demote(-1.0, 0.9) < -1.0 && demote(1.0, 0.9) < 1.0);
    }
}
