//! FeedQL expressions → DataFusion expressions, evaluated over Arrow columns. The filter is
//! evaluated once over the whole catalog (a mask); the score over the candidates.
//!
//! Evaluation batches name their columns `item.<col>`, `policy.<name>`, `retrieval.<alias>`,
//! `rank.<alias>` and `seen.<n>`, so that every FeedQL path maps to exactly one column.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::{Column, DFSchema};
use datafusion::functions::core::expr_fn::{coalesce, greatest, least};
use datafusion::functions::math::expr_fn::{abs, exp, ln, power, sqrt};
use datafusion::functions_nested::expr_fn::{array_has, string_to_array};
use datafusion::logical_expr::{lit, when, Expr as DfExpr};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;
use feed_lang::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use feed_lang::{did_you_mean, ErrorKind, QueryError};

use super::params::{ParamValue, Params};
use crate::error::{Error, Result};

/// Which stage an expression belongs to; decides what it may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Filter,
    Score,
}

/// What names resolve to, and what the expression turned out to need.
pub struct Scope<'a> {
    pub text: &'a str,
    pub stage: Stage,
    pub params: &'a Params,
    pub items: &'a Schema,
    pub policies: &'a [String],
    /// The value model's terms, for `value_model` inside an expression.
    pub value_model: &'a [(String, f32)],
    /// The value model's expression, if it is one (instead of `value_model` weights).
    pub value_expression: Option<&'a Expr>,
    /// The value model's demotions: item column → strength.
    pub demotions: &'a [(String, f64)],
    /// `user.<col>` values of the requesting user (`$user_id`), if known.
    pub user_value: &'a dyn Fn(&str) -> Option<ScalarValue>,
    pub user_columns: &'a [String],
    pub now_seconds: f64,
    /// Filled while translating.
    pub item_columns: BTreeSet<String>,
    pub policies_used: BTreeSet<String>,
    pub retrieval_used: BTreeSet<String>,
    /// User ids of `seen(...)`, in column order (`seen.0`, `seen.1`, ...).
    pub seen_users: Vec<String>,
    pub truncate: Option<usize>,
    pub value_model_used: bool,
    /// Whether the filter depends on the request beyond its parameters (`user.<col>`,
    /// `now_seconds()`): then it is not cached.
    pub user_used: bool,
    /// The parameters read (the filter cache is keyed by their values).
    pub params_used: BTreeSet<String>,
}

fn check_err(
    text: &str,
    message: impl Into<String>,
    span: feed_lang::Span,
    hint: Option<String>,
) -> Error {
    let mut e = QueryError::new(ErrorKind::Check, message, span);
    e.hint = hint;
    Error::query(e, text)
}

fn column(name: String) -> DfExpr {
    DfExpr::Column(Column::from_name(name))
}

