//! `spacing(attribute, max_run)`: no more than `max_run` consecutive items with the same value of
//! an attribute; an item that would extend a run too far waits for the next position where it
//! fits.

use super::{column_text, reordered, window_size, RerankContext, Reranker};
use crate::error::Result;
use crate::query::args::{Arg, CallArgs};
use crate::query::Ranked;

struct Spacing {
    column: String,
    max_run: Arg<usize>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, feed_lang::QueryError> {
    let column = args.item_column("attribute")?;
    Ok(Box::new(Spacing {
        column: args.required("attribute", column)?,
        max_run: args.count("max_run")?.unwrap_or(Arg::Lit(1)),
    }))
}

impl Reranker for Spacing {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>> {
        let max_run = self.max_run.get(ctx.req.params)?.max(1);
        let n = window_size(ctx, ranked.len());
        let (head, tail) = ranked.split_at(n);
        let values = column_text(
            ctx.req,
            &self.column,
            &head.iter().map(|r| r.0).collect::<Vec<_>>(),
        )?;
        let mut out: Vec<usize> = Vec::with_capacity(n);
        let mut left: Vec<usize> = (0..n).collect();
        while !left.is_empty() && out.len() < ctx.need {
            let run_value = out.last().and_then(|&l| values[l].clone());
            let run = out
                .iter()
                .rev()
                .take_while(|&&o| values[o].is_some() && values[o] == run_value)
                .count();
            let fits = |c: usize| run < max_run || values[c].is_none() || values[c] != run_value;
            // The best item that fits; if none does, the best one regardless.
            let pos = left.iter().position(|&c| fits(c)).unwrap_or(0);
            out.push(left.remove(pos));
        }
        out.extend(left);
        Ok(reordered(head, out, tail))
    }
}
