//! The dataset a model version trains on: dense ids, per-user time-ordered event sequences,
//! item and user attribute tables, and the time-ordered leave-last-out split.

mod build;
mod ids;
mod impressions;
mod split;

pub use build::{build, FetchStats, Logged, LoggedEvent};
pub use ids::IdMap;
pub use impressions::{Impressions, NO_USER};
pub use split::{Cut, Interactions, Target};

use datafusion::arrow::record_batch::RecordBatch;

/// Everything fetched, in compact form. Events of user `u` are
/// `offsets[u]..offsets[u + 1]` in the parallel arrays, oldest first (ties keep fetch order).
#[derive(Debug)]
pub struct Dataset {
    pub users: IdMap,
    pub items: IdMap,
    /// Distinct `event_type` values; `types` holds indexes into it.
    pub event_types: Vec<String>,
    pub offsets: Vec<usize>,
    pub seq_items: Vec<u32>,
    pub seq_times: Vec<i64>,
    pub seq_types: Vec<u16>,
    pub seq_values: Vec<f32>,
    /// One row per dense item id (`item_id` first, then the attributes of `fetch.items`; nulls
    /// for items that only appear in events). None without `fetch.items`.
    pub item_attributes: Option<RecordBatch>,
    /// One row per dense user id, likewise.
    pub user_attributes: Option<RecordBatch>,
    /// `fetch.impressions`, when the file declares it (what rankers train on).
    pub impressions: Option<Impressions>,
    pub stats: FetchStats,
}

impl Dataset {
    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    pub fn n_events(&self) -> usize {
        self.seq_items.len()
    }

    /// The items of user `u`, oldest first.
    pub fn user_items(&self, u: u32) -> &[u32] {
        &self.seq_items[self.offsets[u as usize]..self.offsets[u as usize + 1]]
    }

    /// The newest event time, the reference "now" of time windows and decay.
    pub fn max_time(&self) -> i64 {
        self.seq_times.iter().copied().max().unwrap_or(0)
    }

    /// The same users, items and attributes with only the events `keep(user, item, time)`
    /// accepts, and no impressions: what a policy is fitted on to score pairs it must not have
    /// seen (a ranker's out-of-fold inputs).
    pub fn retain_events(&self, keep: impl Fn(u32, u32, i64) -> bool) -> Dataset {
        let mut out = Dataset {
            users: self.users.clone(),
            items: self.items.clone(),
            event_types: self.event_types.clone(),
            offsets: Vec::with_capacity(self.offsets.len()),
            seq_items: Vec::new(),
            seq_times: Vec::new(),
            seq_types: Vec::new(),
            seq_values: Vec::new(),
            item_attributes: self.item_attributes.clone(),
            user_attributes: self.user_attributes.clone(),
            impressions: None,
            stats: self.stats.clone(),
        };
        out.offsets.push(0);
        for u in 0..self.n_users() {
            for e in self.offsets[u]..self.offsets[u + 1] {
                if keep(u as u32, self.seq_items[e], self.seq_times[e]) {
                    out.seq_items.push(self.seq_items[e]);
                    out.seq_times.push(self.seq_times[e]);
                    out.seq_types.push(self.seq_types[e]);
                    out.seq_values.push(self.seq_values[e]);
                }
            }
            out.offsets.push(out.seq_items.len());
        }
        out
    }
}
