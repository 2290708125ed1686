//! Numeric utilities with no knowledge of the engine: a seeded generator, dense kernels,
//! top-k selection and memory readings. The bottom layer: nothing here imports another module of the crate.

pub mod linalg;
pub mod memory;
pub mod topk;
pub mod window;
