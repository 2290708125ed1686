//! FeedQL over a model version: parse (cached per text) → bind names against the version →
//! filter → retrieve → score → cut, over an immutable [`Snapshot`](crate::Snapshot).
//!
//! Exactness: the filter is evaluated over the whole catalog first (a mask), and every
//! retriever searches only eligible items exactly, so a page holds `min(limit, eligible)` items
//! and each satisfies the filter. When the retrievers' limits yield fewer candidates than the
//! page needs, they are widened to the page size.

mod bind;
mod execute;
mod pages;
mod params;
mod rerank;
mod translate;

pub use bind::Names;
pub use execute::{Explanation, FoundBy, ItemExplanation, QueryRequest, QueryResult, StageReport};
pub use pages::Pages;
pub use params::{check as check_params, ParamValue, Params};
