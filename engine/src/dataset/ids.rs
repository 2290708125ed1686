//! Dense `u32` ids for string ids.

use std::collections::HashMap;

/// A bijection between external string ids and dense ids `0..len`, in first-seen order.
#[derive(Debug, Default, Clone)]
pub struct IdMap {
    ids: Vec<String>,
    index: HashMap<String, u32>,
}

impl IdMap {
    pub fn from_ids(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        Self { ids, index }
    }

    /// The dense id of `id`, inserting it if new.
    pub fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        i
    }

    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn id(&self, dense: u32) -> &str {
        &self.ids[dense as usize]
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The same ids renumbered in sorted order, and the old → new mapping. Fetch reads
    /// partitions concurrently, so first-seen order is not stable between runs; sorted order is.
    pub fn sorted(&self) -> (IdMap, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.ids.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.ids[a as usize].cmp(&self.ids[b as usize]));
        let mut old_to_new = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            old_to_new[old as usize] = new as u32;
        }
        let ids = order
            .iter()
            .map(|&old| self.ids[old as usize].clone())
            .collect();
        (IdMap::from_ids(ids), old_to_new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_renumbers_consistently() {
        let mut m = IdMap::default();
        for id in ["c", "a", "b"] {
            m.intern(id);
        }
        let (s, map) = m.sorted();
        assert_eq!(s.ids(), ["a", "b", "c"]);
        assert_eq!(map, vec![2, 0, 1]);
        assert_eq!(s.get("c"), Some(2));
    }
}
