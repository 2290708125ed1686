//! Query text → [`Plan`]: the one place names in a query resolve, shared by `validate` (over
//! the names a fetch yields) and serving (over a version's tables), so that a saved query that
//! validates never fails at request time on a name. Every mistake found here is the query's: a
//! [`QueryError`] with its span (400).

use std::collections::BTreeMap;

use feed_lang::ast::{BinaryOp, Call, Count, Expr, ExprKind, Query, Select, UnaryOp};
use feed_lang::{alias_of, QueryError, Span};

use super::args::{Arg, CallArgs};
use super::plan::{Filter, Order, Plan, Score, Source};
use super::{rerank, retrieve};
use crate::expr::{self, check_error, Names, ParamType, ParamUse, Stage};

/// The retriever of a query without `FROM`, and a retriever's limit when it gives none.
pub const DEFAULT_RETRIEVER: &str = "popular";
pub const DEFAULT_RETRIEVER_LIMIT: usize = 100;
/// The most candidates one retriever may be asked for: beyond it a request no longer answers
/// in milliseconds, and no page needs more (the page itself is at most `serving.max_limit`).
pub const MAX_RETRIEVER_LIMIT: usize = 1_000_000;

fn retriever_limit_error(n: usize, span: Span) -> QueryError {
    check_error(
        format!("a retriever finds at most {MAX_RETRIEVER_LIMIT} candidates, not {n}"),
        span,
        Some("ask for fewer candidates; the page size is the query's LIMIT".into()),
    )
}

/// What a parameter of `LIMIT` and `OFFSET` is for (a request that overrides them needs no value).
pub const LIMIT_USE: &str = "LIMIT";
pub const OFFSET_USE: &str = "OFFSET";

