//! IVF_SQ8 with refine: an inverted file over k-means partitions whose vectors are stored as
//! 8-bit scalar-quantised codes, contiguous per partition; a search ranks partitions by the
//! query's dot product with their centroids, scans the codes of the best ones for approximate
//! scores, and re-scores the best `refine_factor × k` with the exact `f32` vectors.
//!
//! Why this index (measured, see docs/benchmarks.md): at d = 64 an 8-bit code is 64 bytes, a
//! quarter of the `f32` vector, and scores with one widening multiply-add per dimension, so a
//! probe costs about as much as a PQ lookup scan while the approximation is close enough that a
//! small refine restores exact order. HNSW would answer with fewer distance computations but
//! needs a graph per version (minutes to build at 1M on two cores) and cannot skip ineligible
//! items without losing connectivity; IVF handles a prefilter by simply probing further.
//!
//! How far to probe is measured, not guessed: at build time the index replays sample queries
//! (user vectors) against exact search and records, for k = 10, 100, 1000, the number of
//! partitions that reaches the target recall. A filtered search of k with selectivity s needs
//! about the recall of k / s unfiltered neighbours, and probes accordingly.

use crate::util::linalg::Rng;
use crate::util::topk::TopK;

use super::{kmeans, simd};

thread_local! {
    /// Scratch for one partition's approximate scores.
    static SCORES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Build-time settings, resolved from `serving.index` and the catalog's size.
#[derive(Debug, Clone)]
pub struct IvfParams {
    pub partitions: usize,
    pub refine_factor: usize,
    pub target_recall: f32,
    pub iterations: usize,
    /// Rows k-means trains on, at most.
    pub sample: usize,
    pub seed: u64,
}

impl IvfParams {
    /// Defaults for a catalog of `n` vectors: 2√n partitions (measured at 1M × 64: √n probes
    /// four times the codes for the same recall, 4√n saves another 15% of the query time for a
    /// build three times longer).
    pub fn for_catalog(n: usize) -> Self {
        Self {
            partitions: ((2.0 * (n as f64).sqrt()).round() as usize).clamp(1, 65_536),
            refine_factor: 4,
            target_recall: 0.97,
            iterations: 10,
            sample: 0,
            seed: 0,
        }
    }
}

/// The ks whose probe counts the build measures.
pub const TUNED_K: [usize; 3] = [10, 100, 1000];

#[derive(Debug, Clone)]
pub struct Ivf {
    pub dim: usize,
    /// `partitions × dim`.
    pub centroids: Vec<f32>,
    /// Partition p holds positions `offsets[p]..offsets[p + 1]` of `ids` and `codes`.
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    /// `n × dim` codes, in partition order.
    pub codes: Vec<u8>,
    /// Per dimension: value = min + scale × code.
    pub mins: Vec<f32>,
    pub scales: Vec<f32>,
    pub refine_factor: usize,
    /// Partitions to probe for the target recall, per k of [`TUNED_K`].
    pub probes: Vec<usize>,
    /// The mean recall the tuning measured at those probe counts.
    pub tuned_recall: Vec<f32>,
}

/// What a search did, for `explain` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    pub partitions: usize,
    pub scanned: usize,
}

