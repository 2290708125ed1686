//! Name binding without data: checks that a query names only columns the fetch yields and
//! policies the model declares, so that a broken saved query fails `validate` and
//! `create-model` instead of its first request.

use feed_lang::ast::{Call, Expr, ExprKind, Query, Score, Select, Value};
use feed_lang::{did_you_mean, ErrorKind, QueryError, Span};

/// What a model offers to name.
pub struct Names<'a> {
    pub item_columns: &'a [String],
    pub user_columns: &'a [String],
    /// Policies, and whether each has vectors (for similarity and diversity).
    pub policies: &'a [(String, bool)],
}

fn err(message: String, span: Span, hint: Option<String>) -> QueryError {
    let mut e = QueryError::new(ErrorKind::Check, message, span);
    e.hint = hint;
    e
}

impl Names<'_> {
    fn item(&self, name: &str, span: Span) -> Result<(), QueryError> {
        if self
            .item_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
        {
            return Ok(());
        }
        let hint = did_you_mean(name, self.item_columns.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"));
        Err(err(
            format!("the items have no column `{name}`"),
            span,
            hint,
        ))
    }

    fn policy(&self, name: &str, span: Span, needs_vectors: bool) -> Result<(), QueryError> {
        match self
            .policies
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(name))
        {
            Some((_, has)) if !needs_vectors || *has => Ok(()),
            Some(_) => Err(err(format!("policy `{name}` has no vectors"), span, None)),
            None => {
                let hint = did_you_mean(name, self.policies.iter().map(|p| p.0.as_str()))
                    .map(|s| format!("did you mean `{s}`?"));
                Err(err(format!("no policy is named `{name}`"), span, hint))
            }
        }
    }

    fn call(&self, c: &Call) -> Result<(), QueryError> {
        let string = |name: &str| match c.arg(name) {
            Some(Value::Str(s, span)) => Some((s.as_str(), *span)),
            _ => None,
        };
        if let Some((p, span)) = string("embedding") {
            self.policy(p, span, true)?;
        }
        for arg in ["attribute", "column"] {
            if let Some((col, span)) = string(arg) {
                self.item(col, span)?;
            }
        }
        if let Some((spec, span)) = string("columns") {
            for part in spec.split(',') {
                if let Some(col) = part.split_whitespace().next() {
                    self.item(col, span)?;
                }
            }
        }
        if let Some(Value::Call(inner)) = c.arg("retriever") {
            self.call(inner)?;
        }
        Ok(())
    }

    fn expr(&self, e: &Expr) -> Result<(), QueryError> {
        match &e.kind {
            ExprKind::Path(p) => {
                let head = p.parts[0].name.to_ascii_lowercase();
                match (head.as_str(), p.parts.get(1)) {
                    ("item", Some(c)) => self.item(&c.name, c.span),
                    ("user", Some(c))
                        if !self
                            .user_columns
                            .iter()
                            .any(|u| u.eq_ignore_ascii_case(&c.name)) =>
                    {
                        let hint =
                            did_you_mean(&c.name, self.user_columns.iter().map(String::as_str))
                                .map(|s| format!("did you mean `{s}`?"));
                        Err(err(
                            format!("the users have no column `{}`", c.name),
                            c.span,
                            hint,
                        ))
                    }
                    ("user" | "retrieval" | "rank", _) | ("value_model", None) => Ok(()),
                    (name, None) => self.policy(name, p.span, false),
                    _ => Ok(()),
                }
            }
            ExprKind::Call { args, .. } => args.iter().try_for_each(|a| self.expr(a)),
            ExprKind::Unary { expr, .. } | ExprKind::IsNull { expr, .. } => self.expr(expr),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs)?;
                self.expr(rhs)
            }
            ExprKind::In { expr, list, .. } => {
                self.expr(expr)?;
                list.iter().try_for_each(|a| self.expr(a))
            }
            ExprKind::Between {
                expr, low, high, ..
            } => [expr, low, high].iter().try_for_each(|x| self.expr(x)),
            ExprKind::Like { expr, pattern, .. } => {
                self.expr(expr)?;
                self.expr(pattern)
            }
            _ => Ok(()),
        }
    }

    /// Checks every name of `q`.
    pub fn check(&self, q: &Query) -> Result<(), QueryError> {
        if let Select::Columns(cols) = &q.select {
            for c in cols {
                self.item(&c.parts[1].name, c.parts[1].span)?;
            }
        }
        q.from.iter().try_for_each(|c| self.call(c))?;
        q.reorder.iter().try_for_each(|c| self.call(c))?;
        if let Some(f) = &q.filter {
            self.expr(f)?;
        }
        if let Some(o) = &q.order {
            if let Score::Expr(e) = &o.score {
                self.expr(e)?;
            }
        }
        Ok(())
    }
}
