//! Similarity search over a policy's item vectors: an exact SIMD scan for small catalogs and
//! selective filters, an IVF_SQ8 index with refine above a size threshold. Both honour a hard
//! filter exactly: a search returns `min(k, eligible)` items, all eligible.

pub mod ivf;
mod kmeans;
pub mod simd;
pub mod synthetic;

pub use ivf::{Ivf, IvfParams, Probe};

use crate::config::{IndexConfig, IndexType};
use crate::util::topk::TopK;

/// How one policy's item vectors are searched in a deployed version.
#[derive(Debug, Clone)]
pub enum VectorIndex {
    Exact,
    Ivf(Box<Ivf>),
}

/// One similarity search.
#[derive(Clone, Copy)]
pub struct Search<'a> {
    pub query: &'a [f32],
    pub k: usize,
    /// Eligible items (the hard filter and exclusions); `None`: all.
    pub mask: Option<&'a [bool]>,
    /// How many items the mask lets through.
    pub eligible: usize,
}

/// How a search was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Every (eligible) vector was scored.
    Exact,
    /// The IVF index, probing this far.
    Ivf(Probe),
}

/// Relative costs of the work a search does, per vector, measured at d = 64 (`feedctl
/// bench-vectors`): an exact `f32` dot product (≈ 8.5 ns), an 8-bit code's approximate score,
/// reading the mask in item order (the exact scan) and at the random items of a partition (a
/// filtered probe).
const COST_F32: f64 = 1.0;
const COST_CODE: f64 = 0.6;
const COST_MASK: f64 = 0.05;
const COST_MASK_RANDOM: f64 = 0.2;

impl VectorIndex {
    /// Builds what `config` asks for over `items` (`n × dim`); `queries` tune the IVF probes.
    pub fn build(items: &[f32], dim: usize, queries: &[f32], config: &IndexConfig) -> Self {
        let n = items.len() / dim.max(1);
        let ivf = match config.kind {
            IndexType::Exact => false,
            IndexType::IvfSq8 => n > 0,
            IndexType::Auto => n > 0 && n >= config.threshold,
        };
        // A quantiser needs finite values (a diverged policy's NaN would poison it).
        if !ivf || !items.iter().all(|x| x.is_finite()) {
            return Self::Exact;
        }
        let mut params = IvfParams::for_catalog(n);
        if let Some(p) = config.partitions {
            params.partitions = p;
        }
        params.refine_factor = config.refine_factor;
        params.target_recall = config.target_recall as f32;
        let mut index = Ivf::build(items, dim, &params, queries);
        if let Some(p) = config.nprobes {
            // An explicit probe count holds for k = 10 and scales like the tuned curve.
            let base = index.probes[0].max(1) as f64;
            for v in index.probes.iter_mut() {
                *v = ((*v as f64) * p as f64 / base).ceil().max(1.0) as usize;
            }
            // What the tuning measured no longer describes these probes.
            index.tuned_recall.clear();
        }
        Self::Ivf(Box::new(index))
    }

    /// The best `k` eligible items, best first, with exact dot-product scores. The exact scan
    /// is chosen whenever it is expected to cost less (small catalogs, selective filters).
    pub fn search(&self, items: &[f32], dim: usize, s: Search<'_>) -> (Vec<(u32, f32)>, Method) {
        let n = items.len() / dim.max(1);
        if s.k == 0 || s.eligible == 0 || n == 0 {
            return (Vec::new(), Method::Exact);
        }
        match self {
            Self::Ivf(ivf) => {
                let selectivity = s.eligible as f64 / n as f64;
                let exact_cost = s.eligible as f64 * COST_F32
                    + if s.mask.is_some() {
                        n as f64 * COST_MASK
                    } else {
                        0.0
                    };
                let scan = ivf.expected_scan(s.k, selectivity) as f64;
                let ivf_cost = match s.mask {
                    None => scan * COST_CODE,
                    Some(_) => scan * (COST_MASK_RANDOM + selectivity * COST_CODE),
                } + (ivf.partitions() as f64) * COST_F32
                    + (s.k * ivf.refine_factor) as f64 * COST_F32;
                if ivf_cost < exact_cost {
                    let (found, probe) = ivf.search(items, s.query, s.k, s.mask, selectivity, None);
                    return (found, Method::Ivf(probe));
                }
                (exact(items, dim, s), Method::Exact)
            }
            Self::Exact => (exact(items, dim, s), Method::Exact),
        }
    }

