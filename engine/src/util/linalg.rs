//! The few dense kernels the CPU policies need: dot products, Gram matrices and batched scoring
//! through `matrixmultiply`'s SGEMM (cache-blocked and SIMD, no system BLAS).

/// `a · b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators let the compiler vectorise without reassociating a single sum.
    let mut acc = [0f32; 4];
    let chunks = a.len() / 4;
    for c in 0..chunks {
        for l in 0..4 {
            acc[l] += a[c * 4 + l] * b[c * 4 + l];
        }
    }
    let mut s = acc[0] + acc[1] + acc[2] + acc[3];
    for i in chunks * 4..a.len() {
        s += a[i] * b[i];
    }
    s
}

/// `y += alpha * x`.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// `out (k×k) = Fᵀ F` for `f` with rows of length `k`.
pub fn gram(f: &[f32], k: usize) -> Vec<f32> {
    let n = f.len() / k;
    let mut out = vec![0f32; k * k];
    // SAFETY: the strides describe `f` (n×k row-major) read as Fᵀ (k×n) and F (n×k), and `out`
    // as a k×k row-major matrix; all slices are long enough.
    unsafe {
        matrixmultiply::sgemm(
            k,
            n,
            k,
            1.0,
            f.as_ptr(),
            1,
            k as isize,
            f.as_ptr(),
            k as isize,
            1,
            0.0,
            out.as_mut_ptr(),
            k as isize,
            1,
        );
    }
    out
}

/// `out (m×n) = A Bᵀ` for `a` (m×k) and `b` (n×k) row-major: scores of m users against n items.
pub fn scores(a: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    let m = a.len() / k;
    let n = b.len() / k;
    assert!(out.len() >= m * n, "score buffer too small");
    if k == 0 {
        out[..m * n].fill(0.0);
        return;
    }
    // SGEMM packs all of `b` first: worth it for a batch (evaluation), not for one request.
    if m <= 4 {
        for (row, x) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (o, y) in row.iter_mut().zip(b.chunks_exact(k)) {
                *o = dot(x, y);
            }
        }
        return;
    }
    // SAFETY: the strides describe `a` as m×k, `b` read as Bᵀ (k×n), `out` as m×n row-major.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            0.0,
            out.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// A small, seedable generator (SplitMix64): reproducible initialisation without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_kernels_match_naive() {
        let k = 3;
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 0.5, 0.5, 0.5, 2.0, 1.0, 0.0];
        let mut out = vec![0.0; 6];
        scores(&a, &b, k, &mut out);
        // And through SGEMM: a batch of 6 users (the first two repeated).
        let a6: Vec<f32> = a.iter().chain(&a).chain(&a).copied().collect();
        let mut out6 = vec![0.0; 18];
        scores(&a6, &b, k, &mut out6);
        for r in 0..3 {
            for (x, y) in out6[r * 6..r * 6 + 6].iter().zip(&out) {
                assert!((x - y).abs() < 1e-5);
            }
        }
        for u in 0..2 {
            for i in 0..3 {
                assert!(
                    (out[u * 3 + i] - dot(&a[u * k..u * k + k], &b[i * k..i * k + k])).abs() < 1e-6
                );
            }
        }
        let g = gram(&a, k);
        assert_eq!(g[0], 1.0 + 16.0);
        assert_eq!(g[1], 2.0 + 20.0);
        assert_eq!(g[k + 2], 2.0 * 3.0 + 5.0 * 6.0);
    }
}
