//! What FeedQL knows by name: retrievers, rerankers and expression functions, with their
//! arguments. The static checks and the did-you-mean hints read it; the engine implements it.

/// The type an argument accepts. A `$parameter` is accepted wherever a literal is (its value is
/// checked when bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    Str,
    /// A non-negative whole number.
    Count,
    /// A number in [0, 1].
    Fraction,
    List,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A nested retriever call.
    Retriever,
}

#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub ty: ArgType,
    pub required: bool,
}

const fn arg(name: &'static str, ty: ArgType) -> ArgSpec {
    ArgSpec {
        name,
        ty,
        required: false,
    }
}

const fn req(name: &'static str, ty: ArgType) -> ArgSpec {
    ArgSpec {
        name,
        ty,
        required: true,
    }
}

/// A retriever or reranker.
#[derive(Debug, Clone, Copy)]
pub struct CallSpec {
    pub name: &'static str,
    pub args: &'static [ArgSpec],
    /// The argument a single positional value stands for (`ids($item_ids)`).
    pub positional: Option<&'static str>,
    pub summary: &'static str,
}

pub const ENCODERS: &[&str] = &["user", "item", "history", "items"];

pub const RETRIEVERS: &[CallSpec] = &[
    CallSpec {
        name: "similarity",
        args: &[
            req("embedding", ArgType::Str),
            arg("encoder", ArgType::Choice(ENCODERS)),
            arg("user", ArgType::Str),
            arg("item", ArgType::Str),
            arg("items", ArgType::List),
            arg("limit", ArgType::Count),
            arg("name", ArgType::Str),
        ],
        positional: None,
        summary: "items nearest to a user's, an item's or several items' vector",
    },
    CallSpec {
        name: "popular",
        args: &[
            arg("limit", ArgType::Count),
            arg("window", ArgType::Str),
            arg("name", ArgType::Str),
        ],
        positional: None,
        summary: "the most interacted items, optionally within a time window like '7d'",
    },
    CallSpec {
        name: "trending",
        args: &[
            arg("limit", ArgType::Count),
            arg("window", ArgType::Str),
            arg("name", ArgType::Str),
        ],
        positional: None,
        summary: "items whose interactions grow fastest",
    },
    CallSpec {
        name: "column_order",
        args: &[
            req("columns", ArgType::Str),
            arg("limit", ArgType::Count),
            arg("name", ArgType::Str),
        ],
        positional: None,
        summary: "items ordered by item columns, e.g. 'year DESC, title'",
    },
    CallSpec {
        name: "filter",
        args: &[arg("limit", ArgType::Count), arg("name", ArgType::Str)],
        positional: None,
        summary: "every eligible item (for pure filter queries)",
    },
    CallSpec {
        name: "ids",
        args: &[req("ids", ArgType::List), arg("name", ArgType::Str)],
        positional: Some("ids"),
        summary: "exactly the given items (rerank candidates the app already has)",
    },
];

pub const RERANKERS: &[CallSpec] = &[
    CallSpec {
        name: "diversity",
        args: &[
            arg("attribute", ArgType::Str),
            arg("embedding", ArgType::Str),
            arg("strength", ArgType::Fraction),
            arg("window", ArgType::Count),
        ],
        positional: None,
        summary: "maximal marginal relevance over an attribute or an embedding",
    },
    CallSpec {
        name: "spacing",
        args: &[
            req("attribute", ArgType::Str),
            arg("max_run", ArgType::Count),
        ],
        positional: None,
        summary: "no more than max_run consecutive items sharing the attribute",
    },
    CallSpec {
        name: "exploration",
        args: &[
            arg("strength", ArgType::Fraction),
            req("retriever", ArgType::Retriever),
        ],
        positional: None,
        summary: "a share of the slots filled from another retriever",
    },
    CallSpec {
        name: "boost",
        args: &[
            req("column", ArgType::Str),
            arg("strength", ArgType::Fraction),
        ],
        positional: None,
        summary: "scores raised by an item column",
    },
    CallSpec {
        name: "pin",
        args: &[req("ids", ArgType::List), req("positions", ArgType::List)],
        positional: None,
        summary: "fixed items at fixed positions (1-based)",
    },
];

/// Where an expression function may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Filter,
    Score,
}

#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    pub name: &'static str,
    pub min_args: usize,
    /// `usize::MAX` for variadic.
    pub max_args: usize,
    /// `None`: anywhere.
    pub only_in: Option<Context>,
}

const fn f(name: &'static str, min_args: usize, max_args: usize) -> FunctionSpec {
    FunctionSpec {
        name,
        min_args,
        max_args,
        only_in: None,
    }
}

pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "seen",
        min_args: 1,
        max_args: 1,
        only_in: Some(Context::Filter),
    },
    FunctionSpec {
        name: "served",
        min_args: 1,
        max_args: 2,
        only_in: Some(Context::Filter),
    },
    f("recent", 2, 3),
    f("affinity", 2, 3),
    FunctionSpec {
        name: "truncate",
        min_args: 1,
        max_args: 1,
        only_in: Some(Context::Filter),
    },
    f("contains", 2, 2),
    f("coalesce", 1, usize::MAX),
    f("if", 3, 3),
    f("log", 1, 1),
    f("exp", 1, 1),
    f("sqrt", 1, 1),
    f("abs", 1, 1),
    f("min", 1, usize::MAX),
    f("max", 1, usize::MAX),
    f("pow", 2, 2),
    f("clamp", 3, 3),
    f("now_seconds", 0, 0),
];

pub fn retriever(name: &str) -> Option<&'static CallSpec> {
    RETRIEVERS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

pub fn reranker(name: &str) -> Option<&'static CallSpec> {
    RERANKERS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

pub fn function(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Every name FeedQL knows, for did-you-mean hints.
pub fn all_names() -> impl Iterator<Item = &'static str> {
    RETRIEVERS
        .iter()
        .map(|c| c.name)
        .chain(RERANKERS.iter().map(|c| c.name))
        .chain(FUNCTIONS.iter().map(|f| f.name))
}