impl Scope<'_> {
    fn param(&mut self, name: &str) -> Result<&ParamValue> {
        self.params_used.insert(name.to_string());
        self.params
            .get(name)
            .ok_or_else(|| super::params::missing(name))
    }

    /// The item column `name` as written, or an error at `span` with a did-you-mean.
    fn item_column(&mut self, name: &str, span: feed_lang::Span) -> Result<(String, DataType)> {
        let found = self
            .items
            .fields()
            .iter()
            .find(|f| f.name() == name)
            .or_else(|| {
                self.items
                    .fields()
                    .iter()
                    .find(|f| f.name().eq_ignore_ascii_case(name))
            });
        match found {
            Some(f) => {
                self.item_columns.insert(f.name().clone());
                Ok((f.name().clone(), f.data_type().clone()))
            }
            None => {
                let names = self.items.fields().iter().map(|f| f.name().as_str());
                let hint = match did_you_mean(name, names) {
                    Some(s) => Some(format!("did you mean `item.{s}`?")),
                    None => Some(format!(
                        "item columns: {}",
                        self.items
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                Err(check_err(
                    self.text,
                    format!("the items have no column `{name}`"),
                    span,
                    hint,
                ))
            }
        }
    }

    pub fn translate(&mut self, e: &Expr) -> Result<DfExpr> {
        let span = e.span;
        Ok(match &e.kind {
            ExprKind::Num(n) => lit(*n),
            ExprKind::Str(s) => lit(s.clone()),
            ExprKind::Bool(b) => lit(*b),
            ExprKind::Null => lit(ScalarValue::Null),
            ExprKind::Param(name) => lit(self.param(name)?.scalar(name)?),
            ExprKind::Path(path) => {
                let head = path.parts[0].name.to_ascii_lowercase();
                let second = path.parts.get(1).map(|p| p.name.as_str());
                match (head.as_str(), second) {
                    ("item", Some(col)) => {
                        let (name, _) = self.item_column(col, path.parts[1].span)?;
                        column(format!("item.{name}"))
                    }
                    ("user", Some(col)) => {
                        if !self.user_columns.iter().any(|c| c == col) {
                            let hint =
                                did_you_mean(col, self.user_columns.iter().map(String::as_str))
                                    .map(|s| format!("did you mean `user.{s}`?"));
                            return Err(check_err(
                                self.text,
                                format!("the users have no column `{col}`"),
                                path.parts[1].span,
                                hint,
                            ));
                        }
                        self.user_used = true;
                        lit((self.user_value)(col).unwrap_or(ScalarValue::Null))
                    }
                    ("retrieval" | "rank", Some(alias)) => {
                        if self.stage == Stage::Filter {
                            return Err(check_err(self.text, "retrieval scores and ranks exist after retrieval: use them in ORDER BY", span, None));
                        }
                        self.retrieval_used.insert(alias.to_ascii_lowercase());
                        column(format!("{head}.{}", alias.to_ascii_lowercase()))
                    }
                    ("value_model", None) if self.stage == Stage::Filter => {
                        return Err(check_err(
                            self.text,
                            "the value model scores; use it in ORDER BY score(value_model)",
                            span,
                            None,
                        ));
                    }
                    ("value_model", None) => {
                        let mut sum = lit(0.0);
                        if let Some(expression) = self.value_expression {
                            sum = self.translate(expression)?;
                        } else {
                            for (policy, w) in self.value_model {
                                self.policies_used.insert(policy.clone());
                                sum = sum + lit(*w as f64) * column(format!("policy.{policy}"));
                            }
                        }
                        // Demotions: score × (1 − strength × item.column), a missing value
                        // demoting nothing.
                        for (col, strength) in self.demotions {
                            let (name, _) = self.item_column(col, span)?;
                            let value = coalesce(vec![column(format!("item.{name}")), lit(0.0)]);
                            sum = sum * (lit(1.0) - lit(*strength) * value);
                        }
                        self.value_model_used = true;
                        sum
                    }
                    _ => {
                        let name = path.dotted();
                        if path.parts.len() > 1 {
                            return Err(check_err(
                                self.text,
                                format!("`{name}`: policy heads arrive with multi-head policies"),
                                span,
                                Some(format!("use `{head}`")),
                            ));
                        }
                        if !self.policies.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                            let hint =
                                did_you_mean(&name, self.policies.iter().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?"))
                                    .or_else(|| {
                                        Some(
                                            "write item.<column>, user.<column> or a policy name"
                                                .into(),
                                        )
                                    });
                            return Err(check_err(
                                self.text,
                                format!("`{name}` is neither a policy nor a column"),
                                span,
                                hint,
                            ));
                        }
                        if self.stage == Stage::Filter {
                            return Err(check_err(
                                self.text,
                                "policy scores belong in ORDER BY score(...)",
                                span,
                                None,
                            ));
                        }
                        let name = name.to_ascii_lowercase();
                        self.policies_used.insert(name.clone());
                        column(format!("policy.{name}"))
                    }
                }
            }
            ExprKind::Call { name, args } => {
                self.call(&name.name.to_ascii_lowercase(), args, span)?
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => DfExpr::Negative(Box::new(self.translate(expr)?)),
            ExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => DfExpr::Not(Box::new(self.translate(expr)?)),
            ExprKind::Binary { op, lhs, rhs } => {
                let (l, r) = (self.translate(lhs)?, self.translate(rhs)?);
                match op {
                    BinaryOp::Or => l.or(r),
                    BinaryOp::And => l.and(r),
                    BinaryOp::Eq => l.eq(r),
                    BinaryOp::NotEq => l.not_eq(r),
                    BinaryOp::Lt => l.lt(r),
                    BinaryOp::LtEq => l.lt_eq(r),
                    BinaryOp::Gt => l.gt(r),
                    BinaryOp::GtEq => l.gt_eq(r),
                    BinaryOp::Add => l + r,
                    BinaryOp::Sub => l - r,
                    BinaryOp::Mul => l * r,
                    BinaryOp::Div => l / r,
                    BinaryOp::Mod => l % r,
                    BinaryOp::Pow => power(l, r),
                }
            }
            ExprKind::In {
                expr,
                list,
                negated,
            } => {
                let target = self.translate(expr)?;
                let mut values = Vec::new();
                for item in list {
                    match &item.kind {
                        ExprKind::Param(p) if matches!(self.param(p)?, ParamValue::List(_)) => {
                            if let ParamValue::List(vs) = self.param(p)? {
                                for v in vs {
                                    values.push(lit(v.scalar(p)?));
                                }
                            }
                        }
                        _ => values.push(self.translate(item)?),
                    }
                }
                target.in_list(values, *negated)
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let (x, lo, hi) = (
                    self.translate(expr)?,
                    self.translate(low)?,
                    self.translate(high)?,
                );
                if *negated {
                    x.not_between(lo, hi)
                } else {
                    x.between(lo, hi)
                }
            }
            ExprKind::Like {
                expr,
                pattern,
                negated,
            } => {
                let (x, p) = (self.translate(expr)?, self.translate(pattern)?);
                if *negated {
                    x.not_like(p)
                } else {
                    x.like(p)
                }
            }
            ExprKind::IsNull { expr, negated } => {
                let x = self.translate(expr)?;
                if *negated {
                    x.is_not_null()
                } else {
                    x.is_null()
                }
            }
        })
    }

    fn call(&mut self, name: &str, args: &[Expr], span: feed_lang::Span) -> Result<DfExpr> {
        let tr = |this: &mut Self, i: usize| this.translate(&args[i]);
        Ok(match name {
            "seen" => {
                let user = match &args[0].kind {
                    ExprKind::Param(p) => self.param(p)?.as_id().ok_or_else(|| {
                        Error::Invalid(format!("${p} must be a user id (a string) for seen()"))
                    })?,
                    ExprKind::Str(s) => s.clone(),
                    _ => {
                        return Err(check_err(
                            self.text,
                            "seen() takes a user id",
                            args[0].span,
                            None,
                        ))
                    }
                };
                let i = self
                    .seen_users
                    .iter()
                    .position(|u| *u == user)
                    .unwrap_or_else(|| {
                        self.seen_users.push(user);
                        self.seen_users.len() - 1
                    });
                column(format!("seen.{i}"))
            }
            "truncate" => {
                let n = match &args[0].kind {
                    ExprKind::Num(n) => *n,
                    ExprKind::Param(p) => match self.param(p)? {
                        ParamValue::Num(n) => *n,
                        other => {
                            return Err(Error::Invalid(format!(
                                "${p} must be a number for truncate(), got {}",
                                other.kind()
                            )))
                        }
                    },
                    _ => 0.0,
                };
                if n < 1.0 || n.fract() != 0.0 {
                    return Err(check_err(
                        self.text,
                        "truncate() takes a whole number >= 1",
                        args[0].span,
                        None,
                    ));
                }
                self.truncate = Some(self.truncate.map_or(n as usize, |t| t.min(n as usize)));
                lit(true)
            }
            "contains" => {
                let haystack = tr(self, 0)?;
                let needle = tr(self, 1)?;
                let is_list = match &args[0].kind {
                    ExprKind::Path(p)
                        if p.parts.len() == 2 && p.parts[0].name.eq_ignore_ascii_case("item") =>
                    {
                        matches!(
                            self.item_column(&p.parts[1].name, p.parts[1].span)?.1,
                            DataType::List(_) | DataType::LargeList(_)
                        )
                    }
                    _ => false,
                };
                if is_list {
                    array_has(haystack, needle)
                } else {
                    // Multi-valued text: values separated by `|`.
                    array_has(
                        string_to_array(haystack, lit("|"), lit(ScalarValue::Utf8(None))),
                        needle,
                    )
                }
            }
            "coalesce" => coalesce(
                (0..args.len())
                    .map(|i| tr(self, i))
                    .collect::<Result<_>>()?,
            ),
            "if" => when(tr(self, 0)?, tr(self, 1)?)
                .otherwise(tr(self, 2)?)
                .map_err(|e| Error::Internal(e.to_string()))?,
            "log" => ln(tr(self, 0)?),
            "exp" => exp(tr(self, 0)?),
            "sqrt" => sqrt(tr(self, 0)?),
            "abs" => abs(tr(self, 0)?),
            "pow" => power(tr(self, 0)?, tr(self, 1)?),
            "min" => least(
                (0..args.len())
                    .map(|i| tr(self, i))
                    .collect::<Result<_>>()?,
            ),
            "max" => greatest(
                (0..args.len())
                    .map(|i| tr(self, i))
                    .collect::<Result<_>>()?,
            ),
            "clamp" => {
                let (x, lo, hi) = (tr(self, 0)?, tr(self, 1)?, tr(self, 2)?);
                greatest(vec![lo, least(vec![x, hi])])
            }
            "now_seconds" => {
                // Changes every second: a filter that reads it is never cached.
                self.user_used = true;
                lit(self.now_seconds)
            }
            other => {
                return Err(check_err(
                    self.text,
                    format!("unknown function `{other}`"),
                    span,
                    None,
                ))
            }
        })
    }
}

static CONTEXT: LazyLock<SessionContext> = LazyLock::new(SessionContext::new);

/// Evaluates `expr` over `batch`, one value per row.
pub fn evaluate(expr: DfExpr, batch: &RecordBatch) -> Result<ArrayRef> {
    let schema = DFSchema::try_from(batch.schema().as_ref().clone())
        .map_err(|e| Error::Internal(e.to_string()))?;
    let physical = CONTEXT.create_physical_expr(expr, &schema).map_err(|e| {
        Error::Invalid(format!(
            "the expression cannot be evaluated: {}",
            e.strip_backtrace()
        ))
    })?;
    physical
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(|e| Error::Invalid(format!("the expression failed: {}", e.strip_backtrace())))
}

/// A batch with the given named columns (all the same length).
pub fn batch(columns: Vec<(String, ArrayRef)>, rows: usize) -> Result<RecordBatch> {
    use datafusion::arrow::datatypes::Field;
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    let options =
        datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
        .map_err(|e| Error::Internal(e.to_string()))
}
