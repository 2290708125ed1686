//! Time spans as FeedQL and the model file write them: `'7d'` (units s, m, h, d, w). Read by
//! `popular` and `trending` (`window = ...`), `served(user, within = ...)` and
//! `events.retention`.

/// How to write a window, for errors.
pub const WINDOW_HINT: &str = "write a number and a unit: '30m', '24h', '7d', '2w'";

/// `'7d'` in seconds; at most ten years (windows are about recency).
pub fn window_seconds(value: &str) -> Option<i64> {
    let units = [
        ('s', 1i64),
        ('m', 60),
        ('h', 3_600),
        ('d', 86_400),
        ('w', 7 * 86_400),
    ];
    units.iter().find_map(|&(u, secs)| {
        let n: f64 = value.strip_suffix(u)?.trim().parse().ok()?;
        (n > 0.0 && n.is_finite() && n * (secs as f64) <= 10.0 * 365.0 * 86_400.0)
            .then_some((n * secs as f64) as i64)
    })
}
