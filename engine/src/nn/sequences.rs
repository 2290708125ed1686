//! Dense batches of item sequences, built from the dataset's per-user arrays (no per-row
//! objects): right-padded, so that with a causal mask no real position ever attends to padding.

use crate::config::SequenceWindows;
use crate::dataset::Interactions;
use crate::util::linalg::Rng;

/// One batch: `rows` sequences padded to `len` slots, flattened row-major.
pub struct SeqBatch {
    pub rows: usize,
    pub len: usize,
    /// `rows * len` item ids; padding slots hold item 0 (they never reach a real position).
    pub items: Vec<i32>,
    /// Flat slots that have a next item to predict.
    pub slots: Vec<i32>,
    /// The next item of each of `slots`.
    pub targets: Vec<i32>,
    /// Per row, the flat slot of its newest item (what encodes the user).
    pub last: Vec<i32>,
}

/// The size of a training batch: what its memory grows with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchShape {
    pub rows: usize,
    /// Slots per row (padded).
    pub len: usize,
    /// Slots with a next item to predict.
    pub targets: f64,
}

impl BatchShape {
    /// The settings' own worst case, before the data is known: every row fills `max_len`.
    pub fn full(batch_size: usize, max_len: usize) -> Self {
        Self {
            rows: batch_size,
            len: max_len,
            targets: (batch_size * max_len) as f64,
        }
    }
}

/// The training windows: runs of at most `max_len + 1` visible items of one user, so that inputs
/// are the first `n - 1` and targets the last `n - 1` (every position predicts its next item).
/// With [`SequenceWindows::Latest`] one per user, its latest items; with
/// [`SequenceWindows::All`] the whole history cut from the latest item backwards, consecutive
/// windows sharing one item (the older one's last target is the newer one's first input), so
/// every item after a user's first is a target exactly once.
pub struct TrainingSequences<'a> {
    windows: Vec<&'a [u32]>,
}

impl<'a> TrainingSequences<'a> {
    pub fn new(data: Interactions<'a>, max_len: usize, which: SequenceWindows) -> Self {
        let mut windows = Vec::with_capacity(data.n_users());
        for u in 0..data.n_users() as u32 {
            cut(data.items(u), max_len, which, &mut windows);
        }
        Self { windows }
    }

    pub fn n_sequences(&self) -> usize {
        self.windows.len()
    }

    pub fn n_targets(&self) -> usize {
        self.windows.iter().map(|w| w.len() - 1).sum()
    }

    /// The shape of the largest batch an epoch of `batch_size` will likely hold: every batch
    /// pads to its longest input, which the longest window bounds; its targets are the mean
    /// batch's plus 2.5 standard deviations of a random batch's sum (capped by the longest
    /// windows' own total).
    pub fn largest_batch(&self, batch_size: usize) -> BatchShape {
        let rows = batch_size.min(self.windows.len()).max(1);
        let mut targets: Vec<f64> = self.windows.iter().map(|w| (w.len() - 1) as f64).collect();
        let n = targets.len().max(1) as f64;
        let mean = targets.iter().sum::<f64>() / n;
        let var = targets.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n;
        targets.sort_by(|a, b| b.total_cmp(a));
        let cap: f64 = targets.iter().take(rows).sum();
        BatchShape {
            rows,
            len: targets.first().map_or(1, |&t| t as usize).max(1),
            targets: (rows as f64 * mean + 2.5 * (rows as f64 * var).sqrt()).min(cap),
        }
    }

    /// One epoch's batches: users in a seeded random order, `batch_size` at a time, each batch
    /// padded to its longest sequence. Plain random batches, as the reference trains: grouping
    /// users by length would pad less (about half the attention work on MovieLens-1M) but
    /// changes the objective, since a batch's loss is the mean over its targets and a batch of
    /// short histories would then weigh each of its targets several times more.
    pub fn epoch(&self, batch_size: usize, rng: &mut Rng) -> Vec<SeqBatch> {
        let mut order: Vec<usize> = (0..self.windows.len()).collect();
        shuffle(&mut order, rng);
        order
            .chunks(batch_size)
            .map(|chunk| {
                let inputs: Vec<&[u32]> = chunk
                    .iter()
                    .map(|&i| &self.windows[i][..self.windows[i].len() - 1])
                    .collect();
                let mut b = batch(&inputs);
                for (r, &i) in chunk.iter().enumerate() {
                    for (t, &next) in self.windows[i][1..].iter().enumerate() {
                        b.slots.push((r * b.len + t) as i32);
                        b.targets.push(next as i32);
                    }
                }
                b
            })
            .collect()
    }
}