impl Ivf {
    pub fn partitions(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Builds the index over `items` (`n × dim`, row-major); `queries` (`m × dim`) are the
    /// sample the probe counts are tuned on (user vectors; items when there are none).
    pub fn build(items: &[f32], dim: usize, params: &IvfParams, queries: &[f32]) -> Self {
        let n = items.len() / dim;
        // At least 8 vectors per partition on average, whatever was asked.
        let parts = params.partitions.clamp(1, (n / 8).max(1));
        let sample = if params.sample == 0 {
            (parts * 64).max(16_384)
        } else {
            params.sample
        };
        let centroids = kmeans::train(items, dim, parts, params.iterations, sample, params.seed);
        let parts = centroids.len() / dim;
        let assign = kmeans::assign(items, dim, &centroids);

        // Partition-contiguous layout (counting sort keeps item order within a partition).
        let mut offsets = vec![0u32; parts + 1];
        for &a in &assign {
            offsets[a as usize + 1] += 1;
        }
        for p in 0..parts {
            offsets[p + 1] += offsets[p];
        }
        let mut fill = offsets.clone();
        let mut ids = vec![0u32; n];
        for (i, &a) in assign.iter().enumerate() {
            ids[fill[a as usize] as usize] = i as u32;
            fill[a as usize] += 1;
        }

        let mut mins = vec![f32::INFINITY; dim];
        let mut maxs = vec![f32::NEG_INFINITY; dim];
        for row in items.chunks_exact(dim) {
            for j in 0..dim {
                mins[j] = mins[j].min(row[j]);
                maxs[j] = maxs[j].max(row[j]);
            }
        }
        let scales: Vec<f32> = mins
            .iter()
            .zip(&maxs)
            .map(|(lo, hi)| if hi > lo { (hi - lo) / 255.0 } else { 1.0 })
            .collect();
        let mut codes = vec![0u8; n * dim];
        for (pos, &i) in ids.iter().enumerate() {
            let row = &items[i as usize * dim..][..dim];
            for j in 0..dim {
                let c = ((row[j] - mins[j]) / scales[j]).round().clamp(0.0, 255.0);
                codes[pos * dim + j] = c as u8;
            }
        }
        let mut ivf = Self {
            dim,
            centroids,
            offsets,
            ids,
            codes,
            mins,
            scales,
            refine_factor: params.refine_factor.max(1),
            probes: vec![parts; TUNED_K.len()],
            tuned_recall: vec![1.0; TUNED_K.len()],
        };
        let queries = if queries.is_empty() { items } else { queries };
        ivf.tune(items, queries, params.target_recall, params.seed);
        ivf
    }

    /// Measures, per k of [`TUNED_K`], the fewest partitions whose search reaches `target`
    /// mean recall against exact search over up to 200 sample queries.
    fn tune(&mut self, items: &[f32], queries: &[f32], target: f32, seed: u64) {
        let dim = self.dim;
        let n = items.len() / dim;
        let m = queries.len() / dim;
        let parts = self.partitions();
        let mut rng = Rng::new(seed ^ 0x9e37_79b9);
        let picks: Vec<usize> = (0..m.min(200))
            .map(|_| (rng.next_u64() as usize) % m)
            .collect();
        let ks: Vec<usize> = TUNED_K.iter().map(|&k| k.min(n)).collect();
        let kmax = *ks.last().unwrap_or(&1);
        let mut checkpoints = Vec::new();
        let mut p = 1usize;
        while p < parts {
            checkpoints.push(p);
            p = (p + 1).max(p * 5 / 4);
        }
        checkpoints.push(parts);
        let mut recall_sum = vec![vec![0f64; checkpoints.len()]; ks.len()];
        for &qi in &picks {
            let q = &queries[qi * dim..][..dim];
            let mut exact = TopK::new(kmax);
            for (i, row) in items.chunks_exact(dim).enumerate() {
                exact.push(i as u32, simd::dot(q, row));
            }
            let truth = exact.into_sorted();
            let order = self.partition_order(q);
            let (qs, base) = self.prepare(q);
            let mut approx = TopK::new(kmax * self.refine_factor);
            let mut probed = 0;
            for (ci, &cp) in checkpoints.iter().enumerate() {
                while probed < cp {
                    self.scan(order[probed], &qs, base, None, &mut approx);
                    probed += 1;
                }
                let ranked = approx.clone().into_sorted();
                for (ki, &k) in ks.iter().enumerate() {
                    let top = refine(
                        items,
                        dim,
                        q,
                        &ranked[..ranked.len().min(k * self.refine_factor)],
                        k,
                    );
                    let want: std::collections::HashSet<u32> =
                        truth[..k.min(truth.len())].iter().map(|t| t.0).collect();
                    let hit = top.iter().filter(|t| want.contains(&t.0)).count();
                    recall_sum[ki][ci] += hit as f64 / want.len().max(1) as f64;
                }
            }
        }
        for (ki, sums) in recall_sum.iter().enumerate() {
            let at = sums
                .iter()
                .position(|s| (*s / picks.len().max(1) as f64) as f32 >= target)
                .unwrap_or(checkpoints.len() - 1);
            self.probes[ki] = checkpoints[at];
            self.tuned_recall[ki] = (sums[at] / picks.len().max(1) as f64) as f32;
        }
    }

    /// Partitions by descending centroid score.
    fn partition_order(&self, q: &[f32]) -> Vec<u32> {
        self.partition_order_head(q, usize::MAX)
    }

    /// Partitions by descending centroid score, sorted only as far as the first `head` (the
    /// rest follows in any order, so that a search needing more sorts it then): a full sort of
    /// thousands of centroids would cost as much as the probes.
    fn partition_order_head(&self, q: &[f32], head: usize) -> Vec<u32> {
        let mut scored: Vec<(f32, u32)> = self
            .centroids
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(p, c)| (simd::dot(q, c), p as u32))
            .collect();
        let by = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if head < scored.len() {
            scored.select_nth_unstable_by(head, by);
            scored[..head].sort_unstable_by(by);
        } else {
            scored.sort_unstable_by(by);
        }
        scored.into_iter().map(|s| s.1).collect()
    }

    /// The query scaled per dimension, and the constant part of every approximate score.
    fn prepare(&self, q: &[f32]) -> (Vec<f32>, f32) {
        let qs: Vec<f32> = q.iter().zip(&self.scales).map(|(a, s)| a * s).collect();
        let base = q.iter().zip(&self.mins).map(|(a, m)| a * m).sum();
        (qs, base)
    }

