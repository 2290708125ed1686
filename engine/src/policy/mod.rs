//! The `Policy` extension point: a way to learn item rankings from interactions. One file per
//! policy type.

mod als;
mod multi_task;
mod onnx;
mod popular;
mod sasrec;
mod two_tower;

use std::path::Path;

pub use als::{Als, TrainedAls};
pub use multi_task::{check_columns as check_ranker_columns, MultiTask, TrainedMultiTask};
pub use onnx::{
    check_columns as check_onnx_columns, check_file as check_onnx_file, Onnx, TrainedOnnx,
};
pub use popular::{Popular, TrainedPopular};
pub use sasrec::{Sasrec, TrainedSasrec};
pub use two_tower::{TrainedTwoTower, TwoTower};

pub use crate::core::{
    MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy, Validate, Vectors,
};

use crate::config::{ModelConfig, PolicyConfig};
use crate::error::Result;

/// The policy a config block of `model` declares.
pub fn build(model: &ModelConfig, config: &PolicyConfig) -> Box<dyn Policy> {
    match config {
        PolicyConfig::Popular(c) => Box::new(Popular::new(c.clone())),
        PolicyConfig::Als(c) => Box::new(Als::new(c.clone())),
        PolicyConfig::Sasrec(c) => Box::new(Sasrec::new(c.clone())),
        PolicyConfig::TwoTower(c) => Box::new(TwoTower::new(c.clone())),
        PolicyConfig::MultiTask(c) => Box::new(MultiTask::new(c.clone())),
        PolicyConfig::Onnx(c) => Box::new(Onnx::new(c.clone(), model.onnx_file(c))),
    }
}

/// Loads what [`TrainedPolicy::save`] wrote for a policy declared by `config`.
pub fn load(config: &PolicyConfig, dir: &Path) -> Result<Box<dyn TrainedPolicy>> {
    match config {
        PolicyConfig::Popular(c) => Ok(Box::new(TrainedPopular::load(c, dir)?)),
        PolicyConfig::Als(c) => Ok(Box::new(TrainedAls::load(c, dir)?)),
        PolicyConfig::Sasrec(c) => Ok(Box::new(TrainedSasrec::load(c, dir)?)),
        PolicyConfig::TwoTower(c) => Ok(Box::new(TrainedTwoTower::load(c, dir)?)),
        PolicyConfig::MultiTask(c) => Ok(Box::new(TrainedMultiTask::load(c, dir)?)),
        PolicyConfig::Onnx(c) => Ok(Box::new(TrainedOnnx::load(c, dir)?)),
    }
}
