//! Time windows of `popular` and `trending`: `window = '7d'` (units s, m, h, d, w).

use feed_lang::QueryError;

use super::args::{Arg, CallArgs};
use crate::error::{Error, Result};
use crate::expr::{check_error, window_seconds as parse, Params, WINDOW_HINT as HINT};

/// A window checked when the query is bound (a literal) or read per request (a parameter).
#[derive(Debug, Clone)]
pub enum Window {
    Seconds(i64),
    Param(String),
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
