//! A value a query gives as a literal or as a `$parameter`, read per request. Parameter types
//! were checked against the plan before execution (`check_uses`); reading still says which
//! parameter is wrong rather than assume it.

use super::params::{missing, ParamValue, Params};
use crate::error::{Error, Result};

/// A value given as a literal or a `$parameter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<T> {
    Lit(T),
    Param(String),
}

pub(crate) fn param<'p>(params: &'p Params, name: &str) -> Result<&'p ParamValue> {
    params.get(name).ok_or_else(|| missing(name))
}

pub(crate) fn wrong(name: &str, wanted: &str, got: &ParamValue) -> Error {
    Error::invalid(
        format!("${name}"),
        format!("${name} must be {wanted}, got {}", got.kind()),
    )
}

impl Arg<usize> {
    pub fn get(&self, params: &Params) -> Result<usize> {
        match self {
            Arg::Lit(n) => Ok(*n),
            Arg::Param(p) => match param(params, p)? {
                ParamValue::Num(n) if *n >= 0.0 && n.fract() == 0.0 => {
                    Ok(n.min(usize::MAX as f64) as usize)
                }
                other => Err(wrong(p, "a whole number", other)),
            },
        }
    }
}

impl Arg<f64> {
    pub fn get(&self, params: &Params) -> Result<f64> {
        match self {
            Arg::Lit(n) => Ok(*n),
            Arg::Param(p) => match param(params, p)? {
                ParamValue::Num(n) => Ok(*n),
                other => Err(wrong(p, "a number", other)),
            },
        }
    }
}

impl Arg<String> {
    /// As text (a string parameter), or as an id (a string or a whole number).
    pub fn get(&self, params: &Params) -> Result<String> {
        match self {
            Arg::Lit(s) => Ok(s.clone()),
            Arg::Param(p) => {
                let v = param(params, p)?;
                v.as_id().ok_or_else(|| wrong(p, "a string", v))
            }
        }
    }
}
