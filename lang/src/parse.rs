//! Text → AST. pest does the grammar (`feedql.pest`); this module turns its pairs into the
//! typed tree and its errors into messages a person can act on.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser;
use pest_derive::Parser;

use crate::ast::*;
use crate::catalog;
use crate::error::{did_you_mean, ErrorKind, QueryError};
use crate::Span;

#[derive(Parser)]
#[grammar = "feedql.pest"]
struct FeedQl;

/// Queries longer than this are refused before parsing.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
/// Nesting deeper than this (parentheses, lists) is refused before parsing, so that no input
/// can exhaust the stack.
pub const MAX_NESTING: usize = 64;
/// More operators than this (arithmetic, AND, OR, NOT) are refused: each can deepen the tree.
pub const MAX_OPERATORS: usize = 512;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Parses a whole query.
pub fn parse_query(text: &str) -> Result<Query, QueryError> {
    guard(text)?;
    let mut pairs = FeedQl::parse(Rule::query, text).map_err(|e| syntax_error(text, e))?;
    let pair = pairs.next().ok_or_else(|| internal(text))?;
    build_query(pair)
}

/// Parses a score expression on its own (a value model's `expression`).
pub fn parse_expression(text: &str) -> Result<Expr, QueryError> {
    guard(text)?;
    let mut pairs = FeedQl::parse(Rule::expression, text).map_err(|e| syntax_error(text, e))?;
    let pair = pairs.next().ok_or_else(|| internal(text))?;
    let inner = pair.into_inner().next().ok_or_else(|| internal(text))?;
    build_expr(inner)
}

fn internal(text: &str) -> QueryError {
    QueryError::new(
        ErrorKind::Syntax,
        "the parser produced no tree (a bug in Feed)",
        Span::new(0, text.len()),
    )
}

fn guard(text: &str) -> Result<(), QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(QueryError::new(
            ErrorKind::Limit,
            format!(
                "the query is {} bytes long; at most {MAX_QUERY_BYTES} are accepted",
                text.len()
            ),
            Span::new(MAX_QUERY_BYTES.min(text.len()), text.len()),
        )
        .with_hint("pass long lists as $parameters instead of literals"));
    }
    // Bounds on what recursive consumers of the tree will face: bracket depth, and the number
    // of operators (each can add a level to the tree, e.g. `1+1+…` or `- - …`). Strings and
    // comments are skipped; words count only when whole.
    let bytes = text.as_bytes();
    let (mut depth, mut operators, mut i) = (0usize, 0usize, 0usize);
    let word_at = |i: usize, w: &[u8]| {
        let end = i + w.len();
        end <= bytes.len()
            && bytes[i..end].eq_ignore_ascii_case(w)
            && (i == 0 || !is_word(bytes[i - 1]))
            && (end == bytes.len() || !is_word(bytes[end]))
    };
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' => {
                // Skip the string; a doubled quote stays inside it.
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\'' {
                        if i + 1 < bytes.len() && bytes[i + 1] == b'\'' {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if i + 1 < bytes.len() && bytes[i + 1] == b'-' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => operators += 1,
            _ if word_at(i, b"not") || word_at(i, b"and") || word_at(i, b"or") => operators += 1,
            _ => {}
        }
        if depth > MAX_NESTING || operators > MAX_OPERATORS {
            let what = if depth > MAX_NESTING {
                format!("the query nests more than {MAX_NESTING} levels deep")
            } else {
                format!("the query has more than {MAX_OPERATORS} operators")
            };
            return Err(QueryError::new(ErrorKind::Limit, what, Span::new(i, i + 1))
                .with_hint("simplify the expression"));
        }
        i += 1;
    }
    Ok(())
}

