//! Query parameters (`$name`): typed values bound into a plan, never spliced into text.

use std::collections::BTreeMap;

use datafusion::scalar::ScalarValue;

use feed_lang::ast::{Call, Value};

use crate::error::{Error, Result};

/// A parameter value as the request gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Str(String),
    Num(f64),
    Bool(bool),
    List(Vec<ParamValue>),
}

/// Parameters by name (without the `$`).
pub type Params = BTreeMap<String, ParamValue>;

/// The most elements a list parameter may have, and the longest string.
pub const MAX_LIST: usize = 10_000;
pub const MAX_STRING: usize = 4_096;

impl ParamValue {
    pub fn kind(&self) -> &'static str {
        match self {
            ParamValue::Str(_) => "a string",
            ParamValue::Num(_) => "a number",
            ParamValue::Bool(_) => "a boolean",
            ParamValue::List(_) => "a list",
        }
    }

    /// As a literal; lists have no scalar form.
    pub fn scalar(&self, name: &str) -> Result<ScalarValue> {
        Ok(match self {
            ParamValue::Str(s) => ScalarValue::Utf8(Some(s.clone())),
            ParamValue::Num(n) => ScalarValue::Float64(Some(*n)),
            ParamValue::Bool(b) => ScalarValue::Boolean(Some(*b)),
            ParamValue::List(_) => {
                return Err(Error::Invalid(format!(
                    "${name} is a list; a list fits only `IN ($list)` or list arguments"
                )))
            }
        })
    }

    /// The value as an id (strings as they are, whole numbers without a fraction).
    pub fn as_id(&self) -> Option<String> {
        match self {
            ParamValue::Str(s) => Some(s.clone()),
            ParamValue::Num(n) if n.fract() == 0.0 => Some(format!("{}", *n as i64)),
            _ => None,
        }
    }
}

/// Checks sizes, so that a request cannot make a plan arbitrarily large.
pub fn check(params: &Params) -> Result<()> {
    fn walk(name: &str, v: &ParamValue, depth: usize) -> Result<()> {
        match v {
            ParamValue::Str(s) if s.len() > MAX_STRING => Err(Error::Invalid(format!(
                "${name} is longer than {MAX_STRING} bytes"
            ))),
            ParamValue::Num(n) if !n.is_finite() => {
                Err(Error::Invalid(format!("${name} is not a finite number")))
            }
            ParamValue::List(items) => {
                if depth > 0 {
                    return Err(Error::Invalid(format!(
                        "${name} nests lists; give a flat list"
                    )));
                }
                if items.len() > MAX_LIST {
                    return Err(Error::Invalid(format!(
                        "${name} has more than {MAX_LIST} elements"
                    )));
                }
                items.iter().try_for_each(|i| walk(name, i, depth + 1))
            }
            _ => Ok(()),
        }
    }
    params.iter().try_for_each(|(k, v)| walk(k, v, 0))
}

/// The error for a parameter the query uses but the request does not give.
pub fn missing(name: &str) -> Error {
    Error::Invalid(format!(
        "the query uses ${name}, but the request gives no value for it"
    ))
}

/// A string argument of a call (a literal or a string parameter) with the span to blame.
pub fn string_arg(
    call: &Call,
    name: &str,
    params: &Params,
) -> Result<Option<(String, feed_lang::Span)>> {
    match call.arg(name) {
        None => Ok(None),
        Some(Value::Str(s, span)) => Ok(Some((s.clone(), *span))),
        Some(Value::Param(p)) => match params.get(&p.name) {
            Some(ParamValue::Str(s)) => Ok(Some((s.clone(), p.span))),
            Some(other) => Err(Error::Invalid(format!(
                "${} must be a string for {}({name} = ...), got {}",
                p.name,
                call.name.name,
                other.kind()
            ))),
            None => Err(missing(&p.name)),
        },
        Some(other) => Err(Error::Invalid(format!(
            "{}({name} = ...) must be a string, not {}",
            call.name.name,
            other.kind()
        ))),
    }
}

/// A model file's parameter default as a value.
pub fn from_default(d: &crate::config::DefaultParam) -> ParamValue {
    use crate::config::DefaultParam as D;
    match d {
        D::Bool(b) => ParamValue::Bool(*b),
        D::Num(n) => ParamValue::Num(*n),
        D::Str(s) => ParamValue::Str(s.clone()),
        D::List(items) => ParamValue::List(items.iter().map(from_default).collect()),
    }
}