/// Binds a parsed, checked query against `names`.
pub fn bind(q: &Query, text: &str, names: &Names) -> Result<Plan, QueryError> {
    let mut params: BTreeMap<String, Vec<ParamUse>> = BTreeMap::new();

    let select = match &q.select {
        Select::All(_) => None,
        Select::Columns(cols) => Some(
            cols.iter()
                .map(|c| {
                    names
                        .item(&c.parts[1].name, c.parts[1].span)
                        .map(|(n, _)| n.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };

    let default;
    let calls: &[Call] = if q.from.is_empty() {
        default = [default_retriever()];
        &default
    } else {
        &q.from
    };
    let mut sources = Vec::with_capacity(calls.len());
    for call in calls {
        let mut args = CallArgs {
            call,
            names,
            params: &mut params,
        };
        let limit = args
            .count("limit")?
            .unwrap_or(Arg::Lit(DEFAULT_RETRIEVER_LIMIT));
        if let Arg::Lit(n) = limit {
            if n > MAX_RETRIEVER_LIMIT {
                return Err(retriever_limit_error(n, args.span("limit")));
            }
        }
        let retriever = retrieve::bind(call, &mut args)?;
        sources.push(Source {
            alias: alias_of(call).to_ascii_lowercase(),
            limit,
            retriever,
        });
    }
    let aliases: Vec<String> = sources.iter().map(|s| s.alias.clone()).collect();

    let filter = match &q.filter {
        None => Filter {
            not_seen: Vec::new(),
            not_served: Vec::new(),
            rest: None,
            key: String::new(),
        },
        Some(f) => bind_filter(f, text, names, &mut params)?,
    };

    let order = match &q.order {
        None => None,
        Some(o) => {
            let score = match &o.score {
                feed_lang::ast::Score::ValueModel(_) => Score::ValueModel,
                feed_lang::ast::Score::Expr(e) => {
                    Score::Expr(Box::new(expr::bind(e, Stage::Score, names, &aliases)?))
                }
            };
            let needs = match &score {
                Score::ValueModel => expr::Needs {
                    value_model: true,
                    ..Default::default()
                },
                Score::Expr(b) => b.needs.clone(),
            };
            merge_params(&mut params, &needs.params);
            Some(Order {
                score,
                descending: o.descending,
                needs,
            })
        }
    };

    let mut rerankers = Vec::with_capacity(q.reorder.len());
    for call in &q.reorder {
        let mut args = CallArgs {
            call,
            names,
            params: &mut params,
        };
        rerankers.push(rerank::bind(call, &mut args)?);
    }

    let count =
        |c: &Option<Count>, what: &str, params: &mut BTreeMap<String, Vec<ParamUse>>| match c {
            None => None,
            Some(Count::Literal(n, _)) => Some(Arg::Lit(*n as usize)),
            Some(Count::Param(p)) => {
                params.entry(p.name.clone()).or_default().push(ParamUse {
                    ty: ParamType::Count,
                    what: what.into(),
                });
                Some(Arg::Param(p.name.clone()))
            }
        };
    let limit = count(&q.limit, LIMIT_USE, &mut params);
    let offset = count(&q.offset, OFFSET_USE, &mut params);

    Ok(Plan {
        text: text.to_string(),
        select,
        filter,
        sources,
        order,
        rerankers,
        limit,
        offset,
        params,
    })
}

fn merge_params(
    into: &mut BTreeMap<String, Vec<ParamUse>>,
    from: &BTreeMap<String, Vec<ParamUse>>,
) {
    for (k, v) in from {
        into.entry(k.clone()).or_default().extend(v.iter().cloned());
    }
}

fn default_retriever() -> Call {
    feed_lang::parse(&format!(
        "SELECT * FROM {DEFAULT_RETRIEVER}(limit = {DEFAULT_RETRIEVER_LIMIT})"
    ))
    .expect("the default retriever parses")
    .from
    .remove(0)
}

/// `WHERE`: top-level `NOT seen(x)` conjuncts apart, the rest as one condition.
fn bind_filter(
    f: &Expr,
    text: &str,
    names: &Names,
    params: &mut BTreeMap<String, Vec<ParamUse>>,
) -> Result<Filter, QueryError> {
    let mut conjuncts = Vec::new();
    split_and(f, &mut conjuncts);
    let mut not_seen = Vec::new();
    let mut rest: Vec<&Expr> = Vec::new();
    let mut not_served = Vec::new();
    for c in conjuncts {
        if let Some(call) = not_served_call(c) {
            // Bound like any `served()` (its user and window checked), then applied directly.
            let bound = expr::bind(call, Stage::Filter, names, &[])?;
            merge_params(params, &bound.needs.params);
            not_served.extend(bound.needs.served);
            continue;
        }
        match not_seen_user(c) {
            Some(ExprKind::Str(s)) => not_seen.push(Arg::Lit(s.clone())),
            Some(ExprKind::Num(n)) if n.fract() == 0.0 => {
                not_seen.push(Arg::Lit(format!("{}", *n as i64)))
            }
            Some(ExprKind::Param(p)) => {
                params.entry(p.clone()).or_default().push(ParamUse {
                    ty: ParamType::Id,
                    what: "the user of seen()".into(),
                });
                not_seen.push(Arg::Param(p.clone()));
            }
            _ => rest.push(c),
        }
    }
    let Some((first, others)) = rest.split_first() else {
        return Ok(Filter {
            not_seen,
            not_served,
            rest: None,
            key: String::new(),
        });
    };
    let combined = others.iter().fold((*first).clone(), |acc, c| Expr {
        span: acc.span.to(c.span),
        kind: ExprKind::Binary {
            op: BinaryOp::And,
            lhs: Box::new(acc),
            rhs: Box::new((*c).clone()),
        },
    });
    let bound = expr::bind(&combined, Stage::Filter, names, &[])?;
    merge_params(params, &bound.needs.params);
    let key = rest
        .iter()
        .map(|c| &text[c.span.start..c.span.end])
        .collect::<Vec<_>>()
        .join("\u{0}");
    Ok(Filter {
        not_seen,
        not_served,
        rest: Some(bound),
        key,
    })
}

/// The conjuncts of a top-level AND chain.
fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
        } => {
            split_and(lhs, out);
            split_and(rhs, out);
        }
        _ => out.push(e),
    }
}

/// The call and its arguments of a `NOT function(...)` conjunct.
fn not_call<'e>(e: &'e Expr, function: &str) -> Option<(&'e Expr, &'e [Expr])> {
    let ExprKind::Unary {
        op: UnaryOp::Not,
        expr,
    } = &e.kind
    else {
        return None;
    };
    match &expr.kind {
        ExprKind::Call { name, args } if name.name.eq_ignore_ascii_case(function) => {
            Some((expr.as_ref(), args.as_slice()))
        }
        _ => None,
    }
}

/// The `served(...)` call of a `NOT served(...)` conjunct.
fn not_served_call(e: &Expr) -> Option<&Expr> {
    not_call(e, "served").map(|(call, _)| call)
}

/// The argument of a `NOT seen(x)` conjunct.
fn not_seen_user(e: &Expr) -> Option<&ExprKind> {
    match not_call(e, "seen")? {
        (_, [user]) => Some(&user.kind),
        _ => None,
    }
}
