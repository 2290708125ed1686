//! Synthetic vectors with cluster structure (a Gaussian mixture), for benchmarks and tests:
//! uniform noise would make every index look bad and every partitioning arbitrary, whereas
//! learned embeddings cluster by taste.

use crate::util::linalg::Rng;

/// A mixture of `clusters` Gaussian blobs in `dim` dimensions. Centres are N(0, 1) per
/// dimension; points are centre + N(0, spread²). Cluster sizes follow a Zipf-like skew, as
/// genres and tastes do.
pub struct Mixture {
    dim: usize,
    centres: Vec<f32>,
    /// Cumulative cluster weights.
    cumulative: Vec<f64>,
    spread: f32,
}

impl Mixture {
    pub fn new(dim: usize, clusters: usize, spread: f32, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let centres = (0..clusters * dim).map(|_| normal(&mut rng)).collect();
        let mut cumulative = Vec::with_capacity(clusters);
        let mut total = 0.0;
        for c in 0..clusters {
            total += 1.0 / (c as f64 + 10.0);
            cumulative.push(total);
        }
        for w in cumulative.iter_mut() {
            *w /= total;
        }
        Self {
            dim,
            centres,
            cumulative,
            spread,
        }
    }

    /// `n` points, row-major.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::with_capacity(n * self.dim);
        for _ in 0..n {
            let u = rng.next_f32() as f64;
            let c = self
                .cumulative
                .partition_point(|&w| w < u)
                .min(self.cumulative.len() - 1);
            for j in 0..self.dim {
                out.push(self.centres[c * self.dim + j] + self.spread * normal(&mut rng));
            }
        }
        out
    }
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Rng) -> f32 {
    let u1 = (rng.next_f32() as f64).max(1e-12);
    let u2 = rng.next_f32() as f64;
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
