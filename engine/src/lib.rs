//! The Feed engine: model files, fetch, datasets, policies, evaluation, the registry of model
//! versions and ranking over an immutable snapshot of the ACTIVE version.
//!
//! Knows nothing of HTTP, JSON wire types or the command line (that is `feedctl`).

pub mod config;
pub mod core;
pub mod dataset;
mod error;
pub mod eval;
pub mod expr;
pub mod fetch;
pub mod lifecycle;
pub mod live;
pub mod nn;
pub mod policy;
pub mod progress;
pub mod query;
pub mod registry;
pub mod serving;
pub mod store;
pub mod util;
pub mod vectors;

#[cfg(test)]
mod module_order;

pub use error::{did_you_mean, ConfigError, Error, Result};
pub use lifecycle::{Mode, Outcome, RunOptions};
pub use progress::{NoProgress, Progress};
pub use query::{ParamValue, Params, QueryRequest, QueryResult, RankRequest, Ranking};
pub use registry::{Registry, Status, VersionInfo};
pub use serving::Snapshot;

/// Re-exported so that callers use the same Arrow version as the engine.
pub use datafusion::arrow;
/// The query language, whose errors and spans the engine's query errors carry.
pub use feed_lang;
