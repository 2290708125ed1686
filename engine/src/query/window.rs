//! Time windows of `popular` and `trending`: `window = '7d'` (units s, m, h, d, w).

use feed_lang::QueryError;

use super::args::{Arg, CallArgs};
use crate::error::{Error, Result};
use crate::expr::{check_error, Params};

/// A window checked when the query is bound (a literal) or read per request (a parameter).
#[derive(Debug, Clone)]
pub enum Window {
    Seconds(i64),
    Param(String),
}

const HINT: &str = "write a number and a unit: '30m', '24h', '7d', '2w'";

/// `'7d'` in seconds; at most ten years (windows are about recency).
fn parse(value: &str) -> Option<i64> {
    let units = [
        ('s', 1i64),
        ('m', 60),
        ('h', 3_600),
        ('d', 86_400),
        ('w', 7 * 86_400),
    ];
    units.iter().find_map(|&(u, secs)| {
        let n: f64 = value.strip_suffix(u)?.trim().parse().ok()?;
        (n > 0.0 && n.is_finite() && n * (secs as f64) <= 10.0 * 365.0 * 86_400.0)
            .then_some((n * secs as f64) as i64)
    })
}

impl Window {
    /// The call's `window` argument, if given.
    pub fn bind(args: &mut CallArgs<'_>) -> Result<Option<Window>, QueryError> {
        Ok(match args.text("window")? {
            None => None,
            Some((Arg::Lit(s), span)) => Some(Window::Seconds(parse(&s).ok_or_else(|| {
                check_error(
                    format!("`{s}` is not a time window"),
                    span,
                    Some(HINT.into()),
                )
            })?)),
            Some((Arg::Param(p), _)) => Some(Window::Param(p)),
        })
    }

    pub fn seconds(&self, params: &Params) -> Result<i64> {
        match self {
            Window::Seconds(s) => Ok(*s),
            Window::Param(p) => {
                let value = Arg::<String>::Param(p.clone()).get(params)?;
                parse(&value).ok_or_else(|| {
                    Error::invalid(
                        format!("${p}"),
                        format!("${p} = `{value}` is not a time window: {HINT}"),
                    )
                })
            }
        }
    }
}