/// One user's training windows, newest first (see [`TrainingSequences`]).
fn cut<'a>(items: &'a [u32], max_len: usize, which: SequenceWindows, out: &mut Vec<&'a [u32]>) {
    let mut end = items.len();
    while end >= 2 {
        let start = end.saturating_sub(max_len + 1);
        out.push(&items[start..end]);
        if which == SequenceWindows::Latest {
            break;
        }
        end = start + 1;
    }
}

/// A batch of input sequences (each non-empty, at most the model's length), without targets.
pub fn batch(seqs: &[&[u32]]) -> SeqBatch {
    let len = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let mut items = vec![0i32; seqs.len() * len];
    let mut last = Vec::with_capacity(seqs.len());
    for (r, s) in seqs.iter().enumerate() {
        for (t, &i) in s.iter().enumerate() {
            items[r * len + t] = i as i32;
        }
        last.push((r * len + s.len().max(1) - 1) as i32);
    }
    SeqBatch {
        rows: seqs.len(),
        len,
        items,
        slots: Vec::new(),
        targets: Vec::new(),
        last,
    }
}

/// Fisher–Yates with our generator (reproducible for a seed).
pub fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pad_right_and_every_position_predicts_its_next_item() {
        let b = batch(&[&[5, 6, 7], &[9]]);
        assert_eq!((b.rows, b.len), (2, 3));
        assert_eq!(b.items, vec![5, 6, 7, 9, 0, 0]);
        assert_eq!(b.last, vec![2, 3]);
    }

    #[test]
    fn windows_cover_a_long_history_with_every_item_after_the_first_a_target_once() {
        let items = [1u32, 2, 3, 4, 5, 6];
        let mut latest = Vec::new();
        cut(&items, 2, SequenceWindows::Latest, &mut latest);
        assert_eq!(latest, vec![&[4u32, 5, 6][..]]);
        let mut all = Vec::new();
        cut(&items, 2, SequenceWindows::All, &mut all);
        assert_eq!(all, vec![&[4u32, 5, 6][..], &[2, 3, 4], &[1, 2]]);
        let targets: Vec<u32> = all.iter().flat_map(|w| w[1..].to_vec()).collect();
        assert_eq!(targets, vec![5, 6, 3, 4, 2]);
        // A history that fits one window, and one too short to predict anything.
        for which in [SequenceWindows::Latest, SequenceWindows::All] {
            let mut one = Vec::new();
            cut(&items[..3], 2, which, &mut one);
            cut(&items[..1], 2, which, &mut one);
            assert_eq!(one, vec![&[1u32, 2, 3][..]]);
        }
    }

    #[test]
    fn an_epoch_covers_every_target_once() {
        let a = [1u32, 2, 3, 4];
        let b = [7u32, 8];
        let c = [9u32, 10, 11];
        let seqs = TrainingSequences {
            windows: vec![&a, &b, &c],
        };
        let mut rng = Rng::new(1);
        let batches = seqs.epoch(2, &mut rng);
        let mut pairs = Vec::new();
        for bt in &batches {
            for (&s, &t) in bt.slots.iter().zip(&bt.targets) {
                pairs.push((bt.items[s as usize], t));
            }
        }
        pairs.sort();
        assert_eq!(
            pairs,
            vec![(1, 2), (2, 3), (3, 4), (7, 8), (9, 10), (10, 11)]
        );
        assert_eq!(seqs.n_targets(), 6);
    }

    #[test]
    fn the_largest_batch_pads_to_the_longest_window_and_never_exceeds_the_longest_rows() {
        let (a, b, c) = ([1u32, 2, 3, 4], [7u32, 8], [9u32, 10, 11]);
        let seqs = TrainingSequences {
            windows: vec![&a, &b, &c],
        };
        let one = seqs.largest_batch(1);
        assert_eq!((one.rows, one.len), (1, 3));
        assert!(one.targets <= 3.0 && one.targets >= 2.0, "{one:?}");
        let all = seqs.largest_batch(10);
        assert_eq!((all.rows, all.len, all.targets), (3, 3, 6.0));
    }
}
