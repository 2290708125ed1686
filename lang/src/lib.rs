//! FeedQL, the query language of Feed: grammar (pest, `feedql.pest`), an AST with spans, parse
//! errors with line:col, a caret excerpt, what was expected and did-you-mean, and the static
//! checks that need no model.
//!
//! ```
//! let q = feed_lang::parse("SELECT * FROM popular(limit = 100) WHERE item.year >= 1980 LIMIT 10").unwrap();
//! assert_eq!(q.from[0].name.name, "popular");
//! ```
//!
//! This crate depends on no other workspace crate; the engine plans and executes what it parses.

pub mod ast;
pub mod catalog;
mod check;
mod display;
mod error;
mod parse;
mod span;

pub use check::{alias_of, check, check_score_expression, window_arg, CheckOptions};
pub use display::{expr as expr_sexpr, sexpr};
pub use error::{did_you_mean, ErrorKind, QueryError};
pub use parse::{parse_expression, parse_query, MAX_NESTING, MAX_OPERATORS, MAX_QUERY_BYTES};
pub use span::{line_col, Span};

/// Parses and checks a query with the default limits.
pub fn parse(text: &str) -> Result<ast::Query, QueryError> {
    parse_with(text, &CheckOptions::default())
}

/// Parses and checks a query.
pub fn parse_with(text: &str, options: &CheckOptions) -> Result<ast::Query, QueryError> {
    let q = parse_query(text)?;
    check(&q, options)?;
    Ok(q)
}

/// Parses and checks a score expression (a value model's `expression`).
pub fn parse_score(text: &str) -> Result<ast::Expr, QueryError> {
    let e = parse_expression(text)?;
    check_score_expression(&e)?;
    Ok(e)
}
