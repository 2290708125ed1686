//! Live user state: the events of the log, per user, layered over a version's users through
//! [`UserState`]. A query sees an interaction posted a moment ago in the user's seen items
//! (`NOT seen()`, rank's exclusions) and in their history (the `history` encoder), and a user
//! the version never trained on gets a history of their own.
//!
//! The overlay keeps external item ids, not dense ones: it outlives a version, and the next
//! version numbers its catalog anew. Which types are interactions is read from the serving
//! version's file at each lookup, so a change of `events.interactions` applies with the version.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::event::Event;
use super::log::{read_from, Position};
use crate::config::IMPRESSION;
use crate::error::Result;
use crate::expr::LIVE_HORIZON;
use crate::registry::Registry;
use crate::serving::artifacts::recent_len;
use crate::serving::{RecentEvent, Snapshot, UserState, UserView};

/// One live event of a user, as the overlay keeps it.
#[derive(Debug, Clone)]
struct Live {
    item: String,
    kind: String,
    /// The event's number in the log (against a version's watermark).
    seq: u64,
    /// Seconds since the epoch.
    time: f64,
}

#[derive(Default)]
struct State {
    users: HashMap<String, Vec<Live>>,
    /// Events held.
    events: u64,
    /// The watermark of the last [`LiveUsers::forget_before`].
    forgotten: u64,
}

impl State {
    /// Holds event number `seq` under its user.
    fn add(&mut self, seq: u64, e: Event) {
        self.users.entry(e.user_id).or_default().push(Live {
            item: e.item_id,
            kind: e.kind,
            seq,
            time: e.timestamp,
        });
    }
}

/// The live events of one model, read from its log.
pub struct LiveUsers {
    dir: PathBuf,
    state: RwLock<State>,
    /// How far the log has been read (a catch-up at a time).
    read: Mutex<Position>,
}

impl LiveUsers {
    /// The overlay of the log in `dir`, empty until [`Self::catch_up`].
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
            read: Mutex::new(Position::default()),
        }
    }

    /// Reads what the log gained since the last call (this process's appends and other
    /// writers'); returns how many events that was. Cheap when nothing is new: one directory
    /// listing and a read at the end of the last segment.
    pub fn catch_up(&self) -> Result<usize> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let found = read_from::<Event>(&self.dir, *read)?;
        let n: usize = found.records.iter().map(|r| r.entries.len()).sum();
        if n > 0 {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for (seq, e) in found.records.into_iter().flat_map(|r| r.numbered()) {
                state.add(seq, e);
            }
            state.events += n as u64;
        }
        *read = found.end;
        Ok(n)
    }

    /// Keeps up with the log under a serving version whose watermark is `watermark`: reads
    /// what is new and forgets what the version trained on. A watermark below what was forgotten
    /// (the serving version trained on less of the log) reads the log again from its start.
    pub fn follow(&self, watermark: u64) -> Result<()> {
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if watermark < state.forgotten {
                let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
                *state = State::default();
                *read = Position::default();
                // Events a newer version trained on may have been compacted out of the log.
                for (seq, e) in super::compact::read(&self.dir)?
                    .into_iter()
                    .flat_map(|c| c.events)
                    .filter(|(seq, _)| *seq >= watermark)
                {
                    state.add(seq, e);
                    state.events += 1;
                }
            }
        }
        self.catch_up()?;
        self.forget_before(watermark);
        Ok(())
    }

    /// Drops the events numbered below `watermark`: a version that trained on them serves
    /// them from its own arrays, and the overlay skips them anyway (see [`Layered`]).
    /// Events of the last [`LIVE_HORIZON`] stay for `served()`, `recent()` and `affinity()`
    /// (which read the log's times, not a version's arrays).
    pub fn forget_before(&self, watermark: u64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.forgotten >= watermark {
            return;
        }
        let mut dropped = 0;
        let horizon = super::now() - LIVE_HORIZON as f64;
        state.users.retain(|_, events| {
            let before = events.len();
            events.retain(|e| e.seq >= watermark || e.time >= horizon);
            dropped += before - events.len();
            !events.is_empty()
        });
        state.events -= dropped as u64;
        state.forgotten = watermark;
    }

    /// The live events of `model` in `registry`, read to the end of its log (none when the
    /// model has no log yet): what a one-shot command (`feedctl rank`, `query`) layers over
    /// the version it loads.
    pub fn of_model(registry: &Registry, model: &str) -> Result<Self> {
        let live = Self::new(&super::log_dir(&registry.model_dir(model)));
        live.catch_up()?;
        Ok(live)
    }

    /// The log's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Events held (read and not forgotten), and the users they name.
    pub fn counts(&self) -> (u64, usize) {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        (state.events, state.users.len())
    }

    /// User state of `snapshot` with these live events over it.
    pub fn over<'a>(&'a self, snapshot: &'a Snapshot) -> Layered<'a> {
        Layered {
            live: self,
            snapshot,
        }
    }
}

