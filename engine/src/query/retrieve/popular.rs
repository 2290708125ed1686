//! `popular(limit, window)`: the most interacted items, all time or within a time window.

use super::{count_between, ranked_by, walk, Retriever};
use crate::error::Result;
use crate::query::args::CallArgs;
use crate::query::window::Window;
use crate::query::{Eligible, Ranked, Request};

struct Popular {
    window: Option<Window>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    Ok(Box::new(Popular {
        window: Window::bind(args)?,
    }))
}

impl Retriever for Popular {
    fn retrieve(&self, req: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        let catalog = &req.snapshot.catalog;
        match &self.window {
            // Walk the precomputed order: no scan of the catalog.
            None => Ok(catalog
                .popular_order
                .iter()
                .filter(|&&i| eligible.mask[i as usize])
                .take(limit)
                .map(|&i| (i, catalog.popular[i as usize] as f64))
                .collect()),
            Some(w) => {
                let w = w.seconds(req.params)?;
                let ranked = ranked_by(req, format!("popular/{w}"), |now, times| {
                    count_between(times, now.saturating_sub(w), now) as f32
                })?;
                Ok(walk(&ranked, eligible, limit))
            }
        }
    }
}
