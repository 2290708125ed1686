//! Live events: the per-model write-ahead log that ingest acknowledges only once an event is on
//! disk ([`EventLog`]), and the overlay that layers the logged events over the ACTIVE version's
//! users ([`LiveUsers`]), so that the next query sees them.

pub mod event;
pub mod log;
mod overlay;

pub use event::{check_batch, Event};
pub use log::{read_from, Appended, EventLog, Position, Record};
pub use overlay::{Layered, LiveUsers};

use std::path::{Path, PathBuf};

/// Where a model's log lives: `<model folder>/events`.
pub fn log_dir(model_dir: &Path) -> PathBuf {
    model_dir.join("events")
}
