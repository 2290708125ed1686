//! A ranker's heads judged on held-out impressions: how well each probability orders
//! engagements (AUC), how good it is as a probability (log loss, normalised entropy: log loss
//! over the entropy of the base rate, so 1 is no better than always predicting the base rate),
//! and how calibrated it is (expected calibration error over equal-mass bins, predicted over
//! observed, and the reliability curve's points).

pub use crate::core::HeadMetrics;

/// Bins of the calibration error and the reliability curve (equal numbers of rows).
pub const BINS: usize = 10;

/// Probabilities are clipped to this distance from 0 and 1 before a log.
const EPS: f64 = 1e-7;

/// The figures of probabilities `p` against 0/1 `labels`.
pub fn head_metrics(p: &[f32], labels: &[f32]) -> HeadMetrics {
    let n = p.len();
    if n == 0 {
        return HeadMetrics::default();
    }
    let positives: f64 = labels.iter().map(|&y| y as f64).sum();
    let base_rate = positives / n as f64;
    let log_loss = p
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = (p as f64).clamp(EPS, 1.0 - EPS);
            -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / n as f64;
    let b = base_rate.clamp(EPS, 1.0 - EPS);
    let entropy = -(b * b.ln() + (1.0 - b) * (1.0 - b).ln());
    let (ece, reliability) = calibration_error(p, labels);
    let predicted: f64 = p.iter().map(|&p| p as f64).sum();
    HeadMetrics {
        rows: n,
        base_rate,
        auc: auc(p, labels),
        log_loss,
        normalized_entropy: log_loss / entropy,
        ece,
        predicted_over_observed: if positives > 0.0 {
            predicted / positives
        } else {
            0.0
        },
        reliability,
    }
}

/// The probability that a random engaged row scores above a random other one (ties count
/// half): the Mann–Whitney statistic over ranks. 0.5 when one class is absent.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0f64, 0f64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1..=j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        for &r in &order[i..=j] {
            if labels[r] > 0.5 {
                rank_sum += mean_rank;
                pos += 1.0;
            }
        }
        i = j + 1;
    }
    let neg = scores.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// ECE over [`BINS`] equal-mass bins of the predictions, and each bin's point.
fn calibration_error(p: &[f32], labels: &[f32]) -> (f64, Vec<[f64; 3]>) {
    let n = p.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut ece = 0.0;
    let mut points = Vec::with_capacity(BINS);
    for k in 0..BINS {
        let (lo, hi) = (k * n / BINS, (k + 1) * n / BINS);
        if hi <= lo {
            continue;
        }
        let rows = &order[lo..hi];
        let mean_p = rows.iter().map(|&r| p[r] as f64).sum::<f64>() / rows.len() as f64;
        let rate = rows.iter().map(|&r| labels[r] as f64).sum::<f64>() / rows.len() as f64;
        ece += rows.len() as f64 / n as f64 * (mean_p - rate).abs();
        points.push([mean_p, rate, rows.len() as f64]);
    }
    (ece, points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_halves_ties() {
        assert_eq!(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75);
        assert_eq!(auc(&[0.5, 0.5], &[0.0, 1.0]), 0.5);
        assert_eq!(auc(&[0.9, 0.1], &[1.0, 0.0]), 1.0);
        assert_eq!(auc(&[0.9, 0.1], &[1.0, 1.0]), 0.5);
    }

    #[test]
    fn the_base_rate_has_normalized_entropy_one_and_no_calibration_error() {
        let labels: Vec<f32> = (0..1000).map(|i| (i % 4 == 0) as u8 as f32).collect();
        let p = vec![0.25f32; 1000];
        let m = head_metrics(&p, &labels);
        assert!((m.normalized_entropy - 1.0).abs() < 1e-6, "{m:?}");
        assert!(m.ece < 0.06, "{m:?}");
        assert!((m.predicted_over_observed - 1.0).abs() < 1e-6);
        // Twice the rate everywhere is off by the rate.
        let m = head_metrics(&vec![0.5f32; 1000], &labels);
        assert!((m.ece - 0.25).abs() < 0.06, "{m:?}");
        assert!((m.predicted_over_observed - 2.0).abs() < 1e-6);
    }
}
