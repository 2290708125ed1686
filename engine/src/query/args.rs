//! Arguments of retriever and reranker calls, bound once per query text: literals are checked
//! (400 with their span), parameters are recorded with the type they must have (checked against
//! each request's values, 422), names of columns and policies are resolved.

use std::collections::BTreeMap;

use feed_lang::ast::{Call, Value};
use feed_lang::{QueryError, Span};

use crate::error::Result;
use crate::expr::arg::{param, wrong};
pub use crate::expr::Arg;
use crate::expr::{check_error, Names, ParamType, ParamUse, ParamValue, Params, PolicyNames, Ty};

/// A list given as a literal, whose elements may be parameters (`[$a, 'i9']`), or as one
/// parameter holding a list.
#[derive(Debug, Clone, PartialEq)]
pub enum ListArg<T> {
    Items(Vec<Arg<T>>),
    Param(String),
}

impl ListArg<String> {
    /// Ids: each element, or the parameter's one id or list of ids.
    pub fn get(&self, params: &Params) -> Result<Vec<String>> {
        match self {
            ListArg::Items(items) => items.iter().map(|a| a.get(params)).collect(),
            ListArg::Param(p) => match param(params, p)? {
                ParamValue::List(items) => items
                    .iter()
                    .map(|i| i.as_id().ok_or_else(|| wrong(p, "a list of ids", i)))
                    .collect(),
                other => other
                    .as_id()
                    .map(|s| vec![s])
                    .ok_or_else(|| wrong(p, "an id or a list of ids", other)),
            },
        }
    }
}

impl ListArg<usize> {
    /// Positions from 1.
    pub fn get(&self, params: &Params) -> Result<Vec<usize>> {
        let position = |p: &str, v: &ParamValue| match v {
            ParamValue::Num(n) if *n >= 1.0 && n.fract() == 0.0 => {
                Ok(n.min(usize::MAX as f64) as usize)
            }
            other => Err(wrong(p, "a position from 1", other)),
        };
        match self {
            ListArg::Items(items) => items
                .iter()
                .map(|a| match a {
                    Arg::Lit(n) => Ok(*n),
                    Arg::Param(p) => position(p, param(params, p)?),
                })
                .collect(),
            ListArg::Param(p) => {
                let v = param(params, p)?;
                let ParamValue::List(items) = v else {
                    return Err(wrong(p, "a list of positions from 1", v));
                };
                items.iter().map(|i| position(p, i)).collect()
            }
        }
    }
}

/// Binds the arguments of one call, recording the parameters it reads.
pub struct CallArgs<'a> {
    pub call: &'a Call,
    pub names: &'a Names,
    pub params: &'a mut BTreeMap<String, Vec<ParamUse>>,
}

