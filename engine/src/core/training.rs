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
    /// What `EpochPoint::valid` measures (`NDCG@10`, or a held-out loss's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
    /// Every epoch run, in order: the training curve (versions before it was kept have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<EpochPoint>,
}

/// One epoch of a neural training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochPoint {
    pub epoch: usize,
    /// The mean training loss over the epoch's steps.
    pub loss: f64,
    /// The validation figure after the epoch, when validation ran.
    pub valid: Option<f64>,
    /// Wall time, validation included.
    pub seconds: f64,
}
