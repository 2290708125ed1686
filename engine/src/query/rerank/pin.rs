//! `pin(ids, positions)`: fixed items at fixed 1-based positions (e.g. sponsored). Pinned items
//! must satisfy the filter like every other; ids that do not, or that the catalog lacks, are
//! skipped. Ids fill the positions in order; extra ids or positions stay unused (a sponsored list
//! may be shorter than the slots it could fill).

use std::collections::{HashMap, HashSet};

use super::{RerankContext, Reranker};
use crate::error::Result;
use crate::query::args::{CallArgs, ListArg};
use crate::query::Ranked;

struct Pin {
    ids: ListArg<String>,
    positions: ListArg<usize>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, feed_lang::QueryError> {
    let ids = args.ids("ids")?;
    let positions = args.positions("positions")?;
    Ok(Box::new(Pin {
        ids: args.required("ids", ids)?,
        positions: args.required("positions", positions)?,
    }))
}

impl Reranker for Pin {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>> {
        let ids = self.ids.get(ctx.req.params)?;
        let positions = self.positions.get(ctx.req.params)?;
        let catalog = &ctx.req.snapshot.catalog;
        let mut pinned: Vec<(usize, u32)> = ids
            .iter()
            .zip(&positions)
            .filter_map(|(id, &pos)| {
                catalog
                    .dense(id)
                    .filter(|&i| ctx.eligible.mask[i as usize])
                    .map(|i| (pos.max(1), i))
            })
            .collect();
        pinned.sort();
        // An item pinned twice keeps its first position.
        let mut pinned_set: HashSet<u32> = HashSet::new();
        pinned.retain(|p| pinned_set.insert(p.1));
        let scores: HashMap<u32, f64> = ranked.iter().copied().collect();
        let mut out: Vec<Ranked> = ranked
            .into_iter()
            .filter(|r| !pinned_set.contains(&r.0))
            .collect();
        for (pos, item) in pinned {
            let at = (pos - 1).min(out.len());
            out.insert(at, (item, scores.get(&item).copied().unwrap_or(f64::NAN)));
        }
        Ok(out)
    }
}
