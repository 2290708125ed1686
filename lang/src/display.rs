//! A compact S-expression rendering of the AST: what the golden tests compare, and a way to see
//! how a query was understood (precedence, defaults).

use std::fmt::Write;

use crate::ast::*;

/// One clause per line.
pub fn sexpr(q: &Query) -> String {
    let mut out = String::from("(query\n");
    let select = match &q.select {
        Select::All(_) => "*".to_string(),
        Select::Columns(c) => c.iter().map(Path::dotted).collect::<Vec<_>>().join(" "),
    };
    let _ = writeln!(out, "  (select {select})");
    if q.from.is_empty() {
        out.push_str("  (from default)\n");
    } else {
        let _ = writeln!(
            out,
            "  (from {})",
            q.from.iter().map(call).collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(f) = &q.filter {
        let _ = writeln!(out, "  (where {})", expr(f));
    }
    if let Some(o) = &q.order {
        let score = match &o.score {
            Score::ValueModel(_) => "value_model".to_string(),
            Score::Expr(e) => expr(e),
        };
        let _ = writeln!(
            out,
            "  (order {} {score})",
            if o.descending { "desc" } else { "asc" }
        );
    }
    if !q.reorder.is_empty() {
        let _ = writeln!(
            out,
            "  (reorder {})",
            q.reorder.iter().map(call).collect::<Vec<_>>().join(" ")
        );
    }
    if let Some(l) = &q.limit {
        let _ = write!(out, "  (limit {}", count(l));
        if let Some(o) = &q.offset {
            let _ = write!(out, " (offset {})", count(o));
        }
        out.push_str(")\n");
    }
    out.push(')');
    out
}

fn count(c: &Count) -> String {
    match c {
        Count::Literal(n, _) => n.to_string(),
        Count::Param(p) => format!("${}", p.name),
    }
}

fn call(c: &Call) -> String {
    let mut s = format!("({}", c.name.name);
    for a in &c.args {
        match &a.name {
            Some(n) => {
                let _ = write!(s, " {}={}", n.name, value(&a.value));
            }
            None => {
                let _ = write!(s, " {}", value(&a.value));
            }
        }
    }
    s.push(')');
    s
}

fn value(v: &Value) -> String {
    match v {
        Value::Str(s, _) => quote(s),
        Value::Num(n, _) => num(*n),
        Value::Bool(b, _) => b.to_string(),
        Value::Param(p) => format!("${}", p.name),
        Value::List(items, _) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(" ")
        ),
        Value::Call(c) => call(c),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// An expression as an S-expression.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Num(n) => num(*n),
        ExprKind::Str(s) => quote(s),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Null => "null".into(),
        ExprKind::Param(p) => format!("${p}"),
        ExprKind::Path(p) => p.dotted(),
        ExprKind::Call { name, args } => {
            let mut s = format!("({}", name.name.to_ascii_lowercase());
            for a in args {
                s.push(' ');
                s.push_str(&expr(a));
            }
            s.push(')');
            s
        }
        ExprKind::Unary { op, expr: inner } => match op {
            UnaryOp::Neg => format!("(neg {})", expr(inner)),
            UnaryOp::Not => format!("(not {})", expr(inner)),
        },
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", op.symbol(), expr(lhs), expr(rhs))
        }
        ExprKind::In {
            expr: x,
            list,
            negated,
        } => format!(
            "({} {} [{}])",
            if *negated { "not-in" } else { "in" },
            expr(x),
            list.iter().map(expr).collect::<Vec<_>>().join(" ")
        ),
        ExprKind::Between {
            expr: x,
            low,
            high,
            negated,
        } => {
            format!(
                "({} {} {} {})",
                if *negated { "not-between" } else { "between" },
                expr(x),
                expr(low),
                expr(high)
            )
        }
        ExprKind::Like {
            expr: x,
            pattern,
            negated,
        } => {
            format!(
                "({} {} {})",
                if *negated { "not-like" } else { "like" },
                expr(x),
                expr(pattern)
            )
        }
        ExprKind::IsNull { expr: x, negated } => format!(
            "({} {})",
            if *negated { "is-not-null" } else { "is-null" },
            expr(x)
        ),
    }
}
