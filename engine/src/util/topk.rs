//! Top-k selection with the one tie rule of Feed: higher score first, then lower dense id; NaN
//! and `-inf` (excluded items) never make a list. Evaluation, serving and the vector index all
//! order this way, so offline metrics describe the lists users get.

/// Whether item `a` (score `sa`) ranks before item `b`: higher score first, then lower id.
/// NaN scores rank last.
#[inline]
pub fn before(sa: f32, a: usize, sb: f32, b: usize) -> bool {
    let (sa, sb) = (
        if sa.is_nan() { f32::NEG_INFINITY } else { sa },
        if sb.is_nan() { f32::NEG_INFINITY } else { sb },
    );
    sa > sb || (sa == sb && a < b)
}

/// The `k` best items of a stream of (item, score), in [`top_k`]'s order, in O(k) memory: for
/// scans too large to materialise a row of scores.
#[derive(Clone)]
pub struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<Kept>,
}

/// Ordered so that the heap's top is the worst item kept.
#[derive(Clone)]
struct Kept(f32, u32);

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if before(self.0, self.1 as usize, other.0, other.1 as usize) {
            std::cmp::Ordering::Less
        } else if before(other.0, other.1 as usize, self.0, self.1 as usize) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    /// Offers an item; NaN and -inf are never kept.
    #[inline]
    pub fn push(&mut self, item: u32, score: f32) {
        if self.k == 0 || score.is_nan() || score == f32::NEG_INFINITY {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Kept(score, item));
        } else if let Some(worst) = self.heap.peek() {
            if before(score, item as usize, worst.0, worst.1 as usize) {
                self.heap.pop();
                self.heap.push(Kept(score, item));
            }
        }
    }

    /// Best first.
    pub fn into_sorted(self) -> Vec<(u32, f32)> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|k| (k.1, k.0))
            .collect()
    }
}

/// The 0-based position of item `t` in the full ordering of `row`.
pub fn rank_of(row: &[f32], t: usize) -> usize {
    let st = row[t];
    row.iter()
        .enumerate()
        .filter(|&(i, &s)| before(s, i, st, t))
        .count()
}

/// The indexes of the `k` best scores, best first, skipping `-inf` (excluded items).
pub fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    // A sorted insertion buffer is fastest for a page; a selection for large k (widening).
    if k > 64 {
        let mut all: Vec<usize> = (0..row.len())
            .filter(|&i| row[i] != f32::NEG_INFINITY && !row[i].is_nan())
            .collect();
        let order = |a: &usize, b: &usize| {
            if before(row[*a], *a, row[*b], *b) {
                std::cmp::Ordering::Less
            } else if before(row[*b], *b, row[*a], *a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        };
        if all.len() > k {
            all.select_nth_unstable_by(k - 1, order);
            all.truncate(k);
        }
        all.sort_unstable_by(order);
        return all;
    }
    let mut best: Vec<usize> = Vec::with_capacity(k.min(row.len()) + 1);
    for (i, &s) in row.iter().enumerate() {
        if s == f32::NEG_INFINITY || s.is_nan() {
            continue;
        }
        if best.len() == k {
            let last = best[k - 1];
            if !before(s, i, row[last], last) {
                continue;
            }
            best.pop();
        }
        let pos = best.partition_point(|&j| before(row[j], j, s, i));
        best.insert(pos, i);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_is_by_score_then_id() {
        let row = [0.5, 0.9, 0.5, f32::NEG_INFINITY, 0.1];
        assert_eq!(top_k(&row, 3), vec![1, 0, 2]);
        assert_eq!(top_k(&row, 10), vec![1, 0, 2, 4]);
        assert!(top_k(&row, 0).is_empty());
        // The selection path agrees with the insertion path.
        let big: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 1000) as f32 / 10.0)
            .collect();
        let a = top_k(&big, 300);
        let mut b: Vec<usize> = (0..big.len()).collect();
        b.sort_by(|&x, &y| {
            if before(big[x], x, big[y], y) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        assert_eq!(a, b[..300].to_vec());
        assert_eq!(top_k(&big, 64), b[..64].to_vec());
        // The streaming form agrees too.
        let mut stream = TopK::new(300);
        for (i, &s) in big.iter().enumerate() {
            stream.push(i as u32, s);
        }
        let streamed: Vec<usize> = stream
            .into_sorted()
            .into_iter()
            .map(|(i, _)| i as usize)
            .collect();
        assert_eq!(streamed, b[..300].to_vec());
        assert_eq!(top_k(&row, usize::MAX).len(), 4);
        assert_eq!(rank_of(&row, 1), 0);
        assert_eq!(rank_of(&row, 2), 2);
        assert_eq!(rank_of(&row, 4), 3);
    }
}