/// A version's users with the live events over them.
pub struct Layered<'a> {
    live: &'a LiveUsers,
    snapshot: &'a Snapshot,
}

impl UserState for Layered<'_> {
    fn served(&self, id: &str, since: f64) -> Vec<u32> {
        let state = self.live.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(events) = state.users.get(id) else {
            return Vec::new();
        };
        let catalog = &self.snapshot.catalog;
        events
            .iter()
            .filter(|e| e.kind == IMPRESSION && e.time >= since)
            .filter_map(|e| catalog.dense(&e.item))
            .collect()
    }

    fn recent_events(&self, id: &str, since: f64) -> Vec<RecentEvent> {
        let state = self.live.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(events) = state.users.get(id) else {
            return Vec::new();
        };
        let types = &self.snapshot.config.events;
        events
            .iter()
            .filter(|e| e.time >= since)
            .map(|e| RecentEvent {
                item: self.snapshot.catalog.dense(&e.item),
                kind: e.kind.clone(),
                interaction: types.is_interaction(&e.kind),
            })
            .collect()
    }

    fn user(&self, id: &str) -> Option<UserView<'_>> {
        let base = self.snapshot.user_state().user(id);
        let state = self.live.state.read().unwrap_or_else(|e| e.into_inner());
        let Some(events) = state.users.get(id) else {
            return base;
        };
        let types = &self.snapshot.config.events;
        let catalog = &self.snapshot.catalog;
        // Events the version trained on are in its arrays already. Items its catalog lacks
        // cannot be excluded or encoded: they wait for the version that has them.
        let watermark = self.snapshot.manifest.live_watermark;
        let items: Vec<u32> = events
            .iter()
            .filter(|e| e.seq >= watermark && types.is_interaction(&e.kind))
            .filter_map(|e| catalog.dense(&e.item))
            .collect();
        if items.is_empty() {
            return base;
        }
        let (dense, mut seen, mut recent) = match base {
            Some(v) => (v.dense, v.seen.into_owned(), v.recent.into_owned()),
            None => (None, Vec::new(), Vec::new()),
        };
        seen.extend_from_slice(&items);
        seen.sort_unstable();
        seen.dedup();
        recent.extend_from_slice(&items);
        let keep = recent_len(&self.snapshot.config);
        recent.drain(..recent.len().saturating_sub(keep));
        Some(UserView {
            dense,
            seen: Cow::Owned(seen),
            recent: Cow::Owned(recent),
            live: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventsConfig;
    use crate::live::event::test_event as event;
    use crate::live::EventLog;

    #[test]
    fn interactions_after_the_watermark_join_seen_and_recent() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.append(vec![
            event("u0", "i30", "click"),
            event("u0", "i31", "click"),
            event("u0", "i32", "hide"),
            event("stranger", "i7", "click"),
            event("stranger", "not-in-catalog", "click"),
        ])
        .unwrap();
        let live = LiveUsers::new(dir.path());
        assert_eq!(live.catch_up().unwrap(), 5);
        assert_eq!(live.catch_up().unwrap(), 0);
        let mut snapshot = crate::query::tests::snapshot();
        snapshot.config.events = EventsConfig {
            types: vec!["click".into(), "hide".into()],
            interactions: Some(vec!["click".into()]),
            retention: None,
        };
        // The version trained on the log's first event already.
        snapshot.manifest.live_watermark = 1;
        let users = live.over(&snapshot);

        let u0 = users.user("u0").unwrap();
        assert_eq!(u0.dense, Some(0));
        assert_eq!(&u0.seen[..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31]);
        assert_eq!(u0.recent.last(), Some(&31));
        // A user the version never saw: their live interactions, no dense id.
        let s = users.user("stranger").unwrap();
        assert_eq!(
            (s.dense, &s.seen[..], &s.recent[..]),
            (None, &[7u32][..], &[7u32][..])
        );
        // Users without live events read as the version has them.
        assert_eq!(&users.user("u1").unwrap().seen[..], &[10, 11, 12, 13, 14]);
        assert!(users.user("nobody").is_none());

        // Forgetting what the version trained on changes no answer, and frees the events.
        let before = users.user("u0").unwrap().seen.into_owned();
        live.forget_before(1);
        assert_eq!(live.counts(), (4, 2));
        assert_eq!(users.user("u0").unwrap().seen.into_owned(), before);
        live.forget_before(5);
        assert_eq!(live.counts(), (0, 0));
        // A serving version that trained on less of the log: read again from the start.
        live.follow(2).unwrap();
        assert_eq!(live.counts(), (3, 2));
    }
}
