//! Live changes to a model's catalog: attribute values set (a price, `in_stock`, a new item
//! with its attributes) and items deleted, acknowledged once durable in the model's item log
//! (`<model>/items`, the same record format as the event log) and applied over the serving
//! version at once ([`LiveItems::apply`]).
//!
//! The version's fetch is the catalog's source of truth: a version records how far the item
//! log had reached when its fetch began (`live_items_watermark`), and only the changes after
//! that apply over it. An app that sends a change here changes its source too (its database);
//! a change the source never saw is gone with the next version's fetch.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::event::MAX_ID;
use super::log::{read_from, Entry, Position};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::serving::{typed_column, CatalogChanges, Snapshot};

/// One change to the catalog: `attributes` set on an item (added when the catalog lacks it),
/// or the item deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemChange {
    pub item_id: String,
    /// Attribute values by column name (JSON numbers, text, true/false or null).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

impl Entry for ItemChange {}

/// Where a model's item changes are logged: `<model folder>/items`.
pub fn items_dir(model_dir: &Path) -> PathBuf {
    model_dir.join("items")
}

/// How many changes the item log in `dir` holds: the watermark a version fetched now records.
pub fn items_watermark(dir: &Path) -> Result<u64> {
    let read = read_from::<ItemChange>(dir, Position::default())?;
    Ok(read
        .records
        .last()
        .map_or(0, |r| r.seq + r.entries.len() as u64))
}

/// Checks a batch of changes against the serving catalog's columns: the first wrong row is an
/// error naming it (`items[3].attributes.price`), and nothing of the batch is accepted.
pub fn check_changes(changes: &[ItemChange], snapshot: &Snapshot) -> Result<()> {
    let columns: BTreeMap<String, _> = snapshot.catalog.attribute_types().into_iter().collect();
    for (row, c) in changes.iter().enumerate() {
        let at = |field: &str| format!("items[{row}].{field}");
        if c.item_id.is_empty() || c.item_id.len() > MAX_ID {
            return Err(Error::invalid(
                at("item_id"),
                format!("{} must be 1 to {MAX_ID} bytes", at("item_id")),
            ));
        }
        if c.delete && !c.attributes.is_empty() {
            return Err(Error::invalid(
                at("delete"),
                format!(
                    "{}: a change either deletes the item or sets attributes",
                    at("delete")
                ),
            )
            .with_hint("send the deletion and the new values as two rows"));
        }
        if !c.delete && c.attributes.is_empty() {
            return Err(Error::invalid(
                at("attributes"),
                format!("{}: nothing to change", at("attributes")),
            )
            .with_hint("set attributes (`{\"in_stock\": false}`) or `\"delete\": true`"));
        }
        for (name, value) in &c.attributes {
            let field = at(&format!("attributes.{name}"));
            let Some(data_type) = columns.get(name) else {
                let hint = crate::error::did_you_mean(name, columns.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!(
                            "the items have {}",
                            columns
                                .keys()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    });
                let message = if name == "item_id" {
                    format!("{field}: the id is `item_id` beside `attributes`, not one of them")
                } else {
                    format!("{field}: `{name}` is not an item attribute of this model")
                };
                return Err(Error::invalid(field, message).with_hint(hint));
            };
            if let Err((_, message)) = typed_column(&[value], data_type) {
                return Err(Error::invalid(field.clone(), format!("{field}: {message}")));
            }
        }
    }
    Ok(())
}

/// The changes of the log, per item, each with its number in the log.
#[derive(Default)]
struct State {
    items: HashMap<String, Vec<(u64, ItemChange)>>,
    /// Item order of first change (the order added items are numbered in).
    order: Vec<String>,
    /// Bumped by every change read and every forget: a snapshot built at one generation is
    /// current until it moves.
    generation: u64,
    forgotten: u64,
}

/// The live catalog changes of one model, read from its item log.
pub struct LiveItems {
    dir: PathBuf,
    state: RwLock<State>,
    read: Mutex<Position>,
}

