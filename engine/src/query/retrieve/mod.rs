//! The `Retriever` extension point: where a query's candidates come from (`FROM`). One file per
//! retriever; adding one is a new file here, its name in the `retrievers!` list below, and its
//! entry (name, arguments) in `feed_lang::catalog::RETRIEVERS`, the one list of names and
//! arguments that the parser's checks and hints read. A test keeps the two lists equal.

use std::sync::Arc;

use feed_lang::ast::Call;
use feed_lang::QueryError;

use super::args::CallArgs;
use super::{Eligible, Ranked, Request};
use crate::error::Result;
use crate::expr::check_error;
use crate::util::topk::top_k;

/// A way to find candidates.
///
/// Contract (exactness under a filter): `retrieve` returns at most `limit` items, best first,
/// each with its score, and **every one eligible** (`eligible.mask` true). It searches the
/// eligible items only, so when it returns fewer than `min(limit, eligible.count)` it has no
/// more to give (an unknown user's similarity, a short id list) — never because eligible items
/// it would rank higher were skipped. The pipeline widens `limit` to the page size when the
/// union comes up short, and tops the page up by popularity unless a retriever says otherwise.
/// A retriever is bound once per query text and version ([`bind`]); per request it reads only
/// its parameters' values and the snapshot.
pub trait Retriever: Send + Sync {
    fn retrieve(
        &self,
        req: &Request<'_>,
        eligible: Eligible<'_>,
        limit: usize,
    ) -> Result<Vec<Ranked>>;

    /// Whether a page this retriever leaves short may be topped up with popular eligible items.
    /// `ids` says no: it returns exactly the items it was given.
    fn tops_up(&self) -> bool {
        true
    }
}

macro_rules! retrievers {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*

        /// Binds a call of a retriever the catalog lists: names resolved, literals checked.
        pub fn bind(call: &Call, args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, QueryError> {
            let name = call.name.name.to_ascii_lowercase();
            $(if name == stringify!($name) {
                return $name::bind(args);
            })*
            Err(check_error(
                format!("the `{name}` retriever is not available in this version"),
                call.name.span,
                None,
            ))
        }

        /// The retrievers implemented here, by catalog name.
        #[cfg(test)]
        pub(crate) const IMPLEMENTED: &[&str] = &[$(stringify!($name)),*];
    };
}

retrievers!(similarity, popular, trending, column_order, filter, ids);

/// The first `limit` eligible items of a precomputed ranking.
pub(crate) fn walk(ranked: &[(u32, f32)], eligible: Eligible<'_>, limit: usize) -> Vec<Ranked> {
    ranked
        .iter()
        .filter(|(i, _)| eligible.mask[*i as usize])
        .take(limit)
        .map(|&(i, s)| (i, s as f64))
        .collect()
}

/// Items ranked by a per-item score of their event times (windowed popularity, trending),
/// computed once per version and `key`.
pub(crate) fn ranked_by(
    req: &Request<'_>,
    key: String,
    score: impl Fn(i64, &[i64]) -> f32,
) -> Result<Arc<Vec<(u32, f32)>>> {
    let catalog = &req.snapshot.catalog;
    req.snapshot.caches.rankings.get_or_try_insert(&key, || {
        let now = catalog.newest_event;
        let scores: Vec<f32> = (0..catalog.len() as u32)
            .map(|i| score(now, catalog.times(i)))
            .collect();
        Ok(Arc::new(
            top_k(&scores, scores.len())
                .into_iter()
                .map(|i| (i as u32, scores[i]))
                .collect(),
        ))
    })
}

/// How many of the sorted `times` fall in `(from, to]`.
pub(crate) fn count_between(times: &[i64], from: i64, to: i64) -> usize {
    times.partition_point(|&t| t <= to) - times.partition_point(|&t| t <= from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_catalog_retriever_is_implemented_and_no_other() {
        let mut catalog: Vec<&str> = feed_lang::catalog::RETRIEVERS
            .iter()
            .map(|c| c.name)
            .collect();
        let mut implemented = super::IMPLEMENTED.to_vec();
        catalog.sort();
        implemented.sort();
        assert_eq!(catalog, implemented);
    }
}
