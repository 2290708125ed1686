//! Query parameters (`$name`): typed values bound into a plan, never spliced into text.

use std::collections::BTreeMap;

use datafusion::scalar::ScalarValue;

use super::Ty;
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
                return Err(Error::invalid(
                    format!("${name}"),
                    format!("${name} is a list; a list fits only `IN ($list)` or list arguments"),
                ))
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
            ParamValue::Str(s) if s.len() > MAX_STRING => Err(Error::invalid(
                format!("${name}"),
                format!("${name} is longer than {MAX_STRING} bytes"),
            )),
            ParamValue::Num(n) if !n.is_finite() => Err(Error::invalid(
                format!("${name}"),
                format!("${name} is not a finite number"),
            )),
            ParamValue::List(items) => {
                if depth > 0 {
                    return Err(Error::invalid(
                        format!("${name}"),
                        format!("${name} nests lists; give a flat list"),
                    ));
                }
                if items.len() > MAX_LIST {
                    return Err(Error::invalid(
                        format!("${name}"),
                        format!("${name} has more than {MAX_LIST} elements"),
                    ));
                }
                items.iter().try_for_each(|i| walk(name, i, depth + 1))
            }
            _ => Ok(()),
        }
    }
    params.iter().try_for_each(|(k, v)| walk(k, v, 0))
}

/// What a query expects of a parameter, known when it is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A scalar of this type (a literal in an expression).
    Scalar(Ty),
    /// A scalar of this type or a list of them (`IN ($list)`).
    ScalarOrList(Ty),
    /// A whole number >= 0 (LIMIT, OFFSET, retriever limits).
    Count,
    /// An id: a string, or a whole number.
    Id,
    /// An id or a list of ids.
    Ids,
    /// A whole number >= 1 (a pinned position, `truncate(n)`).
    Position,
    /// A list of whole numbers >= 1 (pinned positions).
    Positions,
}

/// Where a query uses a parameter and what it expects there.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamUse {
    pub ty: ParamType,
    /// What the value is for, in words: "LIMIT", "compared with `item.year`".
    pub what: String,
}

impl ParamType {
    fn fits(self, v: &ParamValue) -> bool {
        let scalar = |v: &ParamValue, ty: Ty| match v {
            ParamValue::Num(_) => Ty::Num.fits(ty),
            ParamValue::Str(_) => Ty::Str.fits(ty),
            ParamValue::Bool(_) => Ty::Bool.fits(ty),
            ParamValue::List(_) => false,
        };
        let count =
            |v: &ParamValue| matches!(v, ParamValue::Num(n) if *n >= 0.0 && n.fract() == 0.0);
        match self {
            ParamType::Scalar(ty) => scalar(v, ty),
            ParamType::ScalarOrList(ty) => match v {
                ParamValue::List(items) => items.iter().all(|i| scalar(i, ty)),
                other => scalar(other, ty),
            },
            ParamType::Count => count(v),
            ParamType::Position => matches!(v, ParamValue::Num(n) if *n >= 1.0 && n.fract() == 0.0),
            ParamType::Id => v.as_id().is_some(),
            ParamType::Ids => match v {
                ParamValue::List(items) => items.iter().all(|i| i.as_id().is_some()),
                other => other.as_id().is_some(),
            },
            ParamType::Positions => match v {
                ParamValue::List(items) => items
                    .iter()
                    .all(|i| matches!(i, ParamValue::Num(n) if *n >= 1.0 && n.fract() == 0.0)),
                _ => false,
            },
        }
    }

    fn words(self) -> String {
        match self {
            ParamType::Scalar(ty) => ty.words().to_string(),
            ParamType::ScalarOrList(ty) => format!("{} or a list of them", ty.words()),
            ParamType::Count => "a whole number >= 0".into(),
            ParamType::Position => "a whole number >= 1".into(),
            ParamType::Id => "an id (a string or a whole number)".into(),
            ParamType::Ids => "an id or a list of ids".into(),
            ParamType::Positions => "a list of positions from 1".into(),
        }
    }
}

/// Checks the request's values against what the query expects: every parameter it uses is
/// given, with a value of the expected type. These are the request's mistakes (422), not the
/// query's. Uses for which `skip` holds (a LIMIT the request overrides) need no value.
pub fn check_uses(
    uses: &BTreeMap<String, Vec<ParamUse>>,
    params: &Params,
    skip: impl Fn(&ParamUse) -> bool,
) -> Result<()> {
    for (name, uses) in uses {
        let uses: Vec<&ParamUse> = uses.iter().filter(|u| !skip(u)).collect();
        if uses.is_empty() {
            continue;
        }
        let value = params.get(name).ok_or_else(|| missing(name))?;
        for u in uses {
            if !u.ty.fits(value) {
                return Err(Error::invalid(
                    format!("${name}"),
                    format!(
                        "${name} must be {} ({}), got {}",
                        u.ty.words(),
                        u.what,
                        value.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The error for a parameter the query uses but the request does not give.
pub fn missing(name: &str) -> Error {
    Error::invalid(
        format!("${name}"),
        format!("the query uses ${name}, but the request gives no value for it"),
    )
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
