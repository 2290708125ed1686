//! The machinery of the neural policies, on burn: the device a run trains on, parameters
//! initialised from our own seeded generator, the SASRec network with its losses, dense sequence
//! batches and the epoch loop with early stopping.
//!
//! The networks are generic over burn's `Backend`, so one model code trains on the `flex` CPU
//! backend (tests, laptops) and on CUDA (a GPU build); what leaves this module is plain `f32`
//! vectors and a weights record, independent of the backend that made them.

mod device;
pub(crate) mod embeddings;
pub(crate) mod features;
pub(crate) mod fused_softmax;
mod layers;
pub(crate) mod multi_task;
pub(crate) mod sasrec;
pub(crate) mod sasrec_fit;
mod sequences;
mod softmax_ce;
pub(crate) mod train;
pub(crate) mod two_tower;

pub use crate::core::{Compute, DeviceChoice, TrainingSummary};
pub use device::choose as choose_device;
pub(crate) use device::on_device;

/// The CPU backend: training and serving-time inference.
pub(crate) type Cpu = burn::backend::Flex;
