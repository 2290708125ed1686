//! Time-ordered leave-last-out: per user with at least three events, the last event is the test
//! target and the one before it the validation target; everything earlier is training data.

use super::Dataset;

/// How much of each user's history a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Training events only (the model being evaluated on validation).
    Train,
    /// Training and validation events (the history when evaluating on test).
    TrainValid,
    /// Everything (what a deployed model is refit on).
    All,
}

/// Which held-out event a metric predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Valid,
    Test,
}

impl Target {
    /// The history visible when predicting this target.
    pub fn history(self) -> Cut {
        match self {
            Target::Valid => Cut::Train,
            Target::Test => Cut::TrainValid,
        }
    }
}

/// Users with fewer events than this keep all of them for training and are not evaluated.
pub const MIN_EVENTS_FOR_SPLIT: usize = 3;

/// A read-only view of a dataset that shows each user a prefix of their history.
#[derive(Clone, Copy)]
pub struct Interactions<'a> {
    pub ds: &'a Dataset,
    pub cut: Cut,
}

impl Dataset {
    pub fn view(&self, cut: Cut) -> Interactions<'_> {
        Interactions { ds: self, cut }
    }

    /// The held-out item of user `u` for `target`, if the user is evaluated.
    pub fn target(&self, u: u32, target: Target) -> Option<u32> {
        let items = self.user_items(u);
        let n = items.len();
        if n < MIN_EVENTS_FOR_SPLIT {
            return None;
        }
        Some(match target {
            Target::Valid => items[n - 2],
            Target::Test => items[n - 1],
        })
    }
}

impl<'a> Interactions<'a> {
    pub fn n_users(&self) -> usize {
        self.ds.n_users()
    }

    pub fn n_items(&self) -> usize {
        self.ds.n_items()
    }

    fn visible(&self, u: u32) -> std::ops::Range<usize> {
        let start = self.ds.offsets[u as usize];
        let end = self.ds.offsets[u as usize + 1];
        let n = end - start;
        let hide = if n < MIN_EVENTS_FOR_SPLIT {
            0
        } else {
            match self.cut {
                Cut::Train => 2,
                Cut::TrainValid => 1,
                Cut::All => 0,
            }
        };
        start..end - hide
    }

    /// The visible items of user `u`, oldest first.
    pub fn items(&self, u: u32) -> &'a [u32] {
        &self.ds.seq_items[self.visible(u)]
    }

    /// The visible event times of user `u`.
    pub fn times(&self, u: u32) -> &'a [i64] {
        &self.ds.seq_times[self.visible(u)]
    }

    /// The visible event values of user `u` (1 where the fetch gave none).
    pub fn values(&self, u: u32) -> &'a [f32] {
        &self.ds.seq_values[self.visible(u)]
    }

    /// The newest visible event time.
    pub fn max_time(&self) -> i64 {
        (0..self.n_users() as u32)
            .flat_map(|u| self.times(u).last().copied())
            .max()
            .unwrap_or(0)
    }

    pub fn n_events(&self) -> usize {
        (0..self.n_users() as u32)
            .map(|u| self.visible(u).len())
            .sum()
    }
}
