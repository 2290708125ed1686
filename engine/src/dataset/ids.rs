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
}
