//! FeedQL expressions → DataFusion expressions over named columns, once per query text and
//! version. Names resolve through [`Names`], types are checked, and what each request supplies
//! (parameters, the requesting user's columns, the clock) stays a placeholder, so a request only
//! substitutes values ([`super::eval::substitute`]) and evaluates.
//!
//! Evaluation batches name their columns `item.<col>`, `policy.<output>`, `retrieval.<alias>`,
//! `rank.<alias>`, `seen.<n>` and `value_model`, so every FeedQL path maps to exactly one column.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::functions::core::expr_fn::{coalesce, greatest, least};
use datafusion::functions::math::expr_fn::{abs, exp, ln, power, sqrt};
use datafusion::functions_nested::expr_fn::{array_has, string_to_array};
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{lit, when, Expr as DfExpr};
use datafusion::scalar::ScalarValue;
use feed_lang::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use feed_lang::{QueryError, Span};

use super::arg::Arg;
use super::names::{check_error, Names, OutputRef};
use super::params::{ParamType, ParamUse};
use super::Ty;

/// Which stage an expression belongs to; decides what it may refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `WHERE`: item and user columns, parameters, `seen()`, `truncate()`.
    Filter,
    /// `ORDER BY score(...)`: also policy outputs, retrieval scores and ranks, the value model.
    Score,
    /// The model file's value model expression: policy outputs, item columns, parameters.
    ValueModel,
}

/// What a bound expression reads; the stages fill exactly these columns.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Item columns by stored name.
    pub item_columns: BTreeSet<String>,
    pub outputs: BTreeSet<OutputRef>,
    /// Retriever aliases whose score or rank is read.
    pub retrieval: BTreeSet<String>,
    /// The requesting user's columns, with their types (a typed NULL for an unknown user).
    pub user_columns: BTreeMap<String, DataType>,
    pub params: BTreeMap<String, Vec<ParamUse>>,
    /// The users of `seen(...)`, in column order (`seen.0`, `seen.1`, ...).
    pub seen: Vec<Arg<String>>,
    /// The users and windows of `served(...)`, in column order (`served.0`, ...); a window is
    /// checked text (a literal) or read per request (a parameter).
    pub served: Vec<(Arg<String>, Arg<String>)>,
    /// `recent(...)` and `affinity(...)` inputs, in column order (`recent.0`, ...).
    pub recent: Vec<Recent>,
    /// Reads the `value_model` column.
    pub value_model: bool,
    /// Reads `now_seconds()`.
    pub now: bool,
    /// `truncate(n)` calls: the candidates are cut to the smallest.
    pub truncate: Vec<Arg<usize>>,
}

impl Needs {
    /// Whether a filter with these needs depends on nothing per request but its parameters (so
    /// its mask can be cached by their values).
    pub fn per_request(&self) -> bool {
        !self.user_columns.is_empty()
            || self.now
            || !self.seen.is_empty()
            || !self.served.is_empty()
            || !self.recent.is_empty()
    }

