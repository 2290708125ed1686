//! Consistent pagination: the ranked list a user saw on page 1 is remembered for a while (the
//! model's `serving.page_ttl_seconds`), so that later pages continue it — page 2 never repeats
//! an item of page 1, even if scores moved or a new version became ACTIVE in between.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most lists remembered; beyond it, expired lists and then the oldest are dropped.
const MAX_ENTRIES: usize = 20_000;
/// The longest list remembered for one query.
const MAX_DEPTH: usize = 1_000;

struct Entry {
    at: Instant,
    items: Arc<Vec<(String, f64)>>,
}

/// Remembered rankings, shared by all requests of a server.
#[derive(Default)]
pub struct Pages {
    map: Mutex<HashMap<String, Entry>>,
}

impl Pages {
    pub fn new() -> Self {
        Self::default()
    }

    /// The page `[offset, offset + limit)` of the ranking a user is paging through. `fresh` is
    /// the ranking computed now; page 1 (offset 0) starts a new list. Items for which `keep` is
    /// false (no longer eligible, or gone from the catalog) are skipped, and the page is topped
    /// up with fresh items the list does not hold yet, so it stays full and never repeats.
    pub fn page(
        &self,
        key: &str,
        ttl: Duration,
        fresh: &[(String, f64)],
        offset: usize,
        limit: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(String, f64)> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let live = map
            .get(key)
            .filter(|e| offset > 0 && now.duration_since(e.at) <= ttl);
        let (stored, at) = match live {
            Some(e) => (e.items.clone(), e.at),
            None => (
                Arc::new(
                    fresh
                        .iter()
                        .take(MAX_DEPTH.max(offset + limit))
                        .cloned()
                        .collect(),
                ),
                now,
            ),
        };
        if map.len() >= MAX_ENTRIES && !map.contains_key(key) {
            map.retain(|_, e| now.duration_since(e.at) <= ttl);
            if map.len() >= MAX_ENTRIES {
                // Still full of live lists: forget the oldest half.
                let mut ages: Vec<(Instant, String)> =
                    map.iter().map(|(k, e)| (e.at, k.clone())).collect();
                ages.sort();
                for (_, k) in ages.into_iter().take(MAX_ENTRIES / 2) {
                    map.remove(&k);
                }
            }
        }
        map.insert(
            key.to_string(),
            Entry {
                at,
                items: stored.clone(),
            },
        );
        drop(map);
        // The view: the remembered list, then fresh items it does not hold; eligible ones only.
        let held: HashSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
        stored
            .iter()
            .chain(fresh.iter().filter(|(id, _)| !held.contains(id.as_str())))
            .filter(|(id, _)| keep(id))
            .skip(offset)
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ids: &[&str]) -> Vec<(String, f64)> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| (id.to_string(), -(i as f64)))
            .collect()
    }

    #[test]
    fn later_pages_continue_the_first() {
        let pages = Pages::new();
        let ttl = Duration::from_secs(60);
        let p1 = pages.page("k", ttl, &list(&["a", "b", "c", "d"]), 0, 2, |_| true);
        assert_eq!(p1, list(&["a", "b"]));
        // Scores moved: `b` would now come third; page 2 still continues page 1.
        let p2 = pages.page(
            "k",
            ttl,
            &list(&["a", "c", "b", "e", "d", "f"]),
            2,
            2,
            |_| true,
        );
        assert_eq!(
            p2.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        // Beyond what was remembered: fresh items not shown before.
        let p3 = pages.page(
            "k",
            ttl,
            &list(&["a", "c", "b", "e", "d", "f"]),
            4,
            2,
            |_| true,
        );
        assert_eq!(
            p3.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["e", "f"]
        );
        // A new page 1 starts over; an expired list is not continued.
        let p = pages.page("k", Duration::ZERO, &list(&["x", "y", "z"]), 1, 1, |_| true);
        assert_eq!(p[0].0, "y");
        // An item that stopped being eligible is skipped and the page topped up.
        pages.page("q", ttl, &list(&["a", "b", "c", "d", "e"]), 0, 2, |_| true);
        let p = pages.page("q", ttl, &list(&["a", "b", "c", "d", "e"]), 2, 2, |id| {
            id != "c"
        });
        assert_eq!(
            p.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["d", "e"]
        );
    }
}
