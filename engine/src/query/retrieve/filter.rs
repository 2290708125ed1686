//! `filter(limit)`: every eligible item, in catalog order (for pure filter queries).

use super::Retriever;
use crate::error::Result;
use crate::query::args::CallArgs;
use crate::query::{Eligible, Ranked, Request};

struct All;

pub(super) fn bind(_: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    Ok(Box::new(All))
}

impl Retriever for All {
    fn retrieve(&self, _: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        Ok((0..eligible.mask.len() as u32)
            .filter(|&i| eligible.mask[i as usize])
            .take(limit)
            .map(|i| (i, 0.0))
            .collect())
    }
}
