//! The `Policy` extension point: a way to learn item rankings from interactions. One file per
//! policy type.

mod als;
pub(crate) mod linalg;
mod popular;
mod sasrec;
mod two_tower;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

pub use als::{Als, TrainedAls};
pub use popular::{Popular, TrainedPopular};
pub use sasrec::{Sasrec, TrainedSasrec};
pub use two_tower::{TrainedTwoTower, TwoTower};

use crate::config::PolicyConfig;
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::eval::Metrics;
use crate::nn::{DeviceChoice, TrainingSummary};
use crate::progress::Progress;

/// Scores a candidate model on the validation target.
pub type Validate<'a> = dyn Fn(&dyn TrainedPolicy) -> Metrics + Sync + 'a;

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
pub trait Policy: Send + Sync {
    fn name(&self) -> &str;
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
pub trait TrainedPolicy: Send + Sync {
    fn kind(&self) -> &'static str;
    fn n_items(&self) -> usize;
    fn refit(&mut self, data: Interactions<'_>) -> Result<()>;
    /// `out.len() == users.len() * n_items`, row-major.
    fn score_users(&self, users: &[u32], out: &mut [f32]);
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

    /// Epochs, device and time of a neural policy's training (stored with its evaluation).
    fn training_summary(&self) -> Option<&TrainingSummary> {
        None
    }
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
}

/// The policy a config block declares.
pub fn build(config: &PolicyConfig) -> Box<dyn Policy> {
    match config {
        PolicyConfig::Popular(c) => Box::new(Popular::new(c.clone())),
        PolicyConfig::Als(c) => Box::new(Als::new(c.clone())),
        PolicyConfig::Sasrec(c) => Box::new(Sasrec::new(c.clone())),
        PolicyConfig::TwoTower(c) => Box::new(TwoTower::new(c.clone())),
    }
}

/// Loads what [`TrainedPolicy::save`] wrote for a policy declared by `config`.
pub fn load(config: &PolicyConfig, dir: &Path) -> Result<Box<dyn TrainedPolicy>> {
    match config {
        PolicyConfig::Popular(c) => Ok(Box::new(TrainedPopular::load(c, dir)?)),
        PolicyConfig::Als(c) => Ok(Box::new(TrainedAls::load(c, dir)?)),
        PolicyConfig::Sasrec(c) => Ok(Box::new(TrainedSasrec::load(c, dir)?)),
        PolicyConfig::TwoTower(c) => Ok(Box::new(TrainedTwoTower::load(c, dir)?)),
    }
}
