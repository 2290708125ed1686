//! One file per verb.

pub mod bench;
pub mod bench_events;
pub mod bench_vectors;
pub mod cluster;
pub mod create;
pub mod delete;
pub mod events;
pub mod items;
pub mod keys;
pub mod list;
pub mod promote;
pub mod query;
pub mod rank;
pub mod rollback;
pub mod schema;
pub mod serve;
pub mod shadow;
pub mod synth;
pub mod validate;
pub mod view;
