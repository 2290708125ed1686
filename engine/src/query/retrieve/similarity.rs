//! `similarity(embedding, encoder, user | item | items, limit)`: the items nearest to a query
//! vector in a policy's embedding space — a user's vector, their recent history run through the
//! policy's sequence encoder (or the mean of its item vectors), an item's vector or the mean of
//! several. Searched through the policy's index: IVF over a large catalog, an exact scan of the
//! eligible items when that is cheaper; either way `min(limit, eligible)` eligible items.

use super::Retriever;
use crate::error::Result;
use crate::query::args::{Arg, CallArgs, ListArg};
use crate::query::{Eligible, Ranked, Request};
use crate::serving::artifacts::HISTORY_LEN;
use crate::vectors::Search;

/// What the query vector is made of.
enum Encoder {
    /// The user's own vector (`user = ...`, or the request's `$user_id`).
    User(Option<Arg<String>>),
    /// The user's latest items, through the policy's sequence encoder or averaged.
    History(Option<Arg<String>>),
    Item(Arg<String>),
    Items(ListArg<String>),
}

struct Similarity {
    policy: String,
    encoder: Encoder,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    let policy = args.policy("embedding", true)?;
    let policy = args.required("embedding", policy)?.name;
    let written = match args.call.arg("encoder") {
        Some(feed_lang::ast::Value::Str(s, _)) => Some(s.to_ascii_lowercase()),
        _ => None,
    };
    let encoder = match written.as_deref() {
        Some("history") => Encoder::History(args.id("user")?),
        Some("item") => {
            let item = args.id("item")?;
            Encoder::Item(args.required("item", item)?)
        }
        Some("items") => {
            let items = args.ids("items")?;
            Encoder::Items(args.required("items", items)?)
        }
        Some(_) => Encoder::User(args.id("user")?),
        None => {
            if let Some(item) = args.id("item")? {
                Encoder::Item(item)
            } else if let Some(items) = args.ids("items")? {
                Encoder::Items(items)
            } else {
                Encoder::User(args.id("user")?)
            }
        }
    };
    Ok(Box::new(Similarity { policy, encoder }))
}

impl Similarity {
    /// The query vector, or `None` when there is nothing to search from (an unknown user or
    /// item): then this retriever finds nothing.
    fn query(&self, req: &Request<'_>) -> Result<Option<Vec<f32>>> {
        let snapshot = req.snapshot;
        let vectors = snapshot.policies.vectors(&self.policy).ok_or_else(|| {
            crate::error::Error::Internal(format!("policy `{}` lost its vectors", self.policy))
        })?;
        let mean = |items: &[u32]| vectors.mean_of(items);
        // The user named by the call, not any user; else the request's.
        let named = |user: &Option<Arg<String>>| -> Result<Option<crate::serving::UserView<'_>>> {
            Ok(match user {
                Some(arg) => req.users.user(&arg.get(req.params)?),
                None => req.user.clone(),
            })
        };
        let items = |ids: Vec<String>| -> Vec<u32> {
            ids.iter().filter_map(|i| snapshot.catalog.dense(i)).collect()
        };
        Ok(match &self.encoder {
            // A user with live interactions: the policy's user encoding of them, where it has
            // one (a tower); else the trained vector.
            Encoder::User(user) => named(user)?.and_then(|u| {
                let live = match user {
                    // The request's own user: encoded once for the whole request.
                    None => req.scoring_user().live.get(&self.policy).cloned(),
                    Some(_) => snapshot.scoring_user(&u).live.remove(&self.policy),
                };
                live.or_else(|| u.dense.map(|d| vectors.user(d).to_vec()))
            }),
            // A sequence encoder (SASRec) reads the latest items in order; other policies
            // average the latest `HISTORY_LEN` item vectors.
            Encoder::History(user) => named(user)?.and_then(|u| {
                let recent = &u.recent;
                snapshot
                    .policies
                    .encode_sequence(&self.policy, recent)
                    .or_else(|| mean(&recent[recent.len().saturating_sub(HISTORY_LEN)..]))
            }),
            Encoder::Item(id) => mean(&items(vec![id.get(req.params)?])),
            Encoder::Items(ids) => mean(&items(ids.get(req.params)?)),
        })
    }
}

impl Retriever for Similarity {
    fn retrieve(&self, req: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        let Some(query) = self.query(req)? else {
            return Ok(Vec::new());
        };
        let n = req.snapshot.n_items();
        let search = Search {
            query: &query,
            k: limit,
            mask: (eligible.count < n).then_some(eligible.mask),
            eligible: eligible.count,
        };
        let (found, method) = req
            .snapshot
            .policies
            .search(&self.policy, search)
            .ok_or_else(|| {
                crate::error::Error::Internal(format!("policy `{}` lost its vectors", self.policy))
            })?;
        tracing::debug!(?method, found = found.len(), "similarity");
        Ok(found.into_iter().map(|(i, s)| (i, s as f64)).collect())
    }
}
