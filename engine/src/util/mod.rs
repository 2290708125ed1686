//! Numeric utilities with no knowledge of the engine: a seeded generator, dense kernels and
//! top-k selection. The bottom layer: nothing here imports another module of the crate.

pub mod linalg;
pub mod topk;