    /// Bytes held besides the vectors themselves.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Exact => 0,
            Self::Ivf(ivf) => ivf.bytes(),
        }
    }
}

/// Scores every eligible vector, keeping the best `k` in a bounded heap.
pub fn exact(items: &[f32], dim: usize, s: Search<'_>) -> Vec<(u32, f32)> {
    /// Vectors scored per kernel call.
    const BLOCK: usize = 256;
    let mut top = TopK::new(s.k);
    match s.mask {
        None => {
            let mut scores = [0f32; BLOCK];
            for (b, rows) in items.chunks(BLOCK * dim).enumerate() {
                let scores = &mut scores[..rows.len() / dim];
                simd::dot_many(s.query, rows, scores);
                for (j, &score) in scores.iter().enumerate() {
                    top.push((b * BLOCK + j) as u32, score);
                }
            }
        }
        Some(mask) => {
            for (i, row) in items.chunks_exact(dim).enumerate() {
                if mask[i] {
                    top.push(i as u32, simd::dot(s.query, row));
                }
            }
        }
    }
    top.into_sorted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::linalg::Rng;

    /// `n` vectors around `clusters` random centres.
    fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let centres: Vec<f32> = (0..clusters * dim)
            .map(|_| rng.next_f32() * 2.0 - 1.0)
            .collect();
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let c = (rng.next_u64() as usize) % clusters;
            for j in 0..dim {
                out.push(centres[c * dim + j] + 0.3 * (rng.next_f32() - 0.5));
            }
        }
        out
    }

    fn ivf_config() -> IndexConfig {
        IndexConfig {
            kind: IndexType::IvfSq8,
            ..IndexConfig::default()
        }
    }

    #[test]
    fn ivf_recall_meets_the_tuned_target() {
        let dim = 16;
        let items = clustered(20_000, dim, 50, 1);
        let queries = clustered(300, dim, 50, 2);
        let index = VectorIndex::build(&items, dim, &queries, &ivf_config());
        let VectorIndex::Ivf(ivf) = &index else {
            panic!("expected an IVF index")
        };
        let held_out = clustered(100, dim, 50, 3);
        let mut hits = 0;
        for q in held_out.chunks_exact(dim) {
            let s = Search {
                query: q,
                k: 10,
                mask: None,
                eligible: 20_000,
            };
            let truth: std::collections::HashSet<u32> =
                exact(&items, dim, s).iter().map(|t| t.0).collect();
            let (found, _) = ivf.search(&items, q, 10, None, 1.0, None);
            hits += found.iter().filter(|t| truth.contains(&t.0)).count();
        }
        let recall = hits as f64 / 1000.0;
        assert!(recall >= 0.9, "recall {recall}, probes {:?}", ivf.probes);
        assert!(ivf.probes[0] < ivf.partitions(), "{:?}", ivf.probes);
    }

    #[test]
    fn filtered_search_returns_min_k_eligible_all_eligible() {
        let dim = 8;
        let n = 20_000;
        let items = clustered(n, dim, 40, 4);
        let index = VectorIndex::build(&items, dim, &[], &ivf_config());
        let mut rng = Rng::new(9);
        for per_10k in [5000, 1000, 100, 10, 1, 0] {
            let mask: Vec<bool> = (0..n)
                .map(|_| (rng.next_u64() % 10_000) < per_10k)
                .collect();
            let eligible = mask.iter().filter(|m| **m).count();
            for k in [1, 10, 100] {
                let q = &items[(k * 7 % n) * dim..][..dim];
                let s = Search {
                    query: q,
                    k,
                    mask: Some(&mask),
                    eligible,
                };
                let (found, _) = index.search(&items, dim, s);
                assert_eq!(found.len(), k.min(eligible), "{per_10k} {k}");
                assert!(found.iter().all(|t| mask[t.0 as usize]));
                // Forcing the IVF path keeps the guarantee too.
                let VectorIndex::Ivf(ivf) = &index else {
                    panic!()
                };
                let sel = eligible as f64 / n as f64;
                let (found, _) = ivf.search(&items, q, k, Some(&mask), sel.max(1e-6), None);
                assert_eq!(found.len(), k.min(eligible), "{per_10k} {k}");
                assert!(found.iter().all(|t| mask[t.0 as usize]));
            }
        }
    }
}
