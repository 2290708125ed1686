//! How long-running work reports progress. The engine calls it; `cli` draws bars with it.

/// A sink for progress of one stage at a time (fetch, a policy's training, evaluation).
pub trait Progress: Send + Sync {
    /// A new stage begins; `total` is in the stage's own units (rows, iterations), if known.
    fn start(&self, label: &str, total: Option<u64>);
    /// `n` more units are done.
    fn inc(&self, n: u64);
    /// A short line about the current state (loss, metric).
    fn message(&self, msg: &str);
    /// The stage is over.
    fn finish(&self);
}

/// Progress that goes nowhere (tests, the server).
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: Option<u64>) {}
    fn inc(&self, _: u64) {}
    fn message(&self, _: &str) {}
    fn finish(&self) {}
}
