//! The `Policy` extension point and what a trained policy offers serving and evaluation. The
//! implementations live in `policy/`, one file each; everything here is vocabulary that the
//! layers below them (evaluation, the networks) may name without importing a policy.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{DeviceChoice, MemoryEstimate, Metrics, TrainingSummary};
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::progress::Progress;

/// Scores a candidate model on the validation target.
pub type Validate<'a> = dyn Fn(&dyn Scorer) -> Metrics + Sync + 'a;

/// What evaluation needs of a model: a score for every item, per user. A trained policy is one;
/// so is a candidate during training (its vectors before they are kept), which is never saved
/// or refit.
///
/// Contract: `score_users` fills `out` (`users.len() * n_items`, row-major) with one row of
/// `n_items` scores per user, higher is better.
pub trait Scorer: Send + Sync {
    fn n_items(&self) -> usize;
    fn score_users(&self, users: &[u32], out: &mut [f32]);
}

/// What a training run may use besides the data.
pub struct TrainContext<'a> {
    pub progress: &'a dyn Progress,
    /// Every random choice derives from it, so CPU runs are reproducible.
    pub seed: u64,
    /// Set from outside to stop at the next iteration boundary.
    pub cancel: &'a AtomicBool,
    /// A line for the version's status log (per-iteration figures).
    pub log: &'a (dyn Fn(String) + Sync),
    /// Where neural policies train (chosen once per run; the reason is in the status log).
    pub device: DeviceChoice,
    /// Scores a candidate on the validation target (for early stopping). A policy uses it only
    /// when it trains on the training cut: on longer cuts the validation event is training data.
    pub validate: Option<&'a Validate<'a>>,
    /// Other policies' out-of-fold scores for impression pairs, for a ranker that reads them
    /// as inputs (`None` where no ranker trains: evaluation, the sequence encoder's own fits).
    pub pair_scores: Option<&'a dyn PairScores>,
}

/// Scores of other policies of the model for (user, item) pairs, each from a model that did
/// not see the pair's own events: what a ranker trains on when it reads a retrieval policy's
/// score as an input. At serving the same input is the deployed policy's score for a
/// candidate the user has not engaged with, so the training rows must not have seen their
/// own outcome either (a policy scores the pairs it trained on higher than any new one).
///
/// Contract: `scores` returns `users.len() × policies.len()` numbers, row-major; the models
/// behind a row see no event at or after `before` (so a ranker's test rows see no event of
/// their own period) and none of the row's own pair; it is deterministic for `ctx.seed`.
pub trait PairScores: Sync {
    fn scores(
        &self,
        policies: &[String],
        users: &[u32],
        items: &[u32],
        before: i64,
        ctx: &TrainContext<'_>,
    ) -> Result<Vec<f32>>;
}

impl TrainContext<'_> {
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// A learning algorithm with its hyper-parameters.
///
/// Contract: `train` sees only the interactions of the view it is given (so evaluation never
/// leaks held-out events), is deterministic for a given seed on the CPU, checks
/// `ctx.cancel` at least once per iteration, and returns a model that scores every item of the
/// catalog (items without interactions included).
///
/// `memory` estimates the peak memory of `train` on `data` (or, with `None`, from the settings
/// alone: catalog-sized parts count zero and sequences fill their configured length, so that
/// `validate` can refuse a configuration no data makes fit). It must not start the work it
/// estimates; a run is refused when the estimate exceeds `training.memory_limit`.
pub trait Policy: Send + Sync {
    fn name(&self) -> &str;
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate>;
    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>>;
}

