//! `ids(ids)`: exactly the given items, in the given order (the app's own candidates, to
//! rerank). Ids the catalog lacks or the filter excludes are left out; nothing is added.

use std::collections::HashSet;

use super::Retriever;
use crate::error::Result;
use crate::query::args::{CallArgs, ListArg};
use crate::query::{Eligible, Ranked, Request};

struct Ids {
    ids: ListArg<String>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    // `ids($x)`: the catalog makes the positional value the `ids` argument.
    let ids = match args.ids("ids")? {
        Some(ids) => ids,
        None => {
            let positional = args.call.args.first().map(|a| a.value.clone());
            let call = feed_lang::ast::Call {
                args: positional
                    .map(|value| {
                        vec![feed_lang::ast::Arg {
                            name: Some(feed_lang::ast::Ident {
                                name: "ids".into(),
                                span: value.span(),
                            }),
                            span: value.span(),
                            value,
                        }]
                    })
                    .unwrap_or_default(),
                ..args.call.clone()
            };
            let mut named = CallArgs {
                call: &call,
                names: args.names,
                params: args.params,
            };
            let ids = named.ids("ids")?;
            named.required("ids", ids)?
        }
    };
    Ok(Box::new(Ids { ids }))
}

impl Retriever for Ids {
    fn retrieve(&self, req: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        let mut out = Vec::new();
        let mut taken = HashSet::new();
        for id in self.ids.get(req.params)? {
            if let Some(i) = req.snapshot.catalog.dense(&id) {
                if eligible.mask[i as usize] && taken.insert(i) {
                    out.push((i, 0.0));
                }
            }
        }
        // Every given item is a candidate: the limit never cuts the app's own list.
        out.truncate(limit.max(out.len()));
        Ok(out)
    }

    fn tops_up(&self) -> bool {
        false
    }
}