impl LiveItems {
    /// The changes of the log in `dir`, none until [`Self::catch_up`].
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            state: RwLock::new(State::default()),
            read: Mutex::new(Position::default()),
        }
    }

    /// The changes of `model`'s log, read to its end: what a one-shot command applies over the
    /// version it loads.
    pub fn of_model(registry: &Registry, model: &str) -> Result<Self> {
        let live = Self::new(&items_dir(&registry.model_dir(model)));
        live.catch_up()?;
        Ok(live)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads what the log gained since the last call; returns how many changes that was.
    pub fn catch_up(&self) -> Result<usize> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let found = read_from::<ItemChange>(&self.dir, *read)?;
        let n: usize = found.records.iter().map(|r| r.entries.len()).sum();
        if n > 0 {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for r in found.records {
                for (k, c) in r.entries.into_iter().enumerate() {
                    let seq = r.seq + k as u64;
                    let changes = state.items.entry(c.item_id.clone()).or_default();
                    let first = changes.is_empty();
                    changes.push((seq, c));
                    if first {
                        let id = changes[0].1.item_id.clone();
                        state.order.push(id);
                    }
                }
            }
            state.generation += 1;
        }
        *read = found.end;
        Ok(n)
    }

    /// Keeps up with the log under a version whose fetch began at `watermark`: reads what is
    /// new and forgets the changes the version's source already had.
    pub fn follow(&self, watermark: u64) -> Result<()> {
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            if watermark < state.forgotten {
                let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
                let generation = state.generation + 1;
                *state = State {
                    generation,
                    ..State::default()
                };
                *read = Position::default();
            }
        }
        self.catch_up()?;
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.forgotten < watermark {
            state.items.retain(|_, changes| {
                changes.retain(|(seq, _)| *seq >= watermark);
                !changes.is_empty()
            });
            let State { items, order, .. } = &mut *state;
            order.retain(|id| items.contains_key(id));
            state.forgotten = watermark;
            state.generation += 1;
        }
        Ok(())
    }

    /// A number that moves whenever the changes do.
    pub fn generation(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .generation
    }

    /// The changes after `watermark`, resolved per item: attributes merged in log order (a
    /// deletion clears what came before it; values set after a deletion bring the item back).
    pub fn changes(&self, watermark: u64) -> CatalogChanges {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        let mut out = CatalogChanges::default();
        for id in &state.order {
            let mut set: BTreeMap<String, serde_json::Value> = BTreeMap::new();
            let mut deleted = false;
            let mut any = false;
            for (_, c) in state.items[id].iter().filter(|(seq, _)| *seq >= watermark) {
                any = true;
                if c.delete {
                    set.clear();
                    deleted = true;
                } else {
                    deleted = false;
                    set.extend(c.attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            if deleted {
                out.deleted.push(id.clone());
            } else if any {
                out.set.push((id.clone(), set));
            }
        }
        out
    }

    /// `snapshot` with the changes after its watermark applied; `None` when there are none.
    pub fn apply(&self, snapshot: &Snapshot) -> Result<Option<Snapshot>> {
        let changes = self.changes(snapshot.manifest.live_items_watermark);
        if changes.is_empty() {
            return Ok(None);
        }
        snapshot.with_changes(&changes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::Log;
    use serde_json::json;

    fn set(item: &str, attributes: serde_json::Value) -> ItemChange {
        ItemChange {
            item_id: item.into(),
            attributes: serde_json::from_value(attributes).unwrap(),
            delete: false,
        }
    }

    fn delete(item: &str) -> ItemChange {
        ItemChange {
            item_id: item.into(),
            attributes: BTreeMap::new(),
            delete: true,
        }
    }

    #[test]
    fn changes_merge_per_item_and_forget_what_a_version_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::<ItemChange>::open(dir.path()).unwrap();
        log.append(vec![set("a", json!({"price": 1})), delete("b")])
            .unwrap();
        log.append(vec![
            set("a", json!({"in_stock": false})),
            set("b", json!({"price": 3})),
            delete("c"),
        ])
        .unwrap();
        let live = LiveItems::new(dir.path());
        assert_eq!(live.catch_up().unwrap(), 5);
        let c = live.changes(0);
        assert_eq!(
            c.set,
            vec![
                (
                    "a".to_string(),
                    serde_json::from_value(json!({"price": 1, "in_stock": false})).unwrap()
                ),
                (
                    "b".to_string(),
                    serde_json::from_value(json!({"price": 3})).unwrap()
                ),
            ]
        );
        assert_eq!(c.deleted, vec!["c".to_string()]);
        let g = live.generation();
        // A version whose fetch began after the first record: only the second applies.
        live.follow(2).unwrap();
        assert!(live.generation() > g);
        let c = live.changes(2);
        assert_eq!(c.set[0].1.len(), 1);
        assert_eq!(items_watermark(dir.path()).unwrap(), 5);
    }

    #[test]
    fn a_batch_is_checked_against_the_catalog_columns() {
        let snapshot = crate::query::tests::snapshot();
        let columns = snapshot.catalog.attribute_types();
        let (name, _) = columns
            .iter()
            .find(|(_, t)| t.is_numeric())
            .expect("a numeric column");
        let ok = set("i1", json!({ name.as_str(): 5 }));
        check_changes(std::slice::from_ref(&ok), &snapshot).unwrap();
        let e = check_changes(
            &[ok.clone(), set("i1", json!({ name.as_str(): "x" }))],
            &snapshot,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&format!("items[1].attributes.{name}")), "{e}");
        let e = check_changes(&[set("i1", json!({"nope": 1}))], &snapshot)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`nope` is not an item attribute"), "{e}");
        let mut both = delete("i1");
        both.attributes = ok.attributes.clone();
        let e = check_changes(&[both], &snapshot).unwrap_err().to_string();
        assert!(e.contains("items[0].delete"), "{e}");
    }
}
