//! Consistent pagination: the ranked list a user saw on page 1 is remembered for a while (the
//! model's `serving.page_ttl_seconds`), so that later pages continue it — page 2 never repeats
//! an item of page 1, even if scores moved or a new version became ACTIVE in between.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Independent shards, each with its own lock: requests for different lists rarely meet.
const SHARDS: usize = 32;
/// The most item ids remembered by a server, over all lists (about 50 bytes each: a few
/// hundred MB at most). Beyond it, the oldest lists are forgotten first.
const MAX_ITEMS: usize = 4_000_000;
/// The most lists remembered by a server.
const MAX_ENTRIES: usize = 100_000;
/// The longest list remembered for one query, beyond what its first request asked for.
const DEPTH: usize = 1_000;

struct Entry {
    at: Instant,
    /// Which start of this key's list the entry is (an older start left a stale queue slot).
    generation: u64,
    items: Arc<Vec<(String, f64)>>,
    /// Where in the list the page at each offset starts: where the page before it stopped. A
    /// page skips items no longer eligible (seen, served, deleted) and reads on to stay full, so
    /// the next one starts after what it read, not at its offset: nothing repeats, nothing is
    /// skipped unseen.
    starts: HashMap<usize, usize>,
}

/// Page starts remembered per list (a feed read that deep is rare).
const MAX_STARTS: usize = 256;

/// One shard: the lists by key, and the keys in the order their lists started (which is the
/// order of `at`), so that the oldest goes first without sorting anything.
#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    started: VecDeque<(u64, String)>,
    next_generation: u64,
    items: usize,
}

impl Shard {
    fn insert(&mut self, key: &str, items: Arc<Vec<(String, f64)>>, now: Instant) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.items += items.len();
        if let Some(old) = self.map.insert(
            key.to_string(),
            Entry {
                at: now,
                generation,
                items,
                starts: HashMap::new(),
            },
        ) {
            self.items -= old.items.len();
        }
        self.started.push_back((generation, key.to_string()));
        // Restarted lists leave stale slots behind; drop them once they outnumber the live ones.
        if self.started.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.started
                .retain(|(g, k)| map.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    /// Forgets the oldest lists while the shard holds more than its share, and lists older than
    /// `ttl` at the front (only the front: the queue is in start order, one TTL per model).
    fn evict(&mut self, max_entries: usize, max_items: usize, ttl: Duration, now: Instant) {
        while let Some((generation, key)) = self.started.front() {
            let live = self.map.get(key).filter(|e| e.generation == *generation);
            let Some(entry) = live else {
                self.started.pop_front();
                continue;
            };
            let over = self.map.len() > max_entries || self.items > max_items;
            if !over && now.duration_since(entry.at) <= ttl {
                break;
            }
            let (_, key) = self.started.pop_front().expect("front exists");
            if let Some(e) = self.map.remove(&key) {
                self.items -= e.items.len();
            }
        }
    }
}

/// Remembered rankings, shared by all requests of a server: sharded by key (the model name is
/// part of it), bounded in lists and in item ids, evicted oldest first in O(1) per list.
pub struct Pages {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

impl Default for Pages {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl Pages {
    pub fn new() -> Self {
        Self::default()
    }

