//! The syntax tree of a FeedQL query. Every node keeps its span, so that the planner can point
//! at the exact text of an unknown column or a bad argument.

use crate::Span;

/// `SELECT ... [FROM ...] [WHERE ...] [ORDER BY score(...)] [REORDER BY ...] [LIMIT n [OFFSET m]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Select,
    /// Retrievers, unioned. Empty means the default retriever (`popular(limit = 100)`).
    pub from: Vec<Call>,
    /// The hard filter.
    pub filter: Option<Expr>,
    pub order: Option<Order>,
    /// Rerankers, applied left to right.
    pub reorder: Vec<Call>,
    pub limit: Option<Count>,
    pub offset: Option<Count>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// `SELECT *`: ids, scores and (on request) all item attributes.
    All(Span),
    /// `SELECT item.title, item.year`.
    Columns(Vec<Path>),
}

/// A name as written, with its span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A dotted name: `item.year`, `als`, `ranker.like`, `retrieval.pop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub parts: Vec<Ident>,
    pub span: Span,
}

impl Path {
    /// The parts joined with dots.
    pub fn dotted(&self) -> String {
        self.parts
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A retriever or reranker: `similarity(embedding = 'als', user = $user_id, limit = 200)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: Ident,
    pub args: Vec<Arg>,
    pub span: Span,
}

impl Call {
    /// The value of the named argument `name`, if given.
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args
            .iter()
            .find(|a| {
                a.name
                    .as_ref()
                    .is_some_and(|n| n.name.eq_ignore_ascii_case(name))
            })
            .map(|a| &a.value)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// `None` for a positional argument (`ids($item_ids)`).
    pub name: Option<Ident>,
    pub value: Value,
    pub span: Span,
}

/// An argument value: a literal, a parameter, a list or a nested call.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String, Span),
    Num(f64, Span),
    Bool(bool, Span),
    Param(Ident),
    List(Vec<Value>, Span),
    Call(Call),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Str(_, s) | Value::Num(_, s) | Value::Bool(_, s) | Value::List(_, s) => *s,
            Value::Param(i) => i.span,
            Value::Call(c) => c.span,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(..) => "a string",
            Value::Num(..) => "a number",
            Value::Bool(..) => "a boolean",
            Value::Param(..) => "a parameter",
            Value::List(..) => "a list",
            Value::Call(..) => "a call",
        }
    }
}

/// `ORDER BY score(expr) [DESC|ASC]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub score: Score,
    /// Highest first (the default) or lowest first.
    pub descending: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Score {
    /// `score(value_model)`: the model file's value model.
    ValueModel(Span),
    Expr(Expr),
}

/// A `LIMIT` or `OFFSET`: a literal or a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Count {
    Literal(u64, Span),
    Param(Ident),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
    Param(String),
    /// A column (`item.year`, `user.age`), a policy output (`als`, `ranker.like`) or a
    /// retrieval score or rank (`retrieval.pop`, `rank.pop`).
    Path(Path),
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        }
    }
}
