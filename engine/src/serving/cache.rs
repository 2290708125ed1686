//! Per-version caches (bound plans, filter masks, rankings, column orders). They live in the
//! snapshot, so a new version starts clean and nothing stale crosses versions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;

/// Shared values by key, at most `max` of them (a mix with more distinct keys recomputes; the
/// map is cleared when full, which costs no sort and no scan). The lock is held only to look up
/// or insert, never while computing.
pub struct Cache<V: ?Sized> {
    map: Mutex<HashMap<String, Arc<V>>>,
    max: usize,
}

impl<V: ?Sized> Cache<V> {
    pub fn new(max: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<V>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    pub fn insert(&self, key: &str, value: Arc<V>) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max && !map.contains_key(key) {
            map.clear();
        }
        map.insert(key.to_string(), value);
    }

    /// The value under `key`, computed (outside the lock) and remembered when absent.
    pub fn get_or_try_insert(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<Arc<V>>,
    ) -> Result<Arc<V>> {
        if let Some(v) = self.get(key) {
            return Ok(v);
        }
        let v = compute()?;
        self.insert(key, v.clone());
        Ok(v)
    }
}

/// The caches of one version.
pub struct Caches {
    /// Bound query plans by text (the query layer's type, stored opaquely).
    pub plans: Cache<dyn std::any::Any + Send + Sync>,
    /// Filter masks by filter text and parameter values, with how many items each lets through.
    pub masks: Cache<(Vec<bool>, usize)>,
    /// Rankings by windowed popularity and trending, by window.
    pub rankings: Cache<Vec<(u32, f32)>>,
    /// Items ordered by `column_order` specs.
    pub orders: Cache<Vec<u32>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            plans: Cache::new(1024),
            masks: Cache::new(256),
            rankings: Cache::new(16),
            orders: Cache::new(16),
        }
    }
}