    /// Adds what `other` reads (a value model inside a query's score).
    pub fn merge(&mut self, other: &Needs) {
        self.item_columns.extend(other.item_columns.iter().cloned());
        for r in &other.recent {
            if !self.recent.contains(r) {
                self.recent.push(r.clone());
            }
        }
        self.outputs.extend(other.outputs.iter().cloned());
        self.retrieval.extend(other.retrieval.iter().cloned());
        self.user_columns.extend(
            other
                .user_columns
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        for (k, v) in &other.params {
            self.params
                .entry(k.clone())
                .or_default()
                .extend(v.iter().cloned());
        }
        self.now |= other.now;
    }
}

/// A bound expression: what to evaluate, its type and what it reads.
#[derive(Debug, Clone)]
pub struct Bound {
    pub expr: DfExpr,
    pub ty: Ty,
    pub span: Span,
    pub needs: Needs,
}

/// The placeholder of the requesting user's column `col`, and of the clock. Parameter
/// placeholders are `$name`; these cannot clash with a parameter name.
pub(crate) fn user_placeholder(col: &str) -> String {
    format!("$.user.{col}")
}
pub(crate) const NOW_PLACEHOLDER: &str = "$.now";

fn placeholder(id: String) -> DfExpr {
    DfExpr::Placeholder(Placeholder::new_with_field(id, None))
}

fn column(name: String) -> DfExpr {
    DfExpr::Column(Column::from_name(name))
}

/// Binds `e` for `stage`. `retrievers` are the query's retriever aliases (for `retrieval.<a>`).
/// The whole expression must be a condition (`WHERE`) or a number (a score); a bare parameter
/// takes that type.
pub fn bind(
    e: &Expr,
    stage: Stage,
    names: &Names,
    retrievers: &[String],
) -> Result<Bound, QueryError> {
    let mut b = Binder {
        names,
        stage,
        retrievers,
        needs: Needs::default(),
    };
    let (wanted, role) = match stage {
        Stage::Filter => (Ty::Bool, "the condition of WHERE"),
        Stage::Score | Stage::ValueModel => (Ty::Num, "the score"),
    };
    let (expr, ty) = b.operand(e, wanted, role)?;
    // A condition must be one; a score a number (or NULL: every item unscored). A value whose
    // type binding cannot know (a date column, a parameter in a branch) is checked when it is
    // evaluated.
    let fits = ty == wanted || ty == Ty::Any || (stage != Stage::Filter && ty == Ty::Null);
    if !fits {
        return Err(check_error(
            match stage {
                Stage::Filter => format!(
                    "WHERE needs a condition (true or false); {}",
                    describe(e, ty)
                ),
                _ => format!("a score must be a number; {}", describe(e, ty)),
            },
            e.span,
            b.cast_hint(e, wanted),
        ));
    }
    Ok(Bound {
        expr,
        ty,
        span: e.span,
        needs: b.needs,
    })
}

/// A translated expression and its type.
type Typed = (DfExpr, Ty);

struct Binder<'a> {
    names: &'a Names,
    stage: Stage,
    retrievers: &'a [String],
    needs: Needs,
}

/// What a typed side of a comparison is, for messages: "`item.year` is text".
fn describe(e: &Expr, ty: Ty) -> String {
    match &e.kind {
        ExprKind::Path(p) => format!("`{}` is {}", p.dotted(), ty.words()),
        ExprKind::Param(p) => format!("${p} is {}", ty.words()),
        _ => format!("`{}` is {}", short(e), ty.words()),
    }
}

fn short(e: &Expr) -> String {
    feed_lang::expr_sexpr(e)
}

