//! Seeded spherical k-means for the coarse quantizer of the IVF index. Search ranks partitions
//! by the query's dot product with their centroids, so vectors are assigned the same way
//! (largest `x·c`) and centroids are kept at unit norm, which keeps partitions balanced (as
//! faiss does for inner-product IVF). Measured at 1M × 64: assigning by L2 distance instead
//! needed five times the codes scanned for the same recall. Scores come from SGEMM blocks, so a
//! million vectors against two thousand centroids takes seconds.

use rayon::prelude::*;

use crate::util::linalg::{scores, Rng};

/// Scores per SGEMM block (rows × centroids): big enough to amortise packing, small enough
/// that many centroids do not blow up memory (16 MiB a block).
const BLOCK_SCORES: usize = 4 << 20;

/// `k` centroids (row-major, `k × dim`) of `data` (row-major, `n × dim`), trained on at most
/// `sample` rows for `iterations` rounds. Deterministic for a given seed.
pub fn train(
    data: &[f32],
    dim: usize,
    k: usize,
    iterations: usize,
    sample: usize,
    seed: u64,
) -> Vec<f32> {
    let n = data.len() / dim;
    let k = k.min(n).max(1);
    let mut rng = Rng::new(seed);
    // A random sample without replacement (partial Fisher-Yates over row indexes).
    let mut rows: Vec<usize> = (0..n).collect();
    let take = sample.clamp(k, n.max(k)).min(n);
    for i in 0..take {
        let j = i + (rng.next_u64() as usize) % (n - i);
        rows.swap(i, j);
    }
    rows.truncate(take);
    // Initial centroids: k-means++ over the first rows of the random sample (before it is put
    // in order, so that item order cannot bias them).
    let candidates = &rows[..take.min((4 * k).max(1024))];
    let mut centroids = plus_plus(data, dim, candidates, k, &mut rng);
    rows.sort_unstable();
    let mut train: Vec<f32> = Vec::with_capacity(take * dim);
    for &r in &rows {
        train.extend_from_slice(&data[r * dim..(r + 1) * dim]);
    }
    normalise(&mut centroids, dim);
    let mut assign = vec![0u32; take];
    for _ in 0..iterations {
        assign_into(&train, dim, &centroids, &mut assign);
        let mut sums = vec![0f64; k * dim];
        let mut counts = vec![0usize; k];
        for (row, &c) in train.chunks_exact(dim).zip(&assign) {
            counts[c as usize] += 1;
            for (s, &x) in sums[c as usize * dim..][..dim].iter_mut().zip(row) {
                *s += x as f64;
            }
        }
        for c in 0..k {
            let target = &mut centroids[c * dim..(c + 1) * dim];
            if counts[c] == 0 {
                // An empty cluster restarts at a random sampled row.
                let r = (rng.next_u64() as usize) % take;
                target.copy_from_slice(&train[r * dim..(r + 1) * dim]);
            } else {
                for (t, s) in target.iter_mut().zip(&sums[c * dim..(c + 1) * dim]) {
                    *t = (*s / counts[c] as f64) as f32;
                }
            }
        }
        normalise(&mut centroids, dim);
    }
    centroids
}

/// k-means++ seeding (each next centre drawn with probability ∝ its squared distance to the
/// nearest chosen one) among the `candidates` rows, on unit-normalised vectors: spreads the
/// initial centroids over the directions present, where uniform seeds would often put two in
/// one cluster and none in another. O(k × candidates × dim).
fn plus_plus(data: &[f32], dim: usize, candidates: &[usize], k: usize, rng: &mut Rng) -> Vec<f32> {
    let mut points: Vec<f32> = Vec::with_capacity(candidates.len() * dim);
    for &r in candidates {
        points.extend_from_slice(&data[r * dim..(r + 1) * dim]);
    }
    normalise(&mut points, dim);
    let m = candidates.len();
    let mut chosen = Vec::with_capacity(k);
    let mut nearest = vec![f32::INFINITY; m];
    let mut next = (rng.next_u64() as usize) % m;
    while chosen.len() < k.min(m) {
        chosen.push(next);
        let c = &points[next * dim..(next + 1) * dim];
        for (d, p) in nearest.iter_mut().zip(points.chunks_exact(dim)) {
            let dist: f32 = p.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            *d = d.min(dist);
        }
        let total: f64 = nearest.iter().map(|&d| d as f64).sum();
        if total <= 0.0 {
            // Every candidate coincides with a chosen centre: take the rest in order.
            next = (0..m).find(|i| !chosen.contains(i)).unwrap_or(0);
            continue;
        }
        let mut target = rng.next_f32() as f64 * total;
        next = m - 1;
        for (i, &d) in nearest.iter().enumerate() {
            target -= d as f64;
            if target < 0.0 {
                next = i;
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(k * dim);
    for &i in &chosen {
        out.extend_from_slice(&data[candidates[i] * dim..(candidates[i] + 1) * dim]);
    }
    // Fewer candidates than centroids (tiny catalogs): repeat, k-means reseeds the empties.
    while out.len() < k * dim {
        let i = chosen[out.len() / dim % chosen.len()];
        out.extend_from_slice(&data[candidates[i] * dim..(candidates[i] + 1) * dim]);
    }
    out
}

/// Scales every row to unit length (a zero row stays zero).
fn normalise(rows: &mut [f32], dim: usize) {
    for row in rows.chunks_exact_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

/// The centroid with the largest dot product, for every row of `data`.
pub fn assign(data: &[f32], dim: usize, centroids: &[f32]) -> Vec<u32> {
    let mut out = vec![0u32; data.len() / dim];
    assign_into(data, dim, centroids, &mut out);
    out
}

fn assign_into(data: &[f32], dim: usize, centroids: &[f32], out: &mut [u32]) {
    let k = centroids.len() / dim;
    let block = (BLOCK_SCORES / k.max(1)).clamp(16, 4096);
    data.par_chunks(block * dim)
        .zip(out.par_chunks_mut(block))
        .for_each(|(block, out)| {
            let m = block.len() / dim;
            let mut dots = vec![0f32; m * k];
            scores(block, centroids, dim, &mut dots);
            for (o, row) in out.iter_mut().zip(dots.chunks_exact(k)) {
                let mut best = (f32::NEG_INFINITY, 0u32);
                for (c, &d) in row.iter().enumerate() {
                    if d > best.0 {
                        best = (d, c as u32);
                    }
                }
                *o = best.1;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_well_separated_clusters() {
        // Four tight blobs in 2-D, in four directions.
        let centers = [(10.0, 0.0), (0.0, 10.0), (-10.0, 0.0), (0.0, -10.0)];
        let mut rng = Rng::new(1);
        let mut data = Vec::new();
        for i in 0..400 {
            let (x, y) = centers[i % 4];
            data.push(x + rng.next_f32() - 0.5);
            data.push(y + rng.next_f32() - 0.5);
        }
        let c = train(&data, 2, 4, 10, 400, 7);
        let a = assign(&data, 2, &c);
        // Points of one blob share a centroid, and blobs do not share.
        for blob in 0..4 {
            let first = a[blob];
            assert!((blob..400).step_by(4).all(|i| a[i] == first));
        }
        let mut distinct: Vec<u32> = a[..4].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 4);
        // Same seed, same centroids.
        assert_eq!(c, train(&data, 2, 4, 10, 400, 7));
    }
}