    /// Approximate scores of one partition's (eligible) vectors; returns how many were scored.
    fn scan(&self, p: u32, qs: &[f32], base: f32, mask: Option<&[bool]>, out: &mut TopK) -> usize {
        let (lo, hi) = (
            self.offsets[p as usize] as usize,
            self.offsets[p as usize + 1] as usize,
        );
        let ids = &self.ids[lo..hi];
        let codes = &self.codes[lo * self.dim..hi * self.dim];
        match mask {
            None => {
                // Score the whole partition in one kernel call, then keep the best.
                SCORES.with_borrow_mut(|scores| {
                    scores.clear();
                    scores.resize(ids.len(), 0.0);
                    simd::dot_u8_many(qs, codes, scores);
                    for (&id, &s) in ids.iter().zip(scores.iter()) {
                        out.push(id, base + s);
                    }
                });
                ids.len()
            }
            Some(mask) => {
                let mut scored = 0;
                for (&id, code) in ids.iter().zip(codes.chunks_exact(self.dim)) {
                    if mask[id as usize] {
                        out.push(id, base + simd::dot_u8(qs, code));
                        scored += 1;
                    }
                }
                scored
            }
        }
    }

    /// Partitions to probe for `k` results at selectivity `s` (eligible / catalog): the tuned
    /// count for k / s neighbours, interpolated in log k, extrapolated linearly past the last.
    pub fn probes_for(&self, k: usize, selectivity: f64) -> usize {
        let want = (k.max(1) as f64 / selectivity.clamp(1e-9, 1.0)).max(1.0);
        let parts = self.partitions();
        let ks: Vec<f64> = TUNED_K.iter().map(|&k| k as f64).collect();
        let ps: Vec<f64> = self.probes.iter().map(|&p| p as f64).collect();
        let p = if want <= ks[0] {
            ps[0]
        } else if want >= ks[ks.len() - 1] {
            ps[ps.len() - 1] * want / ks[ks.len() - 1]
        } else {
            let i = ks.iter().position(|&k| k >= want).unwrap_or(ks.len() - 1);
            let t = (want.ln() - ks[i - 1].ln()) / (ks[i].ln() - ks[i - 1].ln());
            ps[i - 1] + t * (ps[i] - ps[i - 1])
        };
        (p.ceil() as usize).clamp(1, parts)
    }

    /// Expected codes scanned for a search of `k` at selectivity `s`.
    pub fn expected_scan(&self, k: usize, selectivity: f64) -> usize {
        let n = self.ids.len();
        self.probes_for(k, selectivity) * n / self.partitions().max(1)
    }

    /// The best `k` eligible items for `q`, best first, with exact scores. Probes at least the
    /// tuned number of partitions and goes on until `k` eligible candidates were scored (or
    /// every partition was), so it returns `min(k, eligible)` items.
    pub fn search(
        &self,
        items: &[f32],
        q: &[f32],
        k: usize,
        mask: Option<&[bool]>,
        selectivity: f64,
        probes: Option<usize>,
    ) -> (Vec<(u32, f32)>, Probe) {
        let want = probes.unwrap_or_else(|| self.probes_for(k, selectivity));
        let head = want.saturating_mul(2).max(32);
        let mut order = self.partition_order_head(q, head);
        let (qs, base) = self.prepare(q);
        let mut approx = TopK::new(k * self.refine_factor);
        let mut stats = Probe::default();
        let mut found = 0;
        for i in 0..order.len() {
            if stats.partitions >= want && found >= k {
                break;
            }
            if i == head {
                // Probing past the sorted head (a selective filter): order the rest now.
                let rest = order[head..].to_vec();
                let mut scored: Vec<(f32, u32)> = rest
                    .iter()
                    .map(|&p| {
                        (
                            simd::dot(q, &self.centroids[p as usize * self.dim..][..self.dim]),
                            p,
                        )
                    })
                    .collect();
                scored.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                for (slot, s) in order[head..].iter_mut().zip(scored) {
                    *slot = s.1;
                }
            }
            let p = order[i];
            found += self.scan(p, &qs, base, mask, &mut approx);
            stats.partitions += 1;
            stats.scanned += (self.offsets[p as usize + 1] - self.offsets[p as usize]) as usize;
        }
        let ranked = approx.into_sorted();
        (refine(items, self.dim, q, &ranked, k), stats)
    }

    /// Bytes the index holds in memory (the `f32` vectors it refines with not included).
    pub fn bytes(&self) -> usize {
        self.centroids.len() * 4
            + self.offsets.len() * 4
            + self.ids.len() * 4
            + self.codes.len()
            + (self.mins.len() + self.scales.len()) * 4
    }
}

/// Exact scores for the candidates, best `k` first.
fn refine(
    items: &[f32],
    dim: usize,
    q: &[f32],
    candidates: &[(u32, f32)],
    k: usize,
) -> Vec<(u32, f32)> {
    let mut top = TopK::new(k);
    for &(i, _) in candidates {
        top.push(i, simd::dot(q, &items[i as usize * dim..][..dim]));
    }
    top.into_sorted()
}
