//! FeedQL over a model version: parse → bind (once per version and text, cached in the
//! snapshot: names resolved, expressions translated and type-checked, retrievers and rerankers
//! built) → per request: check parameter values → filter → retrieve → score → reorder → cut,
//! over an immutable [`Snapshot`](crate::Snapshot). `rank` is the same ranking for one user
//! without the query language.
//!
//! Exactness: the filter is evaluated over the whole catalog first (a mask), and every
//! retriever searches only eligible items exactly, so a page holds `min(limit, eligible)` items
//! and each satisfies the filter. When the retrievers' limits yield fewer candidates than the
//! page needs, they are widened to the page size.

mod args;
mod bind;
mod execute;
mod explain;
mod filter;
mod pages;
mod plan;
mod rank;
mod recent;
mod rerank;
mod retrieve;
mod score;
mod token;
mod window;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;

pub use bind::{bind, LIMIT_USE, OFFSET_USE};
pub use execute::{QueryRequest, QueryResult};
pub use explain::{Explanation, FoundBy, ItemExplanation, StageReport};
pub use pages::Pages;
pub use plan::Plan;
pub use rank::{RankRequest, Ranking};
pub use rerank::{RerankContext, Reranker};
pub use retrieve::Retriever;
pub use token::PageToken;

pub use crate::expr::{check_params, ParamValue, Params};
use crate::serving::{Snapshot, UserState, UserView};

/// A ranked item: dense id and score.
pub type Ranked = (u32, f64);

/// What a request brings to the stages of a plan.
pub struct Request<'a> {
    pub snapshot: &'a Snapshot,
    /// Where user state is read: the version's own, or live events layered over it.
    pub users: &'a dyn UserState,
    pub params: &'a Params,
    /// The requesting user (`$user_id`), when the version (or live state) knows them.
    pub user: Option<UserView<'a>>,
    /// The query text, for errors found while executing.
    pub text: &'a str,
    /// [`Request::scoring_user`], encoded at most once per request.
    pub scoring: std::sync::OnceLock<crate::serving::ScoringUser>,
}

impl Request<'_> {
    /// Whom the requesting user's personal scores are for: encoded once per request (a tower
    /// re-encodes a user with live interactions), shared by retrieval and scoring.
    pub fn scoring_user(&self) -> &crate::serving::ScoringUser {
        self.scoring.get_or_init(|| {
            self.user
                .as_ref()
                .map(|u| self.snapshot.scoring_user(u))
                .unwrap_or_default()
        })
    }
}

/// The items a query may return: the filter's mask over the catalog and how many it lets
/// through.
#[derive(Clone, Copy)]
pub struct Eligible<'a> {
    pub mask: &'a [bool],
    pub count: usize,
}

/// What one retriever found: item → (score, 1-based rank).
type Found = HashMap<u32, (f64, usize)>;

/// Candidates gathered by the retrievers, in first-found order.
pub struct Candidates {
    pub items: Vec<u32>,
    /// Per retriever alias, what it found.
    found: Vec<(String, Found)>,
}
