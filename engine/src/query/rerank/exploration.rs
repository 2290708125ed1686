//! `exploration(retriever, strength)`: a share of the first positions goes to items of another
//! retriever (in its order) that the list does not already show there: every ⌈1/strength⌉-th
//! slot. The retriever searches eligible items only, like every retriever.

use std::collections::HashSet;

use feed_lang::ast::Value;

use super::{RerankContext, Reranker};
use crate::error::Result;
use crate::expr::check_error;
use crate::query::args::{Arg, CallArgs};
use crate::query::retrieve::{self, Retriever};
use crate::query::Ranked;

struct Exploration {
    strength: Arg<f64>,
    retriever: Box<dyn Retriever>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, feed_lang::QueryError> {
    let Some(Value::Call(inner)) = args.call.arg("retriever") else {
        return Err(check_error(
            "exploration(retriever = ...) must be a retriever call",
            args.span("retriever"),
            Some("e.g. retriever = popular(limit = 50)".into()),
        ));
    };
    let retriever = {
        let mut inner_args = CallArgs {
            call: inner,
            names: args.names,
            params: args.params,
        };
        retrieve::bind(inner, &mut inner_args)?
    };
    Ok(Box::new(Exploration {
        strength: args.number("strength")?.unwrap_or(Arg::Lit(0.1)),
        retriever,
    }))
}

impl Reranker for Exploration {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>> {
        let strength = self.strength.get(ctx.req.params)?.clamp(0.0, 1.0);
        if strength == 0.0 {
            return Ok(ranked);
        }
        let every = (1.0 / strength).ceil().max(1.0) as usize;
        let slots = ctx.need.min(ranked.len().max(ctx.need));
        let explore = self.retriever.retrieve(ctx.req, ctx.eligible, slots)?;
        let shown: HashSet<u32> = ranked.iter().take(slots).map(|r| r.0).collect();
        let mask = ctx.eligible.mask;
        let mut fresh = explore
            .into_iter()
            .filter(|(i, _)| !shown.contains(i) && mask[*i as usize]);
        let mut out: Vec<Ranked> = Vec::with_capacity(ranked.len() + slots / every + 1);
        let mut rest = ranked.into_iter();
        let mut pos = 1;
        let mut used = HashSet::new();
        while pos <= slots {
            if pos % every == 0 {
                if let Some(e) = fresh.next() {
                    used.insert(e.0);
                    ctx.explored.insert(e.0);
                    out.push(e);
                    pos += 1;
                    continue;
                }
            }
            match rest.next() {
                Some(r) => out.push(r),
                None => break,
            }
            pos += 1;
        }
        out.extend(rest.filter(|r| !used.contains(&r.0)));
        let mut seen = HashSet::new();
        out.retain(|r| seen.insert(r.0));
        Ok(out)
    }
}
