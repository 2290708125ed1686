//! `trending(limit, window)`: items whose interactions grow fastest — the last window against
//! the one before, as a Poisson z-score.

use super::{count_between, ranked_by, walk, Retriever};
use crate::error::Result;
use crate::query::args::CallArgs;
use crate::query::window::Window;
use crate::query::{Eligible, Ranked, Request};

/// The window when none is given: a week.
const DEFAULT_WINDOW: i64 = 7 * 86_400;

struct Trending {
    window: Option<Window>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Retriever>, feed_lang::QueryError> {
    Ok(Box::new(Trending {
        window: Window::bind(args)?,
    }))
}

impl Retriever for Trending {
    fn retrieve(&self, req: &Request<'_>, eligible: Eligible<'_>, limit: usize) -> Result<Vec<Ranked>> {
        let w = match &self.window {
            Some(w) => w.seconds(req.params)?,
            None => DEFAULT_WINDOW,
        };
        let ranked = ranked_by(req, format!("trending/{w}"), |now, t| {
            let recent = count_between(t, now.saturating_sub(w), now) as f64;
            let before = count_between(
                t,
                now.saturating_sub(w.saturating_mul(2)),
                now.saturating_sub(w),
            ) as f64;
            ((recent - before) / (before + 1.0).sqrt()) as f32
        })?;
        Ok(walk(&ranked, eligible, limit))
    }
}
