//! The `Reranker` extension point: reordering the scored list (`REORDER BY`), left to right as
//! written. One file per reranker; adding one is a new file here, its name in the `rerankers!`
//! list below, and its entry in `feed_lang::catalog::RERANKERS`. A test keeps the lists equal.

use std::collections::HashSet;

use datafusion::arrow::array::{Array, AsArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::DataType;
use feed_lang::ast::Call;
use feed_lang::QueryError;

use super::args::CallArgs;
use super::{Eligible, Ranked, Request};
use crate::error::{Error, Result};
use crate::expr::check_error;

/// What a reranker sees besides the list.
pub struct RerankContext<'a> {
    pub req: &'a Request<'a>,
    pub eligible: Eligible<'a>,
    /// How many items the page needs (LIMIT + OFFSET): rerankers work on a window around it.
    pub need: usize,
    /// Items brought in by exploration, for explanations.
    pub explored: HashSet<u32>,
}

/// A way to reorder a ranked list.
///
/// Contract (exactness under a filter): `rerank` returns the items it was given, reordered, and
/// may bring in items of its own (exploration, pinning) only if they are eligible
/// (`ctx.eligible.mask`); it never returns an item twice. Greedy rerankers may reorder only a
/// window of the best items ([`window_size`]) and keep the rest in order. Bound once per query
/// text and version ([`bind`]); per request it reads its parameters' values.
pub trait Reranker: Send + Sync {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>>;
}

macro_rules! rerankers {
    ($($name:ident),* $(,)?) => {
        $(mod $name;)*

        /// Binds a call of a reranker the catalog lists: names resolved, literals checked.
        pub fn bind(call: &Call, args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, QueryError> {
            let name = call.name.name.to_ascii_lowercase();
            $(if name == stringify!($name) {
                return $name::bind(args);
            })*
            Err(check_error(
                format!("the `{name}` reranker is not available in this version"),
                call.name.span,
                None,
            ))
        }

        #[cfg(test)]
        pub(crate) const IMPLEMENTED: &[&str] = &[$(stringify!($name)),*];
    };
}

rerankers!(diversity, spacing, exploration, boost, pin);

/// How many of the best items a greedy reranker chooses from.
pub(crate) fn window_size(ctx: &RerankContext<'_>, len: usize) -> usize {
    (ctx.need * 10).max(500).min(len)
}

/// A greedy reranker's result: the window's items in the chosen `order` (indexes into `head`),
/// then the items it did not look at, in their order.
pub(crate) fn reordered(head: &[Ranked], order: Vec<usize>, tail: &[Ranked]) -> Vec<Ranked> {
    order
        .into_iter()
        .map(|c| head[c])
        .chain(tail.iter().copied())
        .collect()
}

/// Min-max normalised to [0, 1]; non-finite values 0 (a constant list is all 1).
pub(crate) fn normalise(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    values
        .iter()
        .map(|&v| match (v.is_finite(), hi > lo) {
            (false, _) => 0.0,
            (true, false) => 1.0,
            (true, true) => (v - lo) / (hi - lo),
        })
        .collect()
}

/// The values of item column `column` (a bound, stored name) for `items`, as text; only the rows
/// asked for are converted.
pub(crate) fn column_text(
    req: &Request<'_>,
    column: &str,
    items: &[u32],
) -> Result<Vec<Option<String>>> {
    let col =
        req.snapshot.catalog.column(column).ok_or_else(|| {
            Error::Internal(format!("bound column `{column}` is not in the catalog"))
        })?;
    let rows = UInt32Array::from(items.to_vec());
    let taken = take(col.as_ref(), &rows, None).map_err(|e| Error::Internal(e.to_string()))?;
    let text = cast(&taken, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
    let text = text.as_string::<i32>();
    Ok((0..items.len())
        .map(|k| text.is_valid(k).then(|| text.value(k).to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_reranker_is_implemented_and_no_other() {
        let mut catalog: Vec<&str> = feed_lang::catalog::RERANKERS
            .iter()
            .map(|c| c.name)
            .collect();
        let mut implemented = IMPLEMENTED.to_vec();
        catalog.sort();
        implemented.sort();
        assert_eq!(catalog, implemented);
    }

    #[test]
    fn normalise_maps_to_unit_range() {
        assert_eq!(
            normalise(&[2.0, 4.0, f64::NEG_INFINITY]),
            vec![0.0, 1.0, 0.0]
        );
        assert_eq!(normalise(&[3.0, 3.0]), vec![1.0, 1.0]);
    }
}
