//! The two inner loops of vector search, compiled twice: once for the baseline x86-64 (SSE2) or
//! whatever the target is, and once with AVX2 + FMA, chosen at run time. The generic bodies are
//! written with eight independent lanes so that the compiler can vectorise them without
//! reassociating a float sum (which it may not do on its own).

use std::sync::OnceLock;

/// `a · b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    (kernels().dot)(a, b)
}

/// `q · codes` with the codes read as `f32`: the approximate score of a scalar-quantised vector
/// (see [`super::ivf`]) once the query is pre-scaled.
#[inline]
pub fn dot_u8(q: &[f32], codes: &[u8]) -> f32 {
    (kernels().dot_u8)(q, codes)
}

/// `out[i] = q · rows[i]` for the `dim`-long rows of `rows`: one dispatch for a block of
/// vectors instead of one per vector.
#[inline]
pub fn dot_many(q: &[f32], rows: &[f32], out: &mut [f32]) {
    (kernels().dot_many)(q, rows, out)
}

/// `out[i] = q · codes[i]` for the `q.len()`-long code rows of `codes`.
#[inline]
pub fn dot_u8_many(q: &[f32], codes: &[u8], out: &mut [f32]) {
    (kernels().dot_u8_many)(q, codes, out)
}

/// Which instruction set the kernels use on this machine (reported by benchmarks).
pub fn instruction_set() -> &'static str {
    kernels().name
}

struct Kernels {
    name: &'static str,
    dot: fn(&[f32], &[f32]) -> f32,
    dot_u8: fn(&[f32], &[u8]) -> f32,
    dot_many: fn(&[f32], &[f32], &mut [f32]),
    dot_u8_many: fn(&[f32], &[u8], &mut [f32]),
}

fn kernels() -> &'static Kernels {
    static K: OnceLock<Kernels> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Kernels {
                name: "avx2+fma",
                dot: |a, b| unsafe { x86::dot(a, b) },
                dot_u8: |a, b| unsafe { x86::dot_u8(a, b) },
                dot_many: |q, r, o| unsafe { x86::dot_many(q, r, o) },
                dot_u8_many: |q, c, o| unsafe { x86::dot_u8_many(q, c, o) },
            };
        }
        Kernels {
            name: "baseline",
            dot: dot_generic,
            dot_u8: dot_u8_generic,
            dot_many: dot_many_generic,
            dot_u8_many: dot_u8_many_generic,
        }
    })
}

const LANES: usize = 8;

#[inline(always)]
fn dot_generic(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let chunks = n / LANES;
    for c in 0..chunks {
        let (x, y) = (&a[c * LANES..][..LANES], &b[c * LANES..][..LANES]);
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    for i in chunks * LANES..n {
        s += a[i] * b[i];
    }
    s
}

#[inline(always)]
fn dot_u8_generic(q: &[f32], codes: &[u8]) -> f32 {
    let n = q.len().min(codes.len());
    let (q, codes) = (&q[..n], &codes[..n]);
    let mut acc = [0f32; LANES];
    let chunks = n / LANES;
    for c in 0..chunks {
        let (x, y) = (&q[c * LANES..][..LANES], &codes[c * LANES..][..LANES]);
        for l in 0..LANES {
            acc[l] += x[l] * y[l] as f32;
        }
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    for i in chunks * LANES..n {
        s += q[i] * codes[i] as f32;
    }
    s
}

#[inline(always)]
fn dot_many_generic(q: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = q.len().max(1);
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = dot_generic(q, row);
    }
}

#[inline(always)]
fn dot_u8_many_generic(q: &[f32], codes: &[u8], out: &mut [f32]) {
    let dim = q.len().max(1);
    for (o, code) in out.iter_mut().zip(codes.chunks_exact(dim)) {
        *o = dot_u8_generic(q, code);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// # Safety
    /// The CPU must support AVX2 and FMA (checked once by `kernels`).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_generic(a, b)
    }

    /// # Safety
    /// As for [`dot`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_u8(q: &[f32], codes: &[u8]) -> f32 {
        super::dot_u8_generic(q, codes)
    }

    /// # Safety
    /// As for [`dot`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_many(q: &[f32], rows: &[f32], out: &mut [f32]) {
        super::dot_many_generic(q, rows, out)
    }

    /// # Safety
    /// As for [`dot`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot_u8_many(q: &[f32], codes: &[u8], out: &mut [f32]) {
        super::dot_u8_many_generic(q, codes, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_a_plain_sum() {
        for n in [0, 1, 7, 8, 9, 31, 64, 100, 128] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let c: Vec<u8> = (0..n).map(|i| (i * 37 % 256) as u8).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let plain_u8: f32 = a.iter().zip(&c).map(|(x, &y)| x * y as f32).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "{n}");
            assert!((dot_u8(&a, &c) - plain_u8).abs() < 1e-2, "{n}");
            assert!((dot_generic(&a, &b) - plain).abs() < 1e-4, "{n}");
            if n > 0 {
                let rows: Vec<f32> = b.iter().chain(&a).copied().collect();
                let mut out = [0f32; 2];
                dot_many(&a, &rows, &mut out);
                assert!((out[0] - plain).abs() < 1e-4, "{n}");
                let codes: Vec<u8> = c.iter().chain(&c).copied().collect();
                dot_u8_many(&a, &codes, &mut out);
                assert!((out[1] - plain_u8).abs() < 1e-2, "{n}");
            }
        }
    }
}