    /// The page `[offset, offset + limit)` of the ranking a user is paging through. `fresh` is
    /// the ranking computed now, read lazily (only as far as the page needs); page 1 (offset 0)
    /// starts a new list. Items for which `keep` is false (no longer eligible, or gone from the
    /// catalog) are skipped, and the page is topped up with fresh items the list does not hold
    /// yet, so it stays full and never repeats.
    pub fn page(
        &self,
        key: &str,
        ttl: Duration,
        fresh: impl Iterator<Item = (String, f64)> + Clone,
        offset: usize,
        limit: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(String, f64)> {
        let now = Instant::now();
        let shard = &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()];
        let (stored, generation, start) = {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let live = shard
                .map
                .get(key)
                .filter(|e| offset > 0 && now.duration_since(e.at) <= ttl)
                .map(|e| {
                    let start = e.starts.get(&offset).copied().unwrap_or(offset);
                    (e.items.clone(), e.generation, start)
                });
            match live {
                Some(found) => found,
                None => {
                    // Built outside the lock would mean building it for every request; a page 1
                    // copies at most DEPTH ids, which is what it stores anyway.
                    let items: Arc<Vec<(String, f64)>> =
                        Arc::new(fresh.clone().take(DEPTH.max(offset + limit)).collect());
                    shard.insert(key, items.clone(), now);
                    shard.evict(MAX_ENTRIES / SHARDS, MAX_ITEMS / SHARDS, ttl, now);
                    let generation = shard.map.get(key).map_or(0, |e| e.generation);
                    (items, generation, offset)
                }
            }
        };
        // The view: the remembered list, then fresh items it does not hold; from where this
        // page starts, eligible ones only.
        let held: HashSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
        let mut end = start;
        let page: Vec<(String, f64)> = stored
            .iter()
            .cloned()
            .chain(fresh.filter(|(id, _)| !held.contains(id.as_str())))
            .enumerate()
            .skip(start)
            .filter(|(_, (id, _))| keep(id))
            .take(limit)
            .map(|(at, item)| {
                end = at + 1;
                item
            })
            .collect();
        // The next page starts after what this one read.
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = shard
            .map
            .get_mut(key)
            .filter(|e| e.generation == generation)
        {
            if e.starts.len() < MAX_STARTS {
                e.starts.insert(offset + limit, end.max(offset + limit));
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(ids: &[&str]) -> std::vec::IntoIter<(String, f64)> {
        list(ids).into_iter()
    }

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
        let p1 = pages.page("k", ttl, it(&["a", "b", "c", "d"]), 0, 2, |_| true);
        assert_eq!(p1, list(&["a", "b"]));
        // Scores moved: `b` would now come third; page 2 still continues page 1.
        let p2 = pages.page("k", ttl, it(&["a", "c", "b", "e", "d", "f"]), 2, 2, |_| {
            true
        });
        assert_eq!(
            p2.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        // Beyond what was remembered: fresh items not shown before.
        let p3 = pages.page("k", ttl, it(&["a", "c", "b", "e", "d", "f"]), 4, 2, |_| {
            true
        });
        assert_eq!(
            p3.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["e", "f"]
        );
        // A new page 1 starts over; an expired list is not continued.
        let p = pages.page("k", Duration::ZERO, it(&["x", "y", "z"]), 1, 1, |_| true);
        assert_eq!(p[0].0, "y");
        // An item that stopped being eligible is skipped and the page topped up.
        pages.page("q", ttl, it(&["a", "b", "c", "d", "e"]), 0, 2, |_| true);
        let p = pages.page("q", ttl, it(&["a", "b", "c", "d", "e"]), 2, 2, |id| {
            id != "c"
        });
        assert_eq!(
            p.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["d", "e"]
        );
        // Items of page 1 that stop being eligible (served, seen) shift nothing: page 2 starts
        // where page 1 stopped reading, even when page 1 read past an ineligible item.
        let p1 = pages.page("s", ttl, it(&["a", "b", "c", "d", "e", "f"]), 0, 2, |id| {
            id != "b"
        });
        assert_eq!(p1, vec![list(&["a"])[0].clone(), ("c".into(), -2.0)]);
        let p2 = pages.page("s", ttl, it(&["a", "b", "c", "d", "e", "f"]), 2, 2, |id| {
            !["a", "b", "c"].contains(&id)
        });
        assert_eq!(
            p2.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["d", "e"]
        );
    }

    #[test]
    fn shards_stay_within_their_bounds_oldest_first() {
        let mut shard = Shard::default();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(600);
        for k in 0..10 {
            shard.insert(&format!("k{k}"), Arc::new(list(&["a", "b", "c"])), t0);
            shard.evict(4, 1_000, ttl, t0);
        }
        let mut kept: Vec<&str> = shard.map.keys().map(String::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["k6", "k7", "k8", "k9"]);
        assert_eq!(shard.items, 12);
        // A restarted list moves to the back; the item bound evicts too.
        shard.insert("k6", Arc::new(list(&["x"])), t0);
        shard.evict(4, 8, ttl, t0);
        let mut kept: Vec<&str> = shard.map.keys().map(String::as_str).collect();
        kept.sort();
        assert_eq!(kept, ["k6", "k8", "k9"]);
        assert_eq!(shard.items, 7);
        // Expired lists at the front go at the next start.
        let later = t0 + Duration::from_secs(601);
        shard.insert("new", Arc::new(list(&["y"])), later);
        shard.evict(4, 1_000, ttl, later);
        assert_eq!(shard.map.keys().collect::<Vec<_>>(), ["new"]);
        assert_eq!(shard.items, 1);
        // Stale queue slots are compacted, so the queue stays proportional to the lists.
        for _ in 0..100 {
            shard.insert("new", Arc::new(list(&["y"])), later);
        }
        assert!(shard.started.len() <= 2 * shard.map.len() + 17);
    }
}
