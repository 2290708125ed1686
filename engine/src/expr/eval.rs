//! Evaluating a bound expression for one request: placeholders become the request's values,
//! then DataFusion evaluates the expression over an Arrow batch, one value per row.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{lit, Expr as DfExpr};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use super::params::{ParamValue, Params};
use super::translate::{user_placeholder, NOW_PLACEHOLDER};
use crate::error::{Error, Result};

/// What a request supplies to a bound expression.
pub struct Values<'a> {
    pub params: &'a Params,
    /// The requesting user's column value (`None`: an unknown user, or no value).
    pub user: &'a dyn Fn(&str) -> Option<ScalarValue>,
    /// `user.<col>` columns the expression reads, with their types (for typed NULLs).
    pub user_types: &'a std::collections::BTreeMap<String, DataType>,
    pub now_seconds: f64,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

/// `expr` with every placeholder replaced by the request's value. A list parameter in an
/// `IN (...)` list stands for its elements.
pub fn substitute(expr: &DfExpr, values: &Values<'_>) -> Result<DfExpr> {
    let scalar = |id: &str| -> Result<ScalarValue> {
        if id == NOW_PLACEHOLDER {
            return Ok(ScalarValue::Float64(Some(values.now_seconds)));
        }
        if let Some(col) = id.strip_prefix("$.user.") {
            debug_assert_eq!(user_placeholder(col), id);
            return Ok(match (values.user)(col) {
                Some(v) => v,
                None => values
                    .user_types
                    .get(col)
                    .and_then(|t| ScalarValue::try_from(t).ok())
                    .unwrap_or(ScalarValue::Null),
            });
        }
        let name = id.trim_start_matches('$');
        let value = values
            .params
            .get(name)
            .ok_or_else(|| super::params::missing(name))?;
        value.scalar(name)
    };
    let expanded = expr
        .clone()
        .transform_down(|e| match e {
            DfExpr::InList(InList {
                expr,
                list,
                negated,
            }) => {
                let mut out = Vec::with_capacity(list.len());
                for item in list {
                    match &item {
                        DfExpr::Placeholder(p)
                            if p.id.starts_with('$') && !p.id.starts_with("$.") =>
                        {
                            let name = p.id.trim_start_matches('$');
                            match values.params.get(name) {
                                Some(ParamValue::List(items)) => {
                                    for v in items {
                                        out.push(lit(v.scalar(name)?));
                                    }
                                }
                                _ => out.push(item),
                            }
                        }
                        _ => out.push(item),
                    }
                }
                Ok(Transformed::yes(DfExpr::InList(InList {
                    expr,
                    list: out,
                    negated,
                })))
            }
            other => Ok(Transformed::no(other)),
        })
        .map_err(|e| match e {
            datafusion::error::DataFusionError::External(inner) => {
                match inner.downcast::<Error>() {
                    Ok(e) => *e,
                    Err(other) => internal(other),
                }
            }
            other => internal(other),
        })?
        .data;
    let mut failure = None;
    let done = expanded
        .transform_up(|e| match e {
            DfExpr::Placeholder(p) => match scalar(&p.id) {
                Ok(v) => Ok(Transformed::yes(lit(v))),
                Err(err) => {
                    failure.get_or_insert(err);
                    Ok(Transformed::no(DfExpr::Placeholder(p)))
                }
            },
            other => Ok(Transformed::no(other)),
        })
        .map_err(internal)?
        .data;
    match failure {
        Some(e) => Err(e),
        None => Ok(done),
    }
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        datafusion::error::DataFusionError::External(Box::new(e))
    }
}

static CONTEXT: LazyLock<SessionContext> = LazyLock::new(SessionContext::new);

/// Evaluates `expr` (placeholders substituted) over `batch`, one value per row. A failure here
/// is the data refusing what the query asks (an integer division by zero): `on_error` says so.
pub fn evaluate(
    expr: DfExpr,
    batch: &RecordBatch,
    on_error: impl Fn(String) -> Error,
) -> Result<ArrayRef> {
    let schema = DFSchema::try_from(batch.schema().as_ref().clone()).map_err(internal)?;
    let physical = CONTEXT
        .create_physical_expr(expr, &schema)
        .map_err(|e| on_error(e.strip_backtrace()))?;
    physical
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|e| on_error(e.strip_backtrace()))
}

/// A batch with the given named columns (all `rows` long).
pub fn batch(columns: Vec<(String, ArrayRef)>, rows: usize) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let options =
        datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(internal)
}
