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
}
