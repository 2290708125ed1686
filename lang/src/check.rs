//! Static checks that need no model: known retrievers, rerankers and functions, argument names
//! and literal types, aliases, where `seen` and `truncate` may appear, limits. Names that need a
//! model (policies, columns, parameter values) are resolved by the engine's planner.

use std::collections::HashSet;

use crate::ast::*;
use crate::catalog::{self, ArgType, CallSpec, Context};
use crate::error::{did_you_mean, ErrorKind, QueryError};

/// Limits a deployment may tune.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The largest LIMIT a query may ask for.
    pub max_limit: u64,
    /// The largest OFFSET.
    pub max_offset: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_limit: 1000,
            max_offset: 10_000,
        }
    }
}

fn err(message: impl Into<String>, span: crate::Span) -> QueryError {
    QueryError::new(ErrorKind::Check, message, span)
}

/// Checks a parsed query; the first problem found is returned.
pub fn check(q: &Query, options: &CheckOptions) -> Result<(), QueryError> {
    if let Select::Columns(cols) = &q.select {
        for c in cols {
            if c.parts.len() != 2 || !c.parts[0].name.eq_ignore_ascii_case("item") {
                return Err(err(
                    format!(
                        "`{}` cannot be selected; select item columns like `item.title`, or `*`",
                        c.dotted()
                    ),
                    c.span,
                ));
            }
        }
    }
    let mut aliases: Vec<String> = Vec::new();
    for call in &q.from {
        check_retriever(call)?;
        let alias = alias_of(call);
        if aliases.iter().any(|a| a.eq_ignore_ascii_case(&alias)) {
            return Err(err(
                format!("two retrievers are both called `{alias}`"),
                call.span,
            )
            .with_hint("tell them apart with name = '...'"));
        }
        aliases.push(alias);
    }
    if q.from.is_empty() {
        aliases.push("popular".into());
    }
    if let Some(f) = &q.filter {
        check_expr(f, Context::Filter, true, &aliases)?;
    }
    if let Some(Order {
        score: Score::Expr(e),
        ..
    }) = &q.order
    {
        check_expr(e, Context::Score, false, &aliases)?;
    }
    for call in &q.reorder {
        check_reranker(call)?;
    }
    if let Some(Count::Literal(n, span)) = &q.limit {
        if *n == 0 || *n > options.max_limit {
            return Err(err(
                format!("LIMIT must be between 1 and {}, got {n}", options.max_limit),
                *span,
            ));
        }
    }
    if let Some(Count::Literal(n, span)) = &q.offset {
        if *n > options.max_offset {
            return Err(err(
                format!("OFFSET must be at most {}, got {n}", options.max_offset),
                *span,
            ));
        }
    }
    Ok(())
}

/// Checks a standalone score expression (a value model): no retrievers to refer to.
pub fn check_score_expression(e: &Expr) -> Result<(), QueryError> {
    check_expr(e, Context::Score, false, &[])
}

/// The name later stages use for a retriever's scores: `name = '...'` or the retriever's name.
pub fn alias_of(call: &Call) -> String {
    match call.arg("name") {
        Some(Value::Str(s, _)) => s.clone(),
        _ => call.name.name.to_ascii_lowercase(),
    }
}

fn check_retriever(call: &Call) -> Result<(), QueryError> {
    let Some(spec) = catalog::retriever(&call.name.name) else {
        let name = &call.name.name;
        if catalog::reranker(name).is_some() {
            return Err(err(
                format!("`{name}` is a reranker, not a retriever"),
                call.name.span,
            )
            .with_hint("move it to REORDER BY"));
        }
        return Err(unknown(
            "retriever",
            name,
            call.name.span,
            catalog::RETRIEVERS,
        ));
    };
    check_args(call, spec)?;
    if spec.name == "similarity" {
        let encoder = match call.arg("encoder") {
            Some(Value::Str(s, _)) => Some(s.to_ascii_lowercase()),
            _ => None,
        };
        let needs = match encoder.as_deref() {
            Some("item") => "item",
            Some("items") => "items",
            Some(_) => "user",
            None if call.arg("item").is_some() => "item",
            None if call.arg("items").is_some() => "items",
            None => "user",
        };
        if call.arg(needs).is_none() {
            return Err(err(
                format!("similarity needs `{needs} = ...` for its encoder"),
                call.span,
            )
            .with_hint(format!("add `{needs} = ${needs}_id`")));
        }
    }
    Ok(())
}