/// A person's name for a grammar rule, or None for rules never worth mentioning.
fn friendly(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::kw_select => "SELECT",
        Rule::kw_from => "FROM",
        Rule::kw_where => "WHERE",
        Rule::kw_order => "ORDER BY",
        Rule::kw_reorder => "REORDER BY",
        Rule::kw_by => "BY",
        Rule::kw_limit => "LIMIT",
        Rule::kw_offset => "OFFSET",
        Rule::kw_and => "AND",
        Rule::kw_or => "OR",
        Rule::kw_not | Rule::negated | Rule::not_op => "NOT",
        Rule::kw_in | Rule::in_pred => "IN",
        Rule::kw_between | Rule::between_pred => "BETWEEN",
        Rule::kw_like | Rule::like_pred => "LIKE",
        Rule::kw_is | Rule::null_pred => "IS",
        Rule::kw_null => "NULL",
        Rule::kw_true | Rule::kw_false => "a boolean",
        Rule::kw_desc | Rule::kw_asc | Rule::direction => "DESC or ASC",
        Rule::kw_score | Rule::score_call => "score(...)",
        Rule::EOI => "the end of the query",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::equals => "`=`",
        Rule::star => "`*`",
        Rule::select_item | Rule::path => "a name like item.title",
        Rule::ident | Rule::field => "a name",
        Rule::call => "a call like popular(limit = 100)",
        Rule::arg | Rule::named | Rule::value => "an argument",
        Rule::list => "a list [...]",
        Rule::string | Rule::string_body => "a string",
        Rule::number | Rule::signed_number | Rule::integer => "a number",
        Rule::count => "a number or a $parameter",
        Rule::param | Rule::param_name => "a $parameter",
        Rule::cmp_op | Rule::comparison => "a comparison",
        Rule::add_op | Rule::mul_op => "an operator",
        Rule::expr
        | Rule::or_expr
        | Rule::and_expr
        | Rule::not_expr
        | Rule::predicate
        | Rule::sum
        | Rule::product
        | Rule::unary
        | Rule::power
        | Rule::primary
        | Rule::func_call
        | Rule::neg => "an expression",
        _ => return None,
    })
}

/// The keyword a rule stands for (`ORDER` for ORDER BY), for did-you-mean on misspelt keywords.
fn keyword_of(rule: Rule) -> Option<&'static str> {
    let name = friendly(rule)?;
    let word = name.split(|c: char| !c.is_ascii_alphabetic()).next()?;
    let keyword =
        word.len() > 1 && (word.bytes().all(|b| b.is_ascii_uppercase()) || word == "score");
    keyword.then_some(word)
}

fn syntax_error(text: &str, e: pest::error::Error<Rule>) -> QueryError {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let positives = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let mut names: Vec<&str> = Vec::new();
    for r in &positives {
        if let Some(n) = friendly(*r) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let rest = &text[pos.min(text.len())..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let (found, width) = if rest.is_empty() {
        ("the end of the query".to_string(), 1)
    } else if !word.is_empty() {
        (format!("`{word}`"), word.len())
    } else {
        let c = rest.chars().next().unwrap_or(' ');
        (format!("`{c}`"), c.len_utf8())
    };
    let message = if names.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {} but found {found}", join_or(&names))
    };
    let mut err = QueryError::new(ErrorKind::Syntax, message, Span::new(pos, pos + width));
    if !word.is_empty() {
        let mut candidates: Vec<&str> = positives.iter().filter_map(|r| keyword_of(*r)).collect();
        if positives.iter().any(|r| {
            matches!(
                r,
                Rule::call
                    | Rule::ident
                    | Rule::func_call
                    | Rule::path
                    | Rule::expr
                    | Rule::primary
            )
        }) {
            candidates.extend(catalog::all_names());
        }
        if let Some(s) = did_you_mean(&word, candidates) {
            if !s.eq_ignore_ascii_case(&word) {
                err = err.with_hint(format!("did you mean `{s}`?"));
            }
        }
    }
    err
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn span(p: &Pair<Rule>) -> Span {
    p.as_span().into()
}

fn ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span(&p),
    }
}

