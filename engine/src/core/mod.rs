//! The engine's shared vocabulary: the policy traits and their types, the training context,
//! metrics, memory estimates and the training device. Everything above (evaluation, the networks, the policies,
//! serving) names these; nothing here imports a layer above `dataset`.

mod heads;
mod memory;
mod metrics;
mod policy;
mod training;

pub use heads::{HeadBaseline, HeadMetrics, HeadReport, RankerReport};
pub use memory::{human_bytes, MemoryEstimate, MemoryPart, MemoryReport};
pub use metrics::{Metrics, K};
pub use policy::{
    PairScores, Policy, RankContext, Scorer, TrainContext, TrainedPolicy, Validate, Vectors,
};
pub use training::{Compute, DeviceChoice, EpochPoint, TrainingSummary};
