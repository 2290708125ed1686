//! The lang crate's tests: golden files and a no-panic property test.

mod golden;
mod no_panic;
mod spec;
