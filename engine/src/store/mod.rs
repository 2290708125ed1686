//! Artifacts on disk: flat numeric arrays, Arrow IPC tables, and atomic small files.
//!
//! Every file of a version is written and fsynced before the version can become ACTIVE; the
//! ACTIVE pointer itself is replaced atomically (write, fsync, rename, fsync folder).

mod arrays;
mod atomic;
pub mod lance;
mod tables;

pub use arrays::{
    read_f32s, read_i64s, read_u32s, read_u64s, write_f32s, write_i64s, write_u32s, write_u64s,
};
pub use atomic::{fsync_dir, fsync_tree, read_json, write_atomic, write_private};
pub use tables::{read_table, write_table};
