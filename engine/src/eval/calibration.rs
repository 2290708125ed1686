//! Per-head calibration maps, fitted on validation impressions and applied at serving: a raw
//! logit in, a probability out. Isotonic regression (pool adjacent violators, interpolated
//! between the pooled blocks so that distinct logits stay distinct) or Platt scaling (a logistic
//! fit of the logit).

use serde::{Deserialize, Serialize};

use crate::config::CalibrationKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Calibration {
    /// The network's own probability, σ(logit).
    None,
    /// σ(a × logit + b).
    Platt { a: f64, b: f64 },
    /// Increasing knots (logit, probability); linear between them, the network's curve through
    /// the end knots outside.
    Isotonic { logits: Vec<f32>, p: Vec<f32> },
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Calibration {
    /// Fits `kind` on `logits` against 0/1 `labels`.
    pub fn fit(kind: CalibrationKind, logits: &[f32], labels: &[f32]) -> Self {
        match kind {
            CalibrationKind::None => Self::None,
            CalibrationKind::Platt => platt(logits, labels),
            CalibrationKind::Isotonic => isotonic(logits, labels),
        }
    }

    pub fn apply(&self, logit: f32) -> f32 {
        match self {
            Self::None => sigmoid(logit as f64) as f32,
            Self::Platt { a, b } => sigmoid(a * logit as f64 + b) as f32,
            Self::Isotonic { logits, p } => {
                if logits.is_empty() {
                    return sigmoid(logit as f64) as f32;
                }
                let k = logits.partition_point(|&x| x < logit);
                // Past the end knots the map goes on as the network's own curve through them,
                // shifted in logit space: a flat end would tie every candidate beyond it, and a
                // ranker serving at the best position scores many candidates past the knots
                // the shown rows made.
                if k == 0 {
                    return beyond(logits[0], p[0], logit);
                }
                if k == logits.len() {
                    return beyond(logits[k - 1], p[k - 1], logit);
                }
                let (x0, x1, y0, y1) = (logits[k - 1], logits[k], p[k - 1], p[k]);
                if x1 <= x0 {
                    return y1;
                }
                y0 + (y1 - y0) * (logit - x0) / (x1 - x0)
            }
        }
    }
}

/// σ(logit⁻¹(p) + z − x): the probability at logit `z` on the network's curve through the
/// knot (`x`, `p`).
fn beyond(x: f32, p: f32, z: f32) -> f32 {
    let p = (p as f64).clamp(1e-6, 1.0 - 1e-6);
    sigmoid((p / (1.0 - p)).ln() + (z - x) as f64) as f32
}

/// Logistic regression of the label on the logit, by Newton's method.
fn platt(logits: &[f32], labels: &[f32]) -> Calibration {
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 1e-9, 0.0, 1e-9);
        for (&z, &y) in logits.iter().zip(labels) {
            let z = z as f64;
            let p = sigmoid(a * z + b);
            let (d, w) = (p - y as f64, p * (1.0 - p));
            ga += d * z;
            gb += d;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-9 {
            break;
        }
    }
    Calibration::Platt { a, b }
}

/// Pool adjacent violators over the rows sorted by logit; each pooled block becomes a knot at
/// its mean logit with its engagement rate.
fn isotonic(logits: &[f32], labels: &[f32]) -> Calibration {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
    // Blocks: (sum of labels, sum of logits, rows).
    let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
    for &r in &order {
        blocks.push((labels[r] as f64, logits[r] as f64, 1.0));
        while blocks.len() > 1 {
            let n = blocks.len();
            let (last, prev) = (blocks[n - 1], blocks[n - 2]);
            if prev.0 / prev.2 < last.0 / last.2 {
                break;
            }
            blocks.pop();
            blocks[n - 2] = (prev.0 + last.0, prev.1 + last.1, prev.2 + last.2);
        }
    }
    Calibration::Isotonic {
        logits: blocks.iter().map(|b| (b.1 / b.2) as f32).collect(),
        p: blocks.iter().map(|b| (b.0 / b.2) as f32).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::linalg::Rng;

    /// Labels drawn at σ(2z + 1): Platt recovers (2, 1) and isotonic the same curve.
    #[test]
    fn both_maps_recover_a_known_miscalibration() {
        let mut rng = Rng::new(3);
        let n = 40_000;
        let z: Vec<f32> = (0..n).map(|_| rng.next_f32() * 6.0 - 3.0).collect();
        let y: Vec<f32> = z
            .iter()
            .map(|&z| (rng.next_f32() < sigmoid(2.0 * z as f64 + 1.0) as f32) as u8 as f32)
            .collect();
        let Calibration::Platt { a, b } = Calibration::fit(CalibrationKind::Platt, &z, &y) else {
            panic!("platt");
        };
        assert!((a - 2.0).abs() < 0.1 && (b - 1.0).abs() < 0.1, "{a} {b}");
        let iso = Calibration::fit(CalibrationKind::Isotonic, &z, &y);
        for x in [-2.0f32, -0.5, 0.0, 1.0] {
            let want = sigmoid(2.0 * x as f64 + 1.0) as f32;
            assert!((iso.apply(x) - want).abs() < 0.05, "{x}: {}", iso.apply(x));
        }
        // Monotone.
        let mut last = 0.0;
        for k in -40..40 {
            let p = iso.apply(k as f32 / 10.0);
            assert!(p >= last);
            last = p;
        }
        // Past the knots (z in [-3, 3]) distinct logits stay distinct: no ties at the ends.
        assert!(iso.apply(4.0) < iso.apply(5.0) && iso.apply(5.0) < 1.0);
        assert!(iso.apply(-5.0) < iso.apply(-4.0) && iso.apply(-5.0) > 0.0);
    }
}