fn check_reranker(call: &Call) -> Result<(), QueryError> {
    let Some(spec) = catalog::reranker(&call.name.name) else {
        let name = &call.name.name;
        if catalog::retriever(name).is_some() {
            return Err(err(
                format!("`{name}` is a retriever, not a reranker"),
                call.name.span,
            )
            .with_hint("move it to FROM"));
        }
        return Err(unknown(
            "reranker",
            name,
            call.name.span,
            catalog::RERANKERS,
        ));
    };
    check_args(call, spec)?;
    match spec.name {
        "diversity" if call.arg("attribute").is_some() == call.arg("embedding").is_some() => {
            Err(err(
                "diversity needs exactly one of `attribute` and `embedding`",
                call.span,
            )
            .with_hint("e.g. diversity(attribute = 'genres', strength = 0.3)"))
        }
        "pin" => match call.arg("positions") {
            Some(Value::List(items, _)) => {
                for v in items {
                    match v {
                        Value::Num(n, _) if *n >= 1.0 && n.fract() == 0.0 => {}
                        Value::Param(_) => {}
                        other => {
                            return Err(err("positions are whole numbers from 1", other.span()))
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn unknown(what: &str, name: &str, span: crate::Span, specs: &[CallSpec]) -> QueryError {
    err(format!("unknown {what} `{name}`"), span).suggesting(
        name,
        specs.iter().map(|s| s.name),
        &format!("{what}s"),
    )
}

fn check_args(call: &Call, spec: &CallSpec) -> Result<(), QueryError> {
    let mut given: HashSet<&'static str> = HashSet::new();
    for a in &call.args {
        let arg_spec = match &a.name {
            Some(n) => spec
                .args
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(&n.name))
                .ok_or_else(|| {
                    err(
                        format!("{} has no argument `{}`", spec.name, n.name),
                        n.span,
                    )
                    .suggesting(
                        &n.name,
                        spec.args.iter().map(|s| s.name),
                        "its arguments",
                    )
                })?,
            None => {
                let Some(p) = spec.positional else {
                    return Err(
                        err(format!("{} takes named arguments only", spec.name), a.span)
                            .with_hint(format!("write `{} = ...`", spec.args[0].name)),
                    );
                };
                spec.args
                    .iter()
                    .find(|s| s.name == p)
                    .expect("positional names an argument")
            }
        };
        if !given.insert(arg_spec.name) {
            return Err(err(
                format!("argument `{}` is given twice", arg_spec.name),
                a.span,
            ));
        }
        check_value(&a.value, arg_spec.ty, spec.name, arg_spec.name)?;
    }
    for s in spec.args.iter().filter(|s| s.required) {
        if !given.contains(s.name) {
            return Err(err(
                format!("{} needs `{} = ...`", spec.name, s.name),
                call.span,
            ));
        }
    }
    Ok(())
}

fn check_value(v: &Value, ty: ArgType, call: &str, arg: &str) -> Result<(), QueryError> {
    if let Value::Param(_) = v {
        return Ok(());
    }
    let wrong = |expected: &str| {
        err(
            format!("{call}({arg} = ...) takes {expected}, not {}", v.kind()),
            v.span(),
        )
    };
    match (ty, v) {
        (ArgType::Str, Value::Str(..)) => Ok(()),
        (ArgType::Str, _) => Err(wrong("a string")),
        (ArgType::Count, Value::Num(n, s)) => {
            if *n < 0.0 || n.fract() != 0.0 {
                Err(err(
                    format!("{call}({arg} = ...) takes a whole number >= 0, got {n}"),
                    *s,
                ))
            } else {
                Ok(())
            }
        }
        (ArgType::Count, _) => Err(wrong("a whole number")),
        (ArgType::Fraction, Value::Num(n, s)) => {
            if !(0.0..=1.0).contains(n) {
                Err(err(
                    format!("{call}({arg} = ...) takes a number between 0 and 1, got {n}"),
                    *s,
                ))
            } else {
                Ok(())
            }
        }
        (ArgType::Fraction, _) => Err(wrong("a number between 0 and 1")),
        (ArgType::List, Value::List(items, _)) => {
            for item in items {
                if matches!(item, Value::List(..) | Value::Call(_)) {
                    return Err(err(
                        format!("{call}({arg} = ...) takes a list of values"),
                        item.span(),
                    ));
                }
            }
            Ok(())
        }
        (ArgType::List, _) => Err(wrong("a list like ['a', 'b'] or a $parameter")),
        (ArgType::Choice(options), Value::Str(s, span)) => {
            if options.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                Ok(())
            } else {
                let e = err(
                    format!(
                        "{call}({arg} = ...) is one of {}, not '{s}'",
                        options.join(", ")
                    ),
                    *span,
                );
                Err(match did_you_mean(s, options.iter().copied()) {
                    Some(d) => e.with_hint(format!("did you mean '{d}'?")),
                    None => e,
                })
            }
        }
        (ArgType::Choice(options), _) => Err(wrong(&format!("one of {}", options.join(", ")))),
        (ArgType::Retriever, Value::Call(c)) => check_retriever(c),
        (ArgType::Retriever, _) => Err(wrong("a retriever call like popular(limit = 50)")),
    }
}

/// Literal kinds, for the few type errors visible without a schema.
#[derive(PartialEq)]
enum Lit {
    Num,
    Str,
    Bool,
    Unknown,
}

fn literal(e: &Expr) -> Lit {
    match &e.kind {
        ExprKind::Num(_) => Lit::Num,
        ExprKind::Str(_) => Lit::Str,
        ExprKind::Bool(_) => Lit::Bool,
        _ => Lit::Unknown,
    }
}

/// `conjunct`: whether `e` is reached from the top of the filter through ANDs only (where a
/// stage such as `truncate` may sit).
fn check_expr(
    e: &Expr,
    ctx: Context,
    conjunct: bool,
    aliases: &[String],
) -> Result<(), QueryError> {
    match &e.kind {
        ExprKind::Num(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Null
        | ExprKind::Param(_) => Ok(()),
        ExprKind::Path(p) => {
            let head = p.parts[0].name.to_ascii_lowercase();
            if (head == "retrieval" || head == "rank") && !aliases.is_empty() {
                let Some(alias) = p.parts.get(1) else {
                    return Err(err(
                        format!(
                            "`{head}` needs a retriever name, like `{head}.{}`",
                            aliases[0]
                        ),
                        p.span,
                    ));
                };
                if !aliases.iter().any(|a| a.eq_ignore_ascii_case(&alias.name)) {
                    return Err(err(
                        format!("no retriever is called `{}`", alias.name),
                        alias.span,
                    )
                    .suggesting(
                        &alias.name,
                        aliases.iter().map(String::as_str),
                        "retrievers",
                    ));
                }
            }
            if (head == "item" || head == "user") && p.parts.len() != 2 {
                return Err(err(
                    format!("`{head}` needs one column name, like `{head}.year`"),
                    p.span,
                ));
            }
            Ok(())
        }
        ExprKind::Call { name, args } => {
            let Some(spec) = catalog::function(&name.name) else {
                let e2 = err(format!("unknown function `{}`", name.name), name.span);
                let all = catalog::FUNCTIONS.iter().map(|f| f.name);
                return Err(match did_you_mean(&name.name, all) {
                    Some(s) => e2.with_hint(format!("did you mean `{s}`?")),
                    None => e2,
                });
            };
            if args.len() < spec.min_args || args.len() > spec.max_args {
                let expected = match (spec.min_args, spec.max_args) {
                    (a, b) if a == b => format!("{a}"),
                    (a, usize::MAX) => format!("at least {a}"),
                    (a, b) => format!("{a} to {b}"),
                };
                return Err(err(
                    format!(
                        "{}() takes {expected} argument(s), got {}",
                        spec.name,
                        args.len()
                    ),
                    e.span,
                ));
            }
            if let Some(only) = spec.only_in {
                if only != ctx {
                    return Err(err(
                        format!("{}() filters candidates: it belongs in WHERE", spec.name),
                        e.span,
                    ));
                }
            }
            match spec.name {
                "seen" if !matches!(args[0].kind, ExprKind::Param(_) | ExprKind::Str(_)) => {
                    return Err(err(
                        "seen() takes a user id: a $parameter or a string",
                        args[0].span,
                    )
                    .with_hint("seen($user_id)"));
                }
                "served" | "recent" | "affinity" => {
                    let (example, middle) = match spec.name {
                        "served" => ("NOT served($user_id, within = '1h')", None),
                        "recent" => (
                            "recent($user_id, 'like', within = '1h')",
                            Some("an event type: a string such as 'like'"),
                        ),
                        _ => (
                            "affinity($user_id, item.author, within = '7d')",
                            Some("an item column: item.<column>"),
                        ),
                    };
                    if !matches!(args[0].kind, ExprKind::Param(_) | ExprKind::Str(_)) {
                        return Err(err(
                            format!(
                                "{}() takes a user id first: a $parameter or a string",
                                spec.name
                            ),
                            args[0].span,
                        )
                        .with_hint(example));
                    }
                    let window_at = usize::from(middle.is_some()) + 1;
                    if let Some(what) = middle {
                        let ok = match (&args[1].kind, spec.name) {
                            (ExprKind::Str(_), "recent") => true,
                            (ExprKind::Path(p), "affinity") => {
                                p.parts.len() == 2 && p.parts[0].name.eq_ignore_ascii_case("item")
                            }
                            _ => false,
                        };
                        if !ok {
                            return Err(err(
                                format!("{}()'s second argument is {what}", spec.name),
                                args[1].span,
                            )
                            .with_hint(example));
                        }
                    }
                    if let Some(w) = args.get(window_at) {
                        if window_arg(w).is_none() {
                            return Err(err(
                                format!("{}()'s last argument is its time window: `within = '1h'`, a string such as '30m', or a $parameter", spec.name),
                                w.span,
                            )
                            .with_hint(example));
                        }
                    }
                    // The window is a literal or a parameter, and the column is bound later:
                    // nothing more to check here.
                    return Ok(());
                }
                "truncate" => {
                    if !conjunct {
                        return Err(err("truncate() is a stage of the filter: use it at the top level, joined with AND", e.span));
                    }
                    match &args[0].kind {
                        ExprKind::Num(n) if *n >= 1.0 && n.fract() == 0.0 => {}
                        ExprKind::Param(_) => {}
                        _ => {
                            return Err(err(
                                "truncate() takes a whole number of candidates >= 1",
                                args[0].span,
                            ))
                        }
                    }
                }
                _ => {}
            }
            for a in args {
                check_expr(a, ctx, false, aliases)?;
            }
            Ok(())
        }
        ExprKind::Unary { op, expr } => {
            if *op == UnaryOp::Neg && matches!(literal(expr), Lit::Str | Lit::Bool) {
                return Err(err("cannot negate a string or a boolean", e.span));
            }
            if *op == UnaryOp::Not && matches!(literal(expr), Lit::Str | Lit::Num) {
                return Err(err("NOT needs a condition", expr.span));
            }
            check_expr(expr, ctx, false, aliases)
        }
        ExprKind::Binary { op, lhs, rhs } => {
            let arithmetic = matches!(
                op,
                BinaryOp::Add
                    | BinaryOp::Sub
                    | BinaryOp::Mul
                    | BinaryOp::Div
                    | BinaryOp::Mod
                    | BinaryOp::Pow
            );
            if arithmetic
                && (matches!(literal(lhs), Lit::Str | Lit::Bool)
                    || matches!(literal(rhs), Lit::Str | Lit::Bool))
            {
                return Err(err(format!("`{}` needs numbers", op.symbol()), e.span));
            }
            let logical = matches!(op, BinaryOp::And | BinaryOp::Or);
            if logical {
                for side in [lhs, rhs] {
                    if matches!(literal(side), Lit::Str | Lit::Num) {
                        return Err(err(
                            format!(
                                "{} needs conditions on both sides",
                                op.symbol().to_uppercase()
                            ),
                            side.span,
                        ));
                    }
                }
            }
            let keep = conjunct && *op == BinaryOp::And;
            check_expr(lhs, ctx, keep, aliases)?;
            check_expr(rhs, ctx, keep, aliases)
        }
        ExprKind::In { expr, list, .. } => {
            check_expr(expr, ctx, false, aliases)?;
            list.iter()
                .try_for_each(|x| check_expr(x, ctx, false, aliases))
        }
        ExprKind::Between {
            expr, low, high, ..
        } => {
            for x in [expr, low, high] {
                check_expr(x, ctx, false, aliases)?;
            }
            Ok(())
        }
        ExprKind::Like { expr, pattern, .. } => {
            if !matches!(pattern.kind, ExprKind::Str(_) | ExprKind::Param(_)) {
                return Err(err(
                    "LIKE takes a pattern string such as '%love%'",
                    pattern.span,
                ));
            }
            check_expr(expr, ctx, false, aliases)
        }
        ExprKind::IsNull { expr, .. } => check_expr(expr, ctx, false, aliases),
    }
}

/// The window argument of `served`, `recent` and `affinity`: `within = '1h'`, `'1h'` or
/// `$param`, as the string or parameter it names.
pub fn window_arg(e: &Expr) -> Option<&ExprKind> {
    let value = match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::Eq,
            lhs,
            rhs,
        } if matches!(&lhs.kind, ExprKind::Path(p) if p.dotted().eq_ignore_ascii_case("within")) => {
            &rhs.kind
        }
        other => other,
    };
    matches!(value, ExprKind::Str(_) | ExprKind::Param(_)).then_some(value)
}
