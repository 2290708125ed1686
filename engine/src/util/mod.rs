//! Numeric utilities with no knowledge of the engine: a seeded generator, dense kernels,
//! top-k selection and memory readings. The bottom layer: nothing here imports another module of the crate.

pub mod hash;
pub mod linalg;
pub mod memory;
pub mod topk;
pub mod window;

/// Fault injection for the tests of interrupted runs: with `FEED_PAUSE_AT=<point>` the run
/// sleeps at that point (`index`: DEPLOYING, vectors written, index not yet; `upload`: a home on
/// object storage, the version's first file uploaded and the rest not), after creating the file
/// `FEED_PAUSE_MARKER` names, so that a test can kill it exactly there.
pub fn pause_for_tests(point: &str) {
    if std::env::var("FEED_PAUSE_AT").is_ok_and(|p| p == point) {
        if let Ok(marker) = std::env::var("FEED_PAUSE_MARKER") {
            let _ = std::fs::write(marker, point);
        }
        std::thread::sleep(std::time::Duration::from_secs(120));
    }
}