fn build_query(pair: Pair<Rule>) -> Result<Query, QueryError> {
    let mut q = Query {
        select: Select::All(Span::default()),
        from: Vec::new(),
        filter: None,
        order: None,
        reorder: Vec::new(),
        limit: None,
        offset: None,
        span: span(&pair),
    };
    for clause in pair.into_inner() {
        match clause.as_rule() {
            Rule::select_clause => {
                let items: Vec<Pair<Rule>> = clause
                    .into_inner()
                    .filter(|p| matches!(p.as_rule(), Rule::star | Rule::select_item))
                    .collect();
                q.select = match items.first() {
                    Some(p) if p.as_rule() == Rule::star => Select::All(span(p)),
                    _ => Select::Columns(
                        items
                            .into_iter()
                            .filter_map(|p| p.into_inner().next())
                            .map(build_path)
                            .collect(),
                    ),
                };
            }
            Rule::from_clause => q.from = calls(clause)?,
            Rule::where_clause => {
                if let Some(e) = clause.into_inner().find(|p| p.as_rule() == Rule::expr) {
                    q.filter = Some(build_expr(e)?);
                }
            }
            Rule::order_clause => {
                let s = span(&clause);
                let mut score = None;
                let mut descending = true;
                for p in clause.into_inner() {
                    match p.as_rule() {
                        Rule::score_call => {
                            if let Some(e) = p.into_inner().find(|p| p.as_rule() == Rule::expr) {
                                let e = build_expr(e)?;
                                score = Some(match &e.kind {
                                    ExprKind::Path(path)
                                        if path.dotted().eq_ignore_ascii_case("value_model") =>
                                    {
                                        Score::ValueModel(e.span)
                                    }
                                    _ => Score::Expr(e),
                                });
                            }
                        }
                        Rule::direction => descending = p.as_str().eq_ignore_ascii_case("desc"),
                        _ => {}
                    }
                }
                if let Some(score) = score {
                    q.order = Some(Order {
                        score,
                        descending,
                        span: s,
                    });
                }
            }
            Rule::reorder_clause => q.reorder = calls(clause)?,
            Rule::limit_clause => {
                let mut counts = clause.into_inner().filter(|p| p.as_rule() == Rule::count);
                if let Some(c) = counts.next() {
                    q.limit = Some(build_count(c)?);
                }
                if let Some(c) = counts.next() {
                    q.offset = Some(build_count(c)?);
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

fn calls(clause: Pair<Rule>) -> Result<Vec<Call>, QueryError> {
    clause
        .into_inner()
        .filter(|p| p.as_rule() == Rule::call)
        .map(build_call)
        .collect()
}

fn build_count(p: Pair<Rule>) -> Result<Count, QueryError> {
    let inner = p.into_inner().next().expect("count has one child");
    match inner.as_rule() {
        Rule::param => Ok(Count::Param(param_ident(inner))),
        _ => inner
            .as_str()
            .parse::<u64>()
            .map(|n| Count::Literal(n, span(&inner)))
            .map_err(|_| {
                QueryError::new(
                    ErrorKind::Syntax,
                    format!("`{}` is too large", inner.as_str()),
                    span(&inner),
                )
            }),
    }
}

fn param_ident(p: Pair<Rule>) -> Ident {
    let s = span(&p);
    let name = p
        .into_inner()
        .next()
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    Ident { name, span: s }
}

fn build_path(p: Pair<Rule>) -> Path {
    let s = span(&p);
    Path {
        parts: p.into_inner().map(ident).collect(),
        span: s,
    }
}

fn build_call(p: Pair<Rule>) -> Result<Call, QueryError> {
    let s = span(&p);
    let mut inner = p.into_inner();
    let name = ident(inner.next().expect("call has a name"));
    let mut args = Vec::new();
    for arg in inner.filter(|p| p.as_rule() == Rule::arg) {
        let a_span = span(&arg);
        let node = arg.into_inner().next().expect("arg has a child");
        args.push(match node.as_rule() {
            Rule::named => {
                let mut kv = node.into_inner();
                let key = ident(kv.next().expect("named has a key"));
                let value = build_value(
                    kv.find(|p| p.as_rule() == Rule::value)
                        .expect("named has a value"),
                )?;
                Arg {
                    name: Some(key),
                    value,
                    span: a_span,
                }
            }
            _ => Arg {
                name: None,
                value: build_value(node)?,
                span: a_span,
            },
        });
    }
    Ok(Call {
        name,
        args,
        span: s,
    })
}

fn build_value(p: Pair<Rule>) -> Result<Value, QueryError> {
    let p = if p.as_rule() == Rule::value {
        p.into_inner().next().expect("value has a child")
    } else {
        p
    };
    let s = span(&p);
    Ok(match p.as_rule() {
        Rule::list => Value::List(
            p.into_inner()
                .filter(|c| c.as_rule() == Rule::value)
                .map(build_value)
                .collect::<Result<_, _>>()?,
            s,
        ),
        Rule::call => Value::Call(build_call(p)?),
        Rule::signed_number => Value::Num(number(&p)?, s),
        Rule::string => Value::Str(string(p), s),
        Rule::kw_true => Value::Bool(true, s),
        Rule::kw_false => Value::Bool(false, s),
        Rule::param => Value::Param(param_ident(p)),
        r => {
            return Err(QueryError::new(
                ErrorKind::Syntax,
                format!("unexpected {r:?} in an argument (a bug in Feed)"),
                s,
            ))
        }
    })
}

fn number(p: &Pair<Rule>) -> Result<f64, QueryError> {
    match p.as_str().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(QueryError::new(
            ErrorKind::Syntax,
            format!("`{}` is not a finite number", p.as_str()),
            span(p),
        )),
    }
}

fn string(p: Pair<Rule>) -> String {
    p.into_inner()
        .next()
        .map(|b| b.as_str().replace("''", "'"))
        .unwrap_or_default()
}

fn expr(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let s = lhs.span.to(rhs.span);
    expr(
        ExprKind::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        s,
    )
}

fn build_expr(p: Pair<Rule>) -> Result<Expr, QueryError> {
    let s = span(&p);
    match p.as_rule() {
        Rule::expr => build_expr(p.into_inner().next().expect("expr has a child")),
        Rule::or_expr | Rule::and_expr => {
            let op = if p.as_rule() == Rule::or_expr {
                BinaryOp::Or
            } else {
                BinaryOp::And
            };
            let mut operands = p
                .into_inner()
                .filter(|c| !matches!(c.as_rule(), Rule::kw_or | Rule::kw_and));
            let mut acc = build_expr(operands.next().expect("at least one operand"))?;
            for c in operands {
                acc = binary(op, acc, build_expr(c)?);
            }
            Ok(acc)
        }
        Rule::not_expr => {
            let mut inner = p.into_inner();
            let first = inner.next().expect("not_expr has a child");
            if first.as_rule() == Rule::not_op {
                let operand = build_expr(inner.next().expect("NOT has an operand"))?;
                Ok(expr(
                    ExprKind::Unary {
                        op: UnaryOp::Not,
                        expr: Box::new(operand),
                    },
                    s,
                ))
            } else {
                build_expr(first)
            }
        }
        Rule::predicate => {
            let mut inner = p.into_inner();
            let lhs = build_expr(inner.next().expect("predicate has a left side"))?;
            let Some(tail) = inner.next() else {
                return Ok(lhs);
            };
            build_predicate(lhs, tail, s)
        }
        Rule::sum | Rule::product => {
            let mut inner = p.into_inner();
            let mut acc = build_expr(inner.next().expect("operand"))?;
            while let Some(op) = inner.next() {
                let op = match op.as_str() {
                    "+" => BinaryOp::Add,
                    "-" => BinaryOp::Sub,
                    "*" => BinaryOp::Mul,
                    "/" => BinaryOp::Div,
                    _ => BinaryOp::Mod,
                };
                acc = binary(
                    op,
                    acc,
                    build_expr(inner.next().expect("operand after operator"))?,
                );
            }
            Ok(acc)
        }
        Rule::unary => {
            let parts: Vec<Pair<Rule>> = p.into_inner().collect();
            let (negs, rest) = parts.split_at(parts.len() - 1);
            let mut e = build_expr(rest[0].clone())?;
            for n in negs.iter().rev() {
                let ns = span(n).to(e.span);
                e = expr(
                    ExprKind::Unary {
                        op: UnaryOp::Neg,
                        expr: Box::new(e),
                    },
                    ns,
                );
            }
            Ok(e)
        }
        Rule::power => {
            let mut inner = p.into_inner();
            let base = build_expr(inner.next().expect("base"))?;
            match inner.next() {
                Some(exp) => Ok(binary(BinaryOp::Pow, base, build_expr(exp)?)),
                None => Ok(base),
            }
        }
        Rule::primary => build_expr(
            p.into_inner()
                .find(|c| !matches!(c.as_rule(), Rule::lparen | Rule::rparen))
                .expect("primary has a child"),
        ),
        Rule::number => Ok(expr(ExprKind::Num(number(&p)?), s)),
        Rule::string => Ok(expr(ExprKind::Str(string(p)), s)),
        Rule::kw_true => Ok(expr(ExprKind::Bool(true), s)),
        Rule::kw_false => Ok(expr(ExprKind::Bool(false), s)),
        Rule::kw_null => Ok(expr(ExprKind::Null, s)),
        Rule::param => Ok(expr(ExprKind::Param(param_ident(p).name), s)),
        Rule::path => Ok(expr(ExprKind::Path(build_path(p)), s)),
        Rule::func_call => {
            let mut inner = p.into_inner();
            let name = ident(inner.next().expect("function name"));
            let args = inner
                .filter(|c| c.as_rule() == Rule::expr)
                .map(build_expr)
                .collect::<Result<_, _>>()?;
            Ok(expr(ExprKind::Call { name, args }, s))
        }
        r => Err(QueryError::new(
            ErrorKind::Syntax,
            format!("unexpected {r:?} in an expression (a bug in Feed)"),
            s,
        )),
    }
}

fn build_predicate(lhs: Expr, tail: Pair<Rule>, s: Span) -> Result<Expr, QueryError> {
    let rule = tail.as_rule();
    let parts: Vec<Pair<Rule>> = tail.into_inner().collect();
    let negated = parts.iter().any(|p| p.as_rule() == Rule::negated);
    let operands: Vec<Pair<Rule>> = parts
        .iter()
        .filter(|p| matches!(p.as_rule(), Rule::sum | Rule::expr))
        .cloned()
        .collect();
    let lhs = Box::new(lhs);
    Ok(match rule {
        Rule::comparison => {
            let op = match parts[0].as_str() {
                "=" | "==" => BinaryOp::Eq,
                "!=" | "<>" => BinaryOp::NotEq,
                "<" => BinaryOp::Lt,
                "<=" => BinaryOp::LtEq,
                ">" => BinaryOp::Gt,
                _ => BinaryOp::GtEq,
            };
            let rhs = build_expr(operands[0].clone())?;
            expr(
                ExprKind::Binary {
                    op,
                    lhs,
                    rhs: Box::new(rhs),
                },
                s,
            )
        }
        Rule::in_pred => {
            let list = operands
                .into_iter()
                .map(build_expr)
                .collect::<Result<_, _>>()?;
            expr(
                ExprKind::In {
                    expr: lhs,
                    list,
                    negated,
                },
                s,
            )
        }
        Rule::between_pred => {
            let low = Box::new(build_expr(operands[0].clone())?);
            let high = Box::new(build_expr(operands[1].clone())?);
            expr(
                ExprKind::Between {
                    expr: lhs,
                    low,
                    high,
                    negated,
                },
                s,
            )
        }
        Rule::like_pred => {
            let pattern = Box::new(build_expr(operands[0].clone())?);
            expr(
                ExprKind::Like {
                    expr: lhs,
                    pattern,
                    negated,
                },
                s,
            )
        }
        _ => expr(ExprKind::IsNull { expr: lhs, negated }, s),
    })
}
