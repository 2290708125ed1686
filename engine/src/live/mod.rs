//! Live events: the per-model write-ahead log that ingest acknowledges only once an event is on
//! disk ([`EventLog`]), and the overlay that layers the logged events over the ACTIVE version's
//! users ([`LiveUsers`]), so that the next query sees them. The next version trains on the log
//! too ([`for_training`]) and records how far it read; the overlay then keeps only the events
//! after that watermark.

mod compact;
pub mod event;
mod items;
pub mod log;
mod overlay;

pub use compact::{compact, Compaction};
pub use event::{check_batch, impressions, Event, Shown};
pub use items::{check_changes, items_dir, items_watermark, ItemChange, LiveItems};
pub use log::{read_from, Appended, Entry, EventLog, Log, Position, Record};

/// The log of a model's catalog changes.
pub type ItemLog = Log<ItemChange>;
pub use overlay::{Layered, LiveUsers};

use std::path::{Path, PathBuf};

use crate::config::EventsConfig;
use crate::dataset::{Logged, LoggedEvent};
use crate::error::Result;
use crate::registry::Registry;
use crate::serving::Snapshot;

/// The ACTIVE version of `model` with its live catalog changes applied, and its live users:
/// what a one-shot command (`feedctl rank`, `query`) serves from, as the server would.
pub fn load_active(registry: &Registry, model: &str) -> Result<(Snapshot, LiveUsers)> {
    let snapshot = Snapshot::load_active(registry, model)?;
    let items = LiveItems::of_model(registry, model)?;
    let snapshot = match items.apply(&snapshot)? {
        Some(changed) => changed,
        None => snapshot,
    };
    Ok((snapshot, LiveUsers::of_model(registry, model)?))
}

/// Where a model's log lives: `<model folder>/events`.
pub fn log_dir(model_dir: &Path) -> PathBuf {
    model_dir.join("events")
}

/// What a new version trains on from the log of the model in `model_dir`: every interaction (by
/// `events`, the new file's types) logged so far and within `events.retention`, compacted or
/// not, and the watermark that says so; and how far the item log reached as its fetch began.
pub fn for_training(model_dir: &Path, events: &EventsConfig) -> Result<Logged> {
    let items_watermark = items_watermark(&items_dir(model_dir))?;
    let dir = log_dir(model_dir);
    let compacted = compact::read(&dir)?;
    let compacted_end = compacted.iter().map(|c| c.end).max().unwrap_or(0);
    let read = read_from::<Event>(&dir, Position::default())?;
    let watermark = read
        .records
        .last()
        .map_or(compacted_end, |r| r.seq + r.entries.len() as u64);
    let oldest = events
        .retention_seconds()
        .map_or(f64::MIN, |keep| now() - keep as f64);
    // A segment that a crash left beside its compacted file: its events are read once.
    let logged = read
        .records
        .into_iter()
        .flat_map(|r| r.numbered())
        .filter(|(seq, _)| *seq >= compacted_end);
    let events = compacted
        .into_iter()
        .flat_map(|c| c.events)
        .chain(logged)
        .map(|(_, e)| e)
        .filter(|e| e.timestamp >= oldest && events.is_interaction(&e.kind))
        .map(|e| LoggedEvent {
            user_id: e.user_id,
            item_id: e.item_id,
            time: e.timestamp as i64,
            kind: e.kind,
            value: e.value.unwrap_or(1.0) as f32,
        })
        .collect();
    Ok(Logged {
        events,
        watermark,
        items_watermark,
    })
}

/// Seconds since the epoch now.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
