//! `boost(column, strength)`: score ← (1 − s)·score + s·column, both min-max normalised over the
//! list, then re-sorted.

use super::{column_text, normalise, RerankContext, Reranker};
use crate::error::Result;
use crate::query::args::{Arg, CallArgs};
use crate::query::Ranked;

struct Boost {
    column: String,
    strength: Arg<f64>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, feed_lang::QueryError> {
    let column = args.item_column("column")?;
    Ok(Box::new(Boost {
        column: args.required("column", column)?,
        strength: args.number("strength")?.unwrap_or(Arg::Lit(0.2)),
    }))
}

impl Reranker for Boost {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>> {
        let strength = self.strength.get(ctx.req.params)?.clamp(0.0, 1.0);
        let items: Vec<u32> = ranked.iter().map(|r| r.0).collect();
        // Values that are not numbers count as 0.
        let values: Vec<f64> = column_text(ctx.req, &self.column, &items)?
            .iter()
            .map(|v| v.as_deref().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0))
            .collect();
        let values = normalise(&values);
        let scores = normalise(&ranked.iter().map(|r| r.1).collect::<Vec<_>>());
        let mut out: Vec<(usize, Ranked)> = ranked
            .iter()
            .enumerate()
            .map(|(k, r)| {
                (
                    k,
                    (r.0, (1.0 - strength) * scores[k] + strength * values[k]),
                )
            })
            .collect();
        out.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1).then(a.0.cmp(&b.0)));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }
}
