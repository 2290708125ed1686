//! Serving a model version: its artifacts on disk (`artifacts`), an immutable in-memory
//! snapshot of the ACTIVE version (`snapshot`) and ranking over it (`rank`).

pub mod artifacts;
mod rank;
mod snapshot;

pub use rank::{RankRequest, Ranking};
pub use snapshot::Snapshot;