impl<'a> CallArgs<'a> {
    fn value(&self, arg: &str) -> Option<&'a Value> {
        let call: &'a Call = self.call;
        call.arg(arg)
    }

    /// The span of argument `arg`, or of the call.
    pub fn span(&self, arg: &str) -> Span {
        self.value(arg).map(Value::span).unwrap_or(self.call.span)
    }

    fn what(&self, arg: &str) -> String {
        format!("{}({arg} = ...)", self.call.name.name.to_ascii_lowercase())
    }

    fn use_param(&mut self, name: &str, ty: ParamType, arg: &str) {
        let what = self.what(arg);
        self.params
            .entry(name.to_string())
            .or_default()
            .push(ParamUse { ty, what });
    }

    fn not(&self, arg: &str, wanted: &str, v: &Value) -> QueryError {
        check_error(
            format!("{} must be {wanted}, not {}", self.what(arg), v.kind()),
            v.span(),
            None,
        )
    }

    /// A whole number >= 0.
    pub fn count(&mut self, arg: &str) -> Result<Option<Arg<usize>>, QueryError> {
        match self.value(arg) {
            None => Ok(None),
            Some(Value::Num(n, _)) if *n >= 0.0 && n.fract() == 0.0 => {
                Ok(Some(Arg::Lit(n.min(usize::MAX as f64) as usize)))
            }
            Some(Value::Param(p)) => {
                self.use_param(&p.name, ParamType::Count, arg);
                Ok(Some(Arg::Param(p.name.clone())))
            }
            Some(v) => Err(self.not(arg, "a whole number", v)),
        }
    }

    /// A number (a fraction in [0, 1] is the caller's to clamp).
    pub fn number(&mut self, arg: &str) -> Result<Option<Arg<f64>>, QueryError> {
        match self.value(arg) {
            None => Ok(None),
            Some(Value::Num(n, _)) => Ok(Some(Arg::Lit(*n))),
            Some(Value::Param(p)) => {
                self.use_param(&p.name, ParamType::Scalar(Ty::Num), arg);
                Ok(Some(Arg::Param(p.name.clone())))
            }
            Some(v) => Err(self.not(arg, "a number", v)),
        }
    }

    /// Text: a string literal or a string parameter.
    pub fn text(&mut self, arg: &str) -> Result<Option<(Arg<String>, Span)>, QueryError> {
        match self.value(arg) {
            None => Ok(None),
            Some(Value::Str(s, span)) => Ok(Some((Arg::Lit(s.clone()), *span))),
            Some(Value::Param(p)) => {
                self.use_param(&p.name, ParamType::Scalar(Ty::Str), arg);
                Ok(Some((Arg::Param(p.name.clone()), p.span)))
            }
            Some(v) => Err(self.not(arg, "a string", v)),
        }
    }

    /// An id: a string or whole-number literal, or a parameter.
    pub fn id(&mut self, arg: &str) -> Result<Option<Arg<String>>, QueryError> {
        match self.value(arg) {
            None => Ok(None),
            Some(Value::Str(s, _)) => Ok(Some(Arg::Lit(s.clone()))),
            Some(Value::Num(n, _)) if n.fract() == 0.0 => {
                Ok(Some(Arg::Lit(format!("{}", *n as i64))))
            }
            Some(Value::Param(p)) => {
                self.use_param(&p.name, ParamType::Id, arg);
                Ok(Some(Arg::Param(p.name.clone())))
            }
            Some(v) => Err(self.not(arg, "an id", v)),
        }
    }

    /// Ids: a literal list (or one id) whose elements may be parameters, or a parameter holding
    /// one id or a list.
    pub fn ids(&mut self, arg: &str) -> Result<Option<ListArg<String>>, QueryError> {
        let Some(v) = self.value(arg) else {
            return Ok(None);
        };
        let mut one = |v: &Value| -> Result<Arg<String>, QueryError> {
            match v {
                Value::Str(s, _) => Ok(Arg::Lit(s.clone())),
                Value::Num(n, _) if n.fract() == 0.0 => Ok(Arg::Lit(format!("{}", *n as i64))),
                Value::Param(p) => {
                    self.use_param(&p.name, ParamType::Id, arg);
                    Ok(Arg::Param(p.name.clone()))
                }
                other => Err(self.not(arg, "a list of ids", other)),
            }
        };
        Ok(Some(match v {
            Value::Param(p) => {
                self.use_param(&p.name, ParamType::Ids, arg);
                ListArg::Param(p.name.clone())
            }
            Value::List(items, _) => {
                ListArg::Items(items.iter().map(&mut one).collect::<Result<_, _>>()?)
            }
            other => ListArg::Items(vec![one(other)?]),
        }))
    }

    /// Positions from 1: a literal list whose elements may be parameters, or a parameter holding
    /// a list.
    pub fn positions(&mut self, arg: &str) -> Result<Option<ListArg<usize>>, QueryError> {
        let Some(v) = self.value(arg) else {
            return Ok(None);
        };
        Ok(Some(match v {
            Value::Param(p) => {
                self.use_param(&p.name, ParamType::Positions, arg);
                ListArg::Param(p.name.clone())
            }
            Value::List(items, _) => ListArg::Items(
                items
                    .iter()
                    .map(|v| match v {
                        Value::Num(n, _) if *n >= 1.0 && n.fract() == 0.0 => {
                            Ok(Arg::Lit(*n as usize))
                        }
                        Value::Param(p) => {
                            self.use_param(&p.name, ParamType::Position, arg);
                            Ok(Arg::Param(p.name.clone()))
                        }
                        other => Err(check_error(
                            format!(
                                "{} takes positions from 1, not {}",
                                self.what(arg),
                                other.kind()
                            ),
                            other.span(),
                            None,
                        )),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(self.not(arg, "a list of positions", other)),
        }))
    }

    /// A literal string that names something in the query text (a column, a policy): names are
    /// resolved when the query is bound, so they cannot come from a parameter.
    fn name(&mut self, arg: &str) -> Result<Option<(&'a str, Span)>, QueryError> {
        match self.value(arg) {
            None => Ok(None),
            Some(Value::Str(s, span)) => Ok(Some((s.as_str(), *span))),
            Some(v) => Err(check_error(
                format!(
                    "{} names a column or policy: write it as a string in the query",
                    self.what(arg)
                ),
                v.span(),
                matches!(v, Value::Param(_)).then(|| {
                    "names are checked when the query is bound; parameters carry values".into()
                }),
            )),
        }
    }

    /// An item column named by `arg`, by its stored name.
    pub fn item_column(&mut self, arg: &str) -> Result<Option<String>, QueryError> {
        let Some((written, span)) = self.name(arg)? else {
            return Ok(None);
        };
        Ok(Some(self.names.item(written, span)?.0.to_string()))
    }

    /// A policy named by `arg`.
    pub fn policy(
        &mut self,
        arg: &str,
        needs_vectors: bool,
    ) -> Result<Option<PolicyNames>, QueryError> {
        let Some((written, span)) = self.name(arg)? else {
            return Ok(None);
        };
        Ok(Some(
            self.names.policy(written, span, needs_vectors)?.clone(),
        ))
    }

    /// A required argument the static checks guarantee.
    pub fn required<T>(&self, arg: &str, v: Option<T>) -> Result<T, QueryError> {
        v.ok_or_else(|| {
            check_error(
                format!("{} is required", self.what(arg)),
                self.call.span,
                None,
            )
        })
    }
}
