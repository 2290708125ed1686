//! What serving knows of a user: whether the version knows them, the items they interacted with
//! and their latest items in time order. Every reader (`NOT seen()`, the history encoder, rank's
//! exclusions, the unknown-user fallback) goes through [`UserState`], so live events can layer
//! over a version's arrays without touching query code.

use std::borrow::Cow;

use datafusion::arrow::array::RecordBatch;
use datafusion::scalar::ScalarValue;

use crate::dataset::IdMap;
use crate::error::{Error, Result};

/// One user's state as a request sees it.
#[derive(Debug, Clone)]
pub struct UserView<'a> {
    /// The user's dense id in the trained version, which personal scores and vectors are keyed
    /// by; `None` for a user the version never trained on.
    pub dense: Option<u32>,
    /// Items the user interacted with, sorted, without repeats.
    pub seen: Cow<'a, [u32]>,
    /// The user's latest items, oldest first (as many as the longest history encoder reads).
    pub recent: Cow<'a, [u32]>,
    /// Whether live interactions the version did not train on are part of it (then a policy
    /// that encodes users from their history encodes this one anew).
    pub live: bool,
}

impl UserView<'_> {
    /// Whether there is anything to personalise from (a user listed by `fetch.users` alone has
    /// no events).
    pub fn has_events(&self) -> bool {
        !self.seen.is_empty()
    }
}

/// Where serving reads user state.
///
/// Contract: `user` answers for an external user id; `None` when nothing is known of the user.
/// The slices of a view are sorted (`seen`) or in time order (`recent`) and name items of the
/// version's catalog only. An implementation answers from memory: it runs on the request path.
pub trait UserState: Send + Sync {
    fn user(&self, id: &str) -> Option<UserView<'_>>;

    /// Items served to the user (their impressions) at or after `since` (seconds since the
    /// epoch): `served()`'s suppression across refreshes. A version's arrays hold none.
    fn served(&self, _id: &str, _since: f64) -> Vec<u32> {
        Vec::new()
    }

    /// The user's live events at or after `since`, oldest first: what `recent()` and
    /// `affinity()` read. A version's arrays hold none.
    fn recent_events(&self, _id: &str, _since: f64) -> Vec<RecentEvent> {
        Vec::new()
    }
}

/// One of a user's live events, as `recent()` and `affinity()` read it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentEvent {
    /// The item, when the catalog has it.
    pub item: Option<u32>,
    pub kind: String,
    /// Whether the serving version counts the type as an interaction.
    pub interaction: bool,
}

/// The users of a version, from its arrays.
pub struct Users {
    pub(crate) ids: IdMap,
    /// `user_id` and the attributes, one row per dense user.
    pub(crate) table: RecordBatch,
    seen_offsets: Vec<u64>,
    seen_items: Vec<u32>,
    recent_offsets: Vec<u64>,
    recent_items: Vec<u32>,
}

impl Users {
    /// Users from their table (first column `user_id`) and CSR arrays of seen and recent items.
    pub fn new(
        table: RecordBatch,
        seen: (Vec<u64>, Vec<u32>),
        recent: (Vec<u64>, Vec<u32>),
    ) -> Result<Self> {
        let ids = IdMap::from_ids(super::snapshot::string_column(&table, "user_id")?);
        if seen.0.len() != ids.len() + 1 || recent.0.len() != ids.len() + 1 {
            return Err(Error::Internal(format!(
                "the user arrays disagree with the {} users",
                ids.len()
            )));
        }
        Ok(Self {
            ids,
            table,
            seen_offsets: seen.0,
            seen_items: seen.1,
            recent_offsets: recent.0,
            recent_items: recent.1,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// The external ids of the users the version knows, by dense id.
    pub fn ids(&self) -> &[String] {
        self.ids.ids()
    }

    /// The items dense user `u` interacted with, sorted.
    pub(crate) fn seen(&self, u: u32) -> &[u32] {
        &self.seen_items
            [self.seen_offsets[u as usize] as usize..self.seen_offsets[u as usize + 1] as usize]
    }

    /// Dense user `u`'s latest items, oldest first.
    pub(crate) fn recent(&self, u: u32) -> &[u32] {
        &self.recent_items
            [self.recent_offsets[u as usize] as usize..self.recent_offsets[u as usize + 1] as usize]
    }

    /// Dense user `u`'s value of attribute `column`.
    pub fn attribute(&self, u: u32, column: &str) -> Option<ScalarValue> {
        let array = self.table.column_by_name(column)?;
        ScalarValue::try_from_array(array, u as usize).ok()
    }
}

impl UserState for Users {
    fn user(&self, id: &str) -> Option<UserView<'_>> {
        let u = self.ids.get(id)?;
        Some(UserView {
            dense: Some(u),
            seen: Cow::Borrowed(self.seen(u)),
            recent: Cow::Borrowed(self.recent(u)),
            live: false,
        })
    }
}