impl Binder<'_> {
    fn param(&mut self, name: &str, ty: ParamType, what: String) -> DfExpr {
        self.needs
            .params
            .entry(name.to_string())
            .or_default()
            .push(ParamUse { ty, what });
        placeholder(format!("${name}"))
    }

    /// A fix for a text column used as a number, or the other way round.
    fn cast_hint(&self, e: &Expr, wanted: Ty) -> Option<String> {
        let ExprKind::Path(p) = &e.kind else {
            return None;
        };
        if p.parts.len() != 2 {
            return None;
        }
        let col = &p.parts[1].name;
        let (table, fetch) = match p.parts[0].name.to_ascii_lowercase().as_str() {
            "item" => ("item", "fetch.items"),
            "user" => ("user", "fetch.users"),
            _ => return None,
        };
        let _ = table;
        Some(match wanted {
            Ty::Num => format!(
                "convert it in {fetch}: `TRY_CAST({col} AS DOUBLE) AS {col}` (values that are not numbers become NULL)"
            ),
            Ty::Str => format!("convert it in {fetch}: `CAST({col} AS VARCHAR) AS {col}`"),
            _ => format!("convert it in {fetch} to {}", wanted.words()),
        })
    }

    /// `lhs op rhs` need comparable types; a parameter on one side takes the other side's.
    fn comparable(
        &mut self,
        (l, lt): (&Expr, Ty),
        (r, rt): (&Expr, Ty),
        op: &str,
    ) -> Result<(), QueryError> {
        if lt.comparable(rt) {
            return Ok(());
        }
        // Blame the stored column when there is one: that is what the user can fix.
        let (col, col_ty, other_ty) = match (&l.kind, &r.kind) {
            (ExprKind::Path(_), _) => (l, lt, rt),
            (_, ExprKind::Path(_)) => (r, rt, lt),
            _ => (l, lt, rt),
        };
        let other = if std::ptr::eq(col, l) { r } else { l };
        Err(check_error(
            format!(
                "{} and cannot be compared ({op}) with {}",
                describe(col, col_ty),
                if matches!(
                    other.kind,
                    ExprKind::Num(_) | ExprKind::Str(_) | ExprKind::Bool(_)
                ) {
                    other_ty.words().to_string()
                } else {
                    describe(other, other_ty)
                }
            ),
            col.span,
            self.cast_hint(col, other_ty),
        ))
    }

    fn expect(&self, e: &Expr, ty: Ty, wanted: Ty, role: &str) -> Result<(), QueryError> {
        if ty.fits(wanted) {
            return Ok(());
        }
        Err(check_error(
            format!("{}, but {role} needs {}", describe(e, ty), wanted.words()),
            e.span,
            self.cast_hint(e, wanted),
        ))
    }

    /// Binds an operand; a bare parameter takes the type `context` expects.
    fn operand(&mut self, e: &Expr, context: Ty, what: &str) -> Result<(DfExpr, Ty), QueryError> {
        if let ExprKind::Param(p) = &e.kind {
            let ty = if context == Ty::Null {
                Ty::Any
            } else {
                context
            };
            return Ok((self.param(p, ParamType::Scalar(ty), what.into()), ty));
        }
        self.expr(e)
    }

    /// Binds two operands of a comparison: a parameter takes the other side's type.
    fn pair(&mut self, l: &Expr, r: &Expr, op: &str) -> Result<(Typed, Typed), QueryError> {
        let lp = matches!(l.kind, ExprKind::Param(_));
        let rp = matches!(r.kind, ExprKind::Param(_));
        let (lx, rx) = match (lp, rp) {
            (false, true) => {
                let lx = self.expr(l)?;
                let what = format!("compared with `{}`", short(l));
                let rx = self.operand(r, lx.1, &what)?;
                (lx, rx)
            }
            (true, false) => {
                let rx = self.expr(r)?;
                let what = format!("compared with `{}`", short(r));
                let lx = self.operand(l, rx.1, &what)?;
                (lx, rx)
            }
            _ => (self.expr(l)?, self.expr(r)?),
        };
        self.comparable((l, lx.1), (r, rx.1), op)?;
        Ok((lx, rx))
    }

    fn expr(&mut self, e: &Expr) -> Result<(DfExpr, Ty), QueryError> {
        let span = e.span;
        Ok(match &e.kind {
            ExprKind::Num(n) => (lit(*n), Ty::Num),
            ExprKind::Str(s) => (lit(s.clone()), Ty::Str),
            ExprKind::Bool(b) => (lit(*b), Ty::Bool),
            ExprKind::Null => (lit(ScalarValue::Null), Ty::Null),
            ExprKind::Param(name) => (
                self.param(name, ParamType::Scalar(Ty::Any), "a value".into()),
                Ty::Any,
            ),
            ExprKind::Path(path) => self.path(path, span)?,
            ExprKind::Call { name, args } => {
                self.call(&name.name.to_ascii_lowercase(), args, span)?
            }
            ExprKind::Unary {
                op: UnaryOp::Neg,
                expr,
            } => {
                let (x, ty) = self.operand(expr, Ty::Num, "negated")?;
                self.expect(expr, ty, Ty::Num, "`-`")?;
                (DfExpr::Negative(Box::new(x)), Ty::Num)
            }
            ExprKind::Unary {
                op: UnaryOp::Not,
                expr,
            } => {
                let (x, ty) = self.operand(expr, Ty::Bool, "negated with NOT")?;
                self.expect(expr, ty, Ty::Bool, "NOT")?;
                (DfExpr::Not(Box::new(x)), Ty::Bool)
            }
            ExprKind::Binary { op, lhs, rhs } => match op {
                BinaryOp::Or | BinaryOp::And => {
                    let word = op.symbol().to_ascii_uppercase();
                    let what = format!("an operand of {word}");
                    let (l, lt) = self.operand(lhs, Ty::Bool, &what)?;
                    let (r, rt) = self.operand(rhs, Ty::Bool, &what)?;
                    self.expect(lhs, lt, Ty::Bool, &word)?;
                    self.expect(rhs, rt, Ty::Bool, &word)?;
                    (
                        if *op == BinaryOp::Or {
                            l.or(r)
                        } else {
                            l.and(r)
                        },
                        Ty::Bool,
                    )
                }
                BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq => {
                    let ((l, _), (r, _)) = self.pair(lhs, rhs, op.symbol())?;
                    let x = match op {
                        BinaryOp::Eq => l.eq(r),
                        BinaryOp::NotEq => l.not_eq(r),
                        BinaryOp::Lt => l.lt(r),
                        BinaryOp::LtEq => l.lt_eq(r),
                        BinaryOp::Gt => l.gt(r),
                        _ => l.gt_eq(r),
                    };
                    (x, Ty::Bool)
                }
                _ => {
                    let what = format!("an operand of `{}`", op.symbol());
                    let (l, lt) = self.operand(lhs, Ty::Num, &what)?;
                    let (r, rt) = self.operand(rhs, Ty::Num, &what)?;
                    let role = format!("`{}`", op.symbol());
                    self.expect(lhs, lt, Ty::Num, &role)?;
                    self.expect(rhs, rt, Ty::Num, &role)?;
                    let x = match op {
                        BinaryOp::Add => l + r,
                        BinaryOp::Sub => l - r,
                        BinaryOp::Mul => l * r,
                        BinaryOp::Div => l / r,
                        BinaryOp::Mod => l % r,
                        _ => power(l, r),
                    };
                    (x, Ty::Num)
                }
            },
            ExprKind::In {
                expr,
                list,
                negated,
            } => {
                let (target, ty) = self.expr(expr)?;
                let mut values = Vec::new();
                for item in list {
                    match &item.kind {
                        // A parameter may hold one value or a list of them.
                        ExprKind::Param(p) => values.push(self.param(
                            p,
                            ParamType::ScalarOrList(ty),
                            format!("in the IN list of `{}`", short(expr)),
                        )),
                        _ => {
                            let (v, vt) = self.expr(item)?;
                            self.comparable((expr, ty), (item, vt), "IN")?;
                            values.push(v);
                        }
                    }
                }
                (target.in_list(values, *negated), Ty::Bool)
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let ((x, _), (lo, _)) = self.pair(expr, low, "BETWEEN")?;
                let (_, (hi, _)) = self.pair(expr, high, "BETWEEN")?;
                let x = if *negated {
                    x.not_between(lo, hi)
                } else {
                    x.between(lo, hi)
                };
                (x, Ty::Bool)
            }
            ExprKind::Like {
                expr,
                pattern,
                negated,
            } => {
                let (x, xt) = self.operand(expr, Ty::Str, "matched with LIKE")?;
                let (p, pt) = self.operand(pattern, Ty::Str, "a LIKE pattern")?;
                self.expect(expr, xt, Ty::Str, "LIKE")?;
                self.expect(pattern, pt, Ty::Str, "a LIKE pattern")?;
                (if *negated { x.not_like(p) } else { x.like(p) }, Ty::Bool)
            }
            ExprKind::IsNull { expr, negated } => {
                let (x, _) = self.expr(expr)?;
                (
                    if *negated {
                        x.is_not_null()
                    } else {
                        x.is_null()
                    },
                    Ty::Bool,
                )
            }
        })
    }

    fn path(
        &mut self,
        path: &feed_lang::ast::Path,
        span: Span,
    ) -> Result<(DfExpr, Ty), QueryError> {
        let head = path.parts[0].name.to_ascii_lowercase();
        let second = path.parts.get(1);
        match (head.as_str(), second) {
            ("item", Some(col)) => {
                let (name, ty) = self.names.item(&col.name, col.span)?;
                let (name, ty) = (name.to_string(), Ty::of(ty));
                self.needs.item_columns.insert(name.clone());
                Ok((column(format!("item.{name}")), ty))
            }
            ("user", Some(col)) => {
                let (name, ty) = self.names.user(&col.name, col.span)?;
                let (name, dt) = (name.to_string(), ty.clone());
                self.needs.user_columns.insert(name.clone(), dt.clone());
                Ok((placeholder(user_placeholder(&name)), Ty::of(&dt)))
            }
            ("retrieval" | "rank", Some(alias)) => {
                if self.stage != Stage::Score {
                    return Err(check_error(
                        "retrieval scores and ranks exist after retrieval: use them in ORDER BY",
                        span,
                        None,
                    ));
                }
                let written = alias.name.to_ascii_lowercase();
                if !self
                    .retrievers
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&written))
                {
                    let hint = feed_lang::did_you_mean(
                        &written,
                        self.retrievers.iter().map(String::as_str),
                    )
                    .map(|s| format!("did you mean `{head}.{s}`?"))
                    .or_else(|| {
                        Some(format!(
                            "the query's retrievers: {}",
                            self.retrievers.join(", ")
                        ))
                    });
                    return Err(check_error(
                        format!("no retriever of this query is called `{}`", alias.name),
                        alias.span,
                        hint,
                    ));
                }
                self.needs.retrieval.insert(written.clone());
                Ok((column(format!("{head}.{written}")), Ty::Num))
            }
            ("value_model", None) => match self.stage {
                Stage::Filter => Err(check_error(
                    "the value model scores; use it in ORDER BY score(value_model)",
                    span,
                    None,
                )),
                Stage::ValueModel => Err(check_error(
                    "the value model cannot refer to itself",
                    span,
                    None,
                )),
                Stage::Score => {
                    self.needs.value_model = true;
                    Ok((column("value_model".into()), Ty::Num))
                }
            },
            _ => {
                // A policy output.
                let output = match self.names.output(&path.parts, span) {
                    Ok(o) => o,
                    Err(mut e) if path.parts.len() == 1 && e.message.starts_with("no policy") => {
                        e.hint = e
                            .hint
                            .filter(|h| h.starts_with("did you mean"))
                            .or_else(|| {
                                Some("write item.<column>, user.<column> or a policy name".into())
                            });
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                };
                if self.stage == Stage::Filter {
                    return Err(check_error(
                        "policy scores belong in ORDER BY score(...)",
                        span,
                        None,
                    ));
                }
                let col = column(format!("policy.{}", output.name));
                self.needs.outputs.insert(output);
                Ok((col, Ty::Num))
            }
        }
    }

    /// The window argument of `served`, `recent` or `affinity` (the longest when absent): a
    /// literal checked now, or a parameter read per request.
    fn window(&mut self, e: Option<&Expr>, what: &str) -> Result<Arg<String>, QueryError> {
        let Some(w) = e else {
            return Ok(Arg::Lit(LIVE_DEFAULT.to_string()));
        };
        match feed_lang::window_arg(w) {
            Some(ExprKind::Str(s)) => {
                check_live_window(s.as_str())
                    .map_err(|m| check_error(m, w.span, Some(super::WINDOW_HINT.into())))?;
                Ok(Arg::Lit(s.clone()))
            }
            Some(ExprKind::Param(p)) => {
                self.param(
                    p,
                    ParamType::Scalar(Ty::Str),
                    format!("the window of {what}"),
                );
                Ok(Arg::Param(p.clone()))
            }
            _ => Err(check_error(
                format!("the last argument of {what} is its window: `within = '1h'`"),
                w.span,
                None,
            )),
        }
    }

    fn id_arg(&mut self, e: &Expr, what: &str) -> Result<Arg<String>, QueryError> {
        match &e.kind {
            ExprKind::Str(s) => Ok(Arg::Lit(s.clone())),
            ExprKind::Num(n) if n.fract() == 0.0 => Ok(Arg::Lit(format!("{}", *n as i64))),
            ExprKind::Param(p) => {
                self.param(p, ParamType::Id, what.into());
                Ok(Arg::Param(p.clone()))
            }
            _ => Err(check_error(format!("{what} takes a user id"), e.span, None)),
        }
    }

    /// Binds every argument as a number (math functions).
    fn numbers(&mut self, name: &str, args: &[Expr]) -> Result<Vec<DfExpr>, QueryError> {
        args.iter()
            .map(|a| {
                let (x, ty) = self.operand(a, Ty::Num, &format!("an argument of {name}()"))?;
                self.expect(a, ty, Ty::Num, &format!("{name}()"))?;
                Ok(x)
            })
            .collect()
    }

    fn call(&mut self, name: &str, args: &[Expr], span: Span) -> Result<(DfExpr, Ty), QueryError> {
        Ok(match name {
            "seen" => {
                if self.stage != Stage::Filter {
                    return Err(check_error("seen() belongs in WHERE", span, None));
                }
                let user = self.id_arg(&args[0], "seen()")?;
                let i = match self.needs.seen.iter().position(|u| *u == user) {
                    Some(i) => i,
                    None => {
                        self.needs.seen.push(user);
                        self.needs.seen.len() - 1
                    }
                };
                (column(format!("seen.{i}")), Ty::Bool)
            }
            "served" => {
                if self.stage != Stage::Filter {
                    return Err(check_error("served() belongs in WHERE", span, None));
                }
                let user = self.id_arg(&args[0], "served()")?;
                let window = self.window(args.get(1), "served()")?;
                let key = (user, window);
                let i = match self.needs.served.iter().position(|u| *u == key) {
                    Some(i) => i,
                    None => {
                        self.needs.served.push(key);
                        self.needs.served.len() - 1
                    }
                };
                (column(format!("served.{i}")), Ty::Bool)
            }
            "recent" | "affinity" => {
                if self.stage == Stage::ValueModel {
                    return Err(check_error(
                        format!("{name}() reads a user's events: use it in a query"),
                        span,
                        None,
                    ));
                }
                let what = format!("{name}()");
                let user = self.id_arg(&args[0], &what)?;
                let window = self.window(args.get(2), &what)?;
                let input = match (name, &args[1].kind) {
                    ("recent", ExprKind::Str(kind))
                        if !self.names.event_types.is_empty()
                            && !self.names.event_types.contains(kind)
                            && kind != crate::config::IMPRESSION =>
                    {
                        let types = &self.names.event_types;
                        let hint = feed_lang::did_you_mean(kind, types.iter().map(String::as_str))
                            .map(|s| format!("did you mean '{s}'?"))
                            .unwrap_or_else(|| format!("the model's event types: {}", types.join(", ")));
                        return Err(check_error(
                            format!("`{kind}` is not an event type of this model (`events.types`)"),
                            args[1].span,
                            Some(hint),
                        ));
                    }
                    ("recent", ExprKind::Str(kind)) => Recent::Count {
                        user,
                        kind: kind.clone(),
                        window,
                    },
                    ("affinity", ExprKind::Path(p))
                        if p.parts.len() == 2 && p.parts[0].name.eq_ignore_ascii_case("item") =>
                    {
                        let (column, _) = self.names.item(&p.parts[1].name, p.parts[1].span)?;
                        Recent::Affinity {
                            user,
                            column: column.to_string(),
                            window,
                        }
                    }
                    _ => {
                        return Err(check_error(
                            format!("{name}()'s second argument is an event type ('like') for recent(), an item column for affinity()"),
                            args[1].span,
                            None,
                        ))
                    }
                };
                let i = match self.needs.recent.iter().position(|r| *r == input) {
                    Some(i) => i,
                    None => {
                        self.needs.recent.push(input);
                        self.needs.recent.len() - 1
                    }
                };
                (column(format!("recent.{i}")), Ty::Num)
            }
            "truncate" => {
                let n = match &args[0].kind {
                    ExprKind::Num(n) if *n >= 1.0 && n.fract() == 0.0 => Arg::Lit(*n as usize),
                    ExprKind::Param(p) => {
                        self.param(p, ParamType::Position, "truncate()".into());
                        Arg::Param(p.clone())
                    }
                    _ => {
                        return Err(check_error(
                            "truncate() takes a whole number >= 1",
                            args[0].span,
                            None,
                        ))
                    }
                };
                self.needs.truncate.push(n);
                (lit(true), Ty::Bool)
            }
            "contains" => {
                let (haystack, ht) = self.expr(&args[0])?;
                // A list's elements may be numbers; `|`-separated text holds text.
                let context = if ht == Ty::List { Ty::Any } else { Ty::Str };
                let (needle, nt) = self.operand(&args[1], context, "contains()")?;
                match ht {
                    Ty::List => (array_has(haystack, needle), Ty::Bool),
                    Ty::Str | Ty::Any | Ty::Null => {
                        self.expect(&args[1], nt, Ty::Str, "contains() on text")?;
                        // Multi-valued text: values separated by `|`.
                        let list =
                            string_to_array(haystack, lit("|"), lit(ScalarValue::Utf8(None)));
                        (array_has(list, needle), Ty::Bool)
                    }
                    other => {
                        return Err(check_error(
                            format!(
                                "{}, but contains() looks into a list or `|`-separated text",
                                describe(&args[0], other)
                            ),
                            args[0].span,
                            None,
                        ))
                    }
                }
            }
            "coalesce" => {
                let mut out = Vec::new();
                let mut ty = Ty::Null;
                for a in args {
                    let (x, t) = self.operand(a, ty, "an argument of coalesce()")?;
                    if !t.comparable(ty) {
                        return Err(check_error(
                            format!("{}, unlike the arguments before it", describe(a, t)),
                            a.span,
                            None,
                        ));
                    }
                    if ty == Ty::Null {
                        ty = t;
                    }
                    out.push(x);
                }
                (coalesce(out), ty)
            }
            "if" => {
                let (c, ct) = self.operand(&args[0], Ty::Bool, "the condition of if()")?;
                self.expect(&args[0], ct, Ty::Bool, "the condition of if()")?;
                let (a, at) = self.expr(&args[1])?;
                let (b, bt) = self.operand(&args[2], at, "a branch of if()")?;
                if !at.comparable(bt) {
                    return Err(check_error(
                        format!(
                            "the branches of if() differ: {} and {}",
                            describe(&args[1], at),
                            describe(&args[2], bt)
                        ),
                        span,
                        None,
                    ));
                }
                let x = when(c, a)
                    .otherwise(b)
                    .map_err(|e| check_error(format!("if(): {e}"), span, None))?;
                (x, if at == Ty::Null { bt } else { at })
            }
            "log" | "exp" | "sqrt" | "abs" => {
                let x = self.numbers(name, args)?.remove(0);
                let f = match name {
                    "log" => ln(x),
                    "exp" => exp(x),
                    "sqrt" => sqrt(x),
                    _ => abs(x),
                };
                (f, Ty::Num)
            }
            "pow" => {
                let mut xs = self.numbers(name, args)?;
                let y = xs.pop().expect("two arguments");
                (power(xs.pop().expect("two arguments"), y), Ty::Num)
            }
            "min" => (least(self.numbers(name, args)?), Ty::Num),
            "max" => (greatest(self.numbers(name, args)?), Ty::Num),
            "clamp" => {
                let mut xs = self.numbers(name, args)?.into_iter();
                let (x, lo, hi) = (
                    xs.next().expect("checked"),
                    xs.next().expect("checked"),
                    xs.next().expect("checked"),
                );
                (greatest(vec![lo, least(vec![x, hi])]), Ty::Num)
            }
            "now_seconds" => {
                self.needs.now = true;
                (placeholder(NOW_PLACEHOLDER.into()), Ty::Num)
            }
            other => {
                return Err(check_error(
                    format!("unknown function `{other}`"),
                    span,
                    None,
                ))
            }
        })
    }
}

