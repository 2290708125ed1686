//! Where a policy trains and how its training went: chosen by `nn::choose_device`, recorded in
//! the evaluation report.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute {
    Cpu,
    Cuda,
}

/// The device and, in words, why (it goes into the status log).
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    pub compute: Compute,
    pub reason: String,
}

impl DeviceChoice {
    pub fn cpu(reason: impl Into<String>) -> Self {
        Self {
            compute: Compute::Cpu,
            reason: reason.into(),
        }
    }
}

/// How a neural policy's training went, stored with its evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Where it trained, and why there.
    pub device: String,
    /// Epochs run (early stopping may end before `epochs`).
    pub epochs: usize,
    /// The epoch whose weights were kept.
    pub best_epoch: usize,
    /// Its validation NDCG@10, when validation ran.
    pub best_valid_ndcg: Option<f64>,
    /// Wall time per epoch, validation included.
    pub seconds_per_epoch: f64,
    /// Wall time per epoch of the optimiser steps alone (what compares with another framework).
    #[serde(default)]
    pub train_seconds_per_epoch: f64,
}
