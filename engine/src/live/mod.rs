//! Live events: the per-model write-ahead log that ingest acknowledges only once an event is on
//! disk ([`EventLog`]), and the overlay that layers the logged events over the ACTIVE version's
//! users ([`LiveUsers`]), so that the next query sees them. The next version trains on the log
//! too ([`for_training`]) and records how far it read; the overlay then keeps only the events
//! after that watermark.

pub mod event;
pub mod log;
mod overlay;

pub use event::{check_batch, impressions, Event};
pub use log::{read_from, Appended, EventLog, Position, Record};
pub use overlay::{Layered, LiveUsers};

use std::path::{Path, PathBuf};

use crate::config::EventsConfig;
use crate::dataset::{Logged, LoggedEvent};
use crate::error::Result;

/// Where a model's log lives: `<model folder>/events`.
pub fn log_dir(model_dir: &Path) -> PathBuf {
    model_dir.join("events")
}

/// What a new version trains on from the log: every interaction (by `events`, the new file's
/// types) logged so far, and the watermark that says so.
pub fn for_training(dir: &Path, events: &EventsConfig) -> Result<Logged> {
    let read = read_from(dir, Position::default())?;
    let watermark = read
        .records
        .last()
        .map_or(0, |r| r.seq + r.events.len() as u64);
    let events = read
        .records
        .into_iter()
        .flat_map(|r| r.events)
        .filter(|e| events.is_interaction(&e.kind))
        .map(|e| LoggedEvent {
            user_id: e.user_id,
            item_id: e.item_id,
            time: e.timestamp as i64,
            kind: e.kind,
            value: e.value.unwrap_or(1.0) as f32,
        })
        .collect();
    Ok(Logged { events, watermark })
}
