//! A bound plan: a query text bound against a version's names, once. Names are resolved,
//! expressions translated and type-checked, retrievers and rerankers built, and the parameters
//! it reads are known with the types they must have. Plans are cached per (version, text); a
//! request only checks its parameter values against [`Plan::params`] and executes.

use std::collections::BTreeMap;

use super::args::Arg;
use super::rerank::Reranker;
use super::retrieve::Retriever;
use crate::expr::{Bound, Needs, ParamUse};

pub struct Plan {
    /// The query text, for errors found while executing.
    pub text: String,
    /// Item columns returned with `return_metadata`: stored names, or every column (`*`).
    pub select: Option<Vec<String>>,
    pub filter: Filter,
    /// The retrievers, unioned in this order.
    pub sources: Vec<Source>,
    pub order: Option<Order>,
    pub rerankers: Vec<Box<dyn Reranker>>,
    pub limit: Option<Arg<usize>>,
    pub offset: Option<Arg<usize>>,
    /// Every parameter the query reads, with what each use expects.
    pub params: BTreeMap<String, Vec<ParamUse>>,
}

/// The hard filter, split so that the common cases cost least.
pub struct Filter {
    /// Users of top-level `NOT seen(...)` conjuncts: their items are switched off directly.
    pub not_seen: Vec<Arg<String>>,
    /// Users and windows of top-level `NOT served(...)` conjuncts: switched off directly too.
    pub not_served: Vec<(Arg<String>, Arg<String>)>,
    /// The other conjuncts as one condition; `None` when there are none.
    pub rest: Option<Bound>,
    /// The text of those conjuncts: with the values of the parameters they read, the key of the
    /// cached mask (when nothing else per request goes into it).
    pub key: String,
}

/// One retriever of `FROM`.
pub struct Source {
    /// `name = '...'` or the retriever's name, lowercase: what `retrieval.<alias>` reads.
    pub alias: String,
    pub limit: Arg<usize>,
    pub retriever: Box<dyn Retriever>,
}

/// `ORDER BY score(...)`.
pub struct Order {
    pub score: Score,
    pub descending: bool,
    /// What scoring reads (for `score(value_model)`, the value model's own needs).
    pub needs: Needs,
}

pub enum Score {
    ValueModel,
    Expr(Box<Bound>),
}