/// A trained policy: scores items for users, and is saved with the model version.
///
/// Contract: `refit` continues from the trained state on a longer history (a cheap warm start,
/// not a retrain), so that evaluation on the test target sees the validation event and a
/// deployed model has learned from every event.
/// `score_users` fills a row of `n_items` scores per user, higher is better; `load` of what
/// `save` wrote gives the same scores.
pub trait TrainedPolicy: Scorer {
    fn kind(&self) -> &'static str;
    fn refit(&mut self, data: Interactions<'_>) -> Result<()>;
    fn save(&self, dir: &Path) -> Result<()>;

    /// Scores only `items` for `user` (`out.len() == items.len()`): what a query's scoring stage
    /// needs. The default scores the whole catalog; policies with vectors override it.
    fn score_items(&self, user: u32, items: &[u32], out: &mut [f32]) {
        let mut row = vec![0f32; self.n_items()];
        self.score_users(&[user], &mut row);
        for (o, &i) in out.iter_mut().zip(items) {
            *o = row[i as usize];
        }
    }

    /// The policy's named outputs (heads), in the order [`Self::score_heads`] fills them; the
    /// names its config declares (`PolicyConfig::heads`). One, `score`, unless it overrides.
    fn heads(&self) -> Vec<String> {
        vec![crate::config::SINGLE_HEAD.to_string()]
    }

    /// Scores `items` for `user` on every head: `out.len() == heads × items.len()`, one row per
    /// head in [`Self::heads`] order. A single-output policy's row is [`Self::score_items`].
    fn score_heads(&self, user: u32, items: &[u32], out: &mut [f32]) {
        self.score_items(user, items, out)
    }

    /// Whether its scores read the request's [`RankContext`] (a ranker): serving then scores
    /// through [`Self::score_heads_in`], for known and unknown users alike.
    fn reads_context(&self) -> bool {
        false
    }

    /// Scores `items` on every head, as [`Self::score_heads`], for `user` (`None`: a user the
    /// version did not train on) in `context`. The default ignores the context; a ranker reads
    /// it (affinity to the user's items, the hour) and scores unknown users from it.
    fn score_heads_in(
        &self,
        user: Option<u32>,
        _context: &RankContext<'_>,
        items: &[u32],
        out: &mut [f32],
    ) {
        match user {
            Some(u) => self.score_heads(u, items, out),
            None => out.fill(0.0),
        }
    }

    /// The policies whose scores for the candidates it reads, in [`RankContext::scores`] in
    /// this order (a ranker with `scores: [als]`); serving computes them before calling
    /// [`Self::score_heads_in`].
    fn score_inputs(&self) -> &[String] {
        &[]
    }

    /// A ranker's figures on held-out impressions, reported instead of ranking metrics.
    fn ranker_report(&self) -> Option<&super::RankerReport> {
        None
    }

    /// Whether `score_users` is exactly the dot product of [`Self::vectors`] (no biases, no
    /// nonlinearity), so that a nearest-neighbour search of the user's vector ranks as the
    /// policy does.
    fn score_is_dot(&self) -> bool {
        false
    }

    /// User and item vectors, for policies that have them (similarity retrieval, diversity).
    fn vectors(&self) -> Option<Vectors<'_>> {
        None
    }

    /// A query vector for a sequence of items (oldest first), for policies that encode
    /// sequences (SASRec): what the `history` encoder asks for. `None`: average item vectors.
    fn encode_sequence(&self, _items: &[u32]) -> Option<Vec<f32>> {
        None
    }

    /// Vectors for items added after training, from their attributes: `added` holds their rows
    /// (`item_id` and attributes); `trained` and `users` the version's own item and user rows,
    /// as it trained on them (what features are fitted on). `None` when the policy cannot place
    /// an item from its features (the added items then get zero vectors). Called off the
    /// request path, once per change of the catalog.
    fn embed_items(
        &self,
        _added: &datafusion::arrow::array::RecordBatch,
        _trained: &datafusion::arrow::array::RecordBatch,
        _users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }

    /// A user's vector computed now from their history (`history`: trained items, oldest
    /// first) and, for a user the version trained on (`user`), their id and attributes
    /// (`users`: the version's user rows): for a user with live interactions the version never
    /// saw. `None` when the policy's user vector does not read a history. Runs per request.
    fn encode_user(
        &self,
        _user: Option<u32>,
        _history: &[u32],
        _trained: &datafusion::arrow::array::RecordBatch,
        _users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Option<Vec<f32>>> {
        Ok(None)
    }

    /// Epochs, device and time of a neural policy's training (stored with its evaluation).
    fn training_summary(&self) -> Option<&TrainingSummary> {
        None
    }
}

/// What a ranker reads of a request besides the user's id.
#[derive(Debug, Clone, Copy, Default)]
pub struct RankContext<'a> {
    /// The items the user interacted with (the version's and live), sorted, without repeats.
    pub seen: &'a [u32],
    /// The request's time, seconds since the epoch.
    pub now: i64,
    /// Per policy of [`TrainedPolicy::score_inputs`], its score for each candidate (in the
    /// order of the items scored); empty where the caller has none (a ranker then reads each
    /// as its training mean).
    pub scores: &'a [Vec<f32>],
}

/// Row-major vectors of a policy: `users.len() == n_users * dim`, `items.len() == n_items * dim`.
#[derive(Clone, Copy)]
pub struct Vectors<'a> {
    pub dim: usize,
    pub users: &'a [f32],
    pub items: &'a [f32],
}

impl Vectors<'_> {
    pub fn user(&self, u: u32) -> &[f32] {
        &self.users[u as usize * self.dim..(u as usize + 1) * self.dim]
    }

    pub fn item(&self, i: u32) -> &[f32] {
        &self.items[i as usize * self.dim..(i as usize + 1) * self.dim]
    }

    /// The mean of `items`' vectors: the query vector of a history or an item list for a
    /// policy without a sequence encoder. `None` for no items.
    pub fn mean_of(&self, items: &[u32]) -> Option<Vec<f32>> {
        if items.is_empty() {
            return None;
        }
        let mut q = vec![0f32; self.dim];
        for &i in items {
            for (a, b) in q.iter_mut().zip(self.item(i)) {
                *a += b / items.len() as f32;
            }
        }
        Some(q)
    }
}