/// A score input from the user's recent live events.
#[derive(Debug, Clone, PartialEq)]
pub enum Recent {
    /// `recent(user, 'type', within)`: how many events of the type the user sent in the window.
    Count {
        user: Arg<String>,
        kind: String,
        window: Arg<String>,
    },
    /// `affinity(user, item.column, within)`: the share of the user's interactions in the
    /// window whose item has a value of `column` the candidate has too.
    Affinity {
        user: Arg<String>,
        column: String,
        window: Arg<String>,
    },
}

impl Recent {
    pub fn user(&self) -> &Arg<String> {
        match self {
            Recent::Count { user, .. } | Recent::Affinity { user, .. } => user,
        }
    }

    pub fn window(&self) -> &Arg<String> {
        match self {
            Recent::Count { window, .. } | Recent::Affinity { window, .. } => window,
        }
    }
}

/// The window of `served()`, `recent()` and `affinity()` without one: all the server keeps.
pub const LIVE_DEFAULT: &str = "1d";
/// The longest window over live events, in seconds: how long the server keeps an event after a
/// version trained on it (impressions, which no version holds, as long).
pub const LIVE_HORIZON: i64 = 86_400;

/// A window over live events in seconds, or what is wrong with it.
pub fn check_live_window(text: &str) -> std::result::Result<i64, String> {
    match super::window_seconds(text) {
        None => Err(format!("`{text}` is not a time window")),
        Some(s) if s > LIVE_HORIZON => Err(format!(
            "live events are kept for a day: a window of at most '1d', not `{text}`"
        )),
        Some(s) => Ok(s),
    }
}
