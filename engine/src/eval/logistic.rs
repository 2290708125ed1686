//! A logistic regression on a handful of inputs, fitted by Newton's method: the baseline a
//! ranker's heads are reported against (the item's popularity and the retrieval scores it
//! reads), so that a report says whether the network earns its cost over the obvious model.

use super::calibration::sigmoid;

/// Newton steps at most; a few inputs converge in well under ten.
const STEPS: usize = 25;
/// An L2 penalty that keeps the fit finite on separable or constant inputs.
const RIDGE: f64 = 1e-6;

/// Weights of a logistic regression, the intercept last.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub weights: Vec<f64>,
}

impl Logistic {
    /// Fits on rows `at` of `x` (`width` inputs per row, row-major) against 0/1 `y` (indexed
    /// like the rows of `x`).
    pub fn fit(x: &[f32], width: usize, y: &[f32], at: &[usize]) -> Self {
        let d = width + 1;
        let mut w = vec![0f64; d];
        let n = at.len().max(1) as f64;
        let base = at.iter().map(|&r| y[r] as f64).sum::<f64>() / n;
        w[width] = (base.clamp(1e-6, 1.0 - 1e-6) / (1.0 - base.clamp(1e-6, 1.0 - 1e-6))).ln();
        let mut row = vec![0f64; d];
        for _ in 0..STEPS {
            let mut grad = vec![0f64; d];
            let mut hess = vec![0f64; d * d];
            for &r in at {
                row[..width]
                    .iter_mut()
                    .zip(&x[r * width..(r + 1) * width])
                    .for_each(|(o, &v)| *o = v as f64);
                row[width] = 1.0;
                let p = sigmoid(dot(&w, &row));
                let g = p - y[r] as f64;
                let h = (p * (1.0 - p)).max(1e-12);
                for a in 0..d {
                    grad[a] += g * row[a];
                    for b in 0..=a {
                        hess[a * d + b] += h * row[a] * row[b];
                    }
                }
            }
            for a in 0..d {
                grad[a] = grad[a] / n + RIDGE * w[a];
                for b in 0..=a {
                    let v = hess[a * d + b] / n + if a == b { RIDGE } else { 0.0 };
                    hess[a * d + b] = v;
                    hess[b * d + a] = v;
                }
            }
            let Some(step) = solve(&mut hess, &mut grad, d) else {
                break;
            };
            let size = step.iter().map(|s| s.abs()).fold(0.0, f64::max);
            w.iter_mut().zip(&step).for_each(|(w, s)| *w -= s);
            if size < 1e-8 {
                break;
            }
        }
        Self { weights: w }
    }

    /// The probability of row `r` of `x`.
    pub fn predict(&self, x: &[f32], width: usize, r: usize) -> f32 {
        let z: f64 = x[r * width..(r + 1) * width]
            .iter()
            .zip(&self.weights)
            .map(|(&v, &w)| v as f64 * w)
            .sum::<f64>()
            + self.weights[width];
        sigmoid(z) as f32
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Solves `m · s = v` (m `d × d`, symmetric positive definite) by Gaussian elimination with
/// partial pivoting; `None` when it is singular.
fn solve(m: &mut [f64], v: &mut [f64], d: usize) -> Option<Vec<f64>> {
    for col in 0..d {
        let pivot =
            (col..d).max_by(|&a, &b| m[a * d + col].abs().total_cmp(&m[b * d + col].abs()))?;
        if m[pivot * d + col].abs() < 1e-15 {
            return None;
        }
        if pivot != col {
            for k in 0..d {
                m.swap(pivot * d + k, col * d + k);
            }
            v.swap(pivot, col);
        }
        for r in col + 1..d {
            let f = m[r * d + col] / m[col * d + col];
            for k in col..d {
                m[r * d + k] -= f * m[col * d + k];
            }
            v[r] -= f * v[col];
        }
    }
    let mut s = vec![0f64; d];
    for r in (0..d).rev() {
        let tail: f64 = (r + 1..d).map(|k| m[r * d + k] * s[k]).sum();
        s[r] = (v[r] - tail) / m[r * d + r];
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_the_weights_of_simulated_data() {
        // y ~ Bernoulli(sigmoid(1.5 x0 − 0.5 x1 − 1)), drawn with a fixed generator.
        let n = 20_000;
        let mut state = 17u64;
        let mut uniform = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x = Vec::with_capacity(2 * n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let (a, b) = (uniform() * 2.0 - 1.0, uniform() * 2.0 - 1.0);
            x.extend([a as f32, b as f32]);
            y.push((uniform() < sigmoid(1.5 * a - 0.5 * b - 1.0)) as u8 as f32);
        }
        let at: Vec<usize> = (0..n).collect();
        let fit = Logistic::fit(&x, 2, &y, &at);
        let want = [1.5, -0.5, -1.0];
        for (w, t) in fit.weights.iter().zip(want) {
            assert!((w - t).abs() < 0.1, "{:?} vs {want:?}", fit.weights);
        }
        let p = fit.predict(&x, 2, 0);
        assert!(p > 0.0 && p < 1.0);
    }

    #[test]
    fn a_constant_input_leaves_a_finite_fit() {
        let x = vec![1f32; 100];
        let y: Vec<f32> = (0..100).map(|i| (i % 4 == 0) as u8 as f32).collect();
        let at: Vec<usize> = (0..100).collect();
        let fit = Logistic::fit(&x, 1, &y, &at);
        assert!(fit.weights.iter().all(|w| w.is_finite()));
        assert!((fit.predict(&x, 1, 0) - 0.25).abs() < 0.01);
    }
}
