//! The shadow version (`feedctl shadow`): a complete version that servers score live requests
//! with besides ACTIVE, off the response path, and what each server measured of it.
//!
//! ```text
//! <home>/models/<model>/SHADOW                           {"version": N, "since": ...}
//! <home>/models/<model>/versions/<N>/shadow/<server>-vs<M>.json   ShadowStats per server and
//!                                                            ACTIVE version M compared with
//! ```
//!
//! Each server writes only its own file, so no write races another; readers add them up.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::remote::Expect;
use super::{version_rel, Registry};
use crate::error::{Error, Result};
use crate::store;

/// What `SHADOW` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowPointer {
    pub version: u32,
    pub since: DateTime<Utc>,
}

/// Upper bounds (seconds) of the latency buckets a server counts shadowed requests in.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Requests scored by both ACTIVE and the shadow, and how their answers compare. Additive:
/// servers' files are summed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowStats {
    /// The ACTIVE version the shadow was compared with (the latest one, when it moved).
    pub against: u32,
    /// Requests answered by both.
    pub compared: u64,
    /// Σ overlap@k: the share of ACTIVE's page that the shadow's page of the same length holds.
    pub overlap_sum: f64,
    /// Requests whose pages share two or more items (rank correlation is defined).
    pub correlated: u64,
    /// Σ Spearman correlation of the shared items' ranks in both pages.
    pub correlation_sum: f64,
    /// Requests the shadow failed (its error is logged by the server).
    pub errors: u64,
    /// Requests not shadowed because the server had too many shadow requests in flight.
    pub skipped: u64,
    /// Counts per [`LATENCY_BUCKETS`] bound and one above the last: ACTIVE's time, the shadow's.
    pub active_latency: Vec<u64>,
    pub shadow_latency: Vec<u64>,
    pub updated_at: Option<DateTime<Utc>>,
}

impl ShadowStats {
    /// Adds another server's counts.
    pub fn add(&mut self, other: &ShadowStats) {
        self.against = self.against.max(other.against);
        self.compared += other.compared;
        self.overlap_sum += other.overlap_sum;
        self.correlated += other.correlated;
        self.correlation_sum += other.correlation_sum;
        self.errors += other.errors;
        self.skipped += other.skipped;
        add_counts(&mut self.active_latency, &other.active_latency);
        add_counts(&mut self.shadow_latency, &other.shadow_latency);
        self.updated_at = self.updated_at.max(other.updated_at);
    }

    /// Counts one compared request.
    pub fn observe(&mut self, c: &Comparison) {
        self.compared += 1;
        self.overlap_sum += c.overlap;
        if let Some(r) = c.correlation {
            self.correlated += 1;
            self.correlation_sum += r;
        }
        bucket(&mut self.active_latency, c.active_seconds);
        bucket(&mut self.shadow_latency, c.shadow_seconds);
    }

    pub fn mean_overlap(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.overlap_sum / self.compared as f64)
    }

    pub fn mean_correlation(&self) -> Option<f64> {
        (self.correlated > 0).then(|| self.correlation_sum / self.correlated as f64)
    }

    /// The bucket bound under which a share `q` of `counts` fall (`None` past the last bound or
    /// without counts).
    pub fn quantile(counts: &[u64], q: f64) -> Option<f64> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let want = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return LATENCY_BUCKETS.get(i).copied();
            }
        }
        None
    }
}

fn add_counts(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

fn bucket(counts: &mut Vec<u64>, seconds: f64) {
    counts.resize(LATENCY_BUCKETS.len() + 1, 0);
    let i = LATENCY_BUCKETS
        .iter()
        .position(|&b| seconds <= b)
        .unwrap_or(LATENCY_BUCKETS.len());
    counts[i] += 1;
}

/// One request's two answers compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub overlap: f64,
    pub correlation: Option<f64>,
    pub active_seconds: f64,
    pub shadow_seconds: f64,
}

impl Comparison {
    /// ACTIVE's page `a` against the shadow's page `b` (item ids in rank order): overlap@k with
    /// k = |a| (the shadow's page cut to k), and Spearman's ρ of the ranks of the items both
    /// pages hold, ranked again among themselves (`None` below two shared items).
    pub fn of(a: &[String], b: &[String], active_seconds: f64, shadow_seconds: f64) -> Self {
        let k = a.len();
        let b = &b[..b.len().min(k)];
        let position: std::collections::HashMap<&str, usize> = b
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        // Shared items in ACTIVE's order, with their position in the shadow's page.
        let shared: Vec<usize> = a
            .iter()
            .filter_map(|id| position.get(id.as_str()).copied())
            .collect();
        let overlap = if k == 0 {
            1.0
        } else {
            shared.len() as f64 / k as f64
        };
        let n = shared.len();
        let correlation = (n >= 2).then(|| {
            // Ranks among the shared items: ACTIVE's are 0..n in order; the shadow's by sorting.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| shared[i]);
            let mut shadow_rank = vec![0usize; n];
            for (r, &i) in order.iter().enumerate() {
                shadow_rank[i] = r;
            }
            let d2: f64 = shadow_rank
                .iter()
                .enumerate()
                .map(|(r, &s)| (r as f64 - s as f64).powi(2))
                .sum();
            let n = n as f64;
            1.0 - 6.0 * d2 / (n * (n * n - 1.0))
        });
        Self {
            overlap,
            correlation,
            active_seconds,
            shadow_seconds,
        }
    }
}

impl Registry {
    /// The version `model`'s servers shadow, if any.
    pub fn shadow(&self, model: &str) -> Result<Option<ShadowPointer>> {
        match &self.remote {
            None => store::read_json(&self.model_dir(model).join("SHADOW")),
            Some(r) => r
                .get(&format!("models/{model}/SHADOW"))?
                .map(|read| {
                    serde_json::from_slice(&read.bytes).map_err(|e| {
                        Error::Internal(format!(
                            "{}/models/{model}/SHADOW is corrupt: {e}",
                            r.url()
                        ))
                    })
                })
                .transpose(),
        }
    }

    /// Makes `version` the shadow of `model` (replacing any other): a complete version other
    /// than ACTIVE. Recorded in its log.
    pub fn set_shadow(&self, model: &str, version: u32) -> Result<ShadowPointer> {
        let v = self.version(model, Some(version))?;
        if self.active_version(model)? == Some(version) {
            return Err(Error::invalid(
                "version",
                format!(
                    "version {version} of `{model}` is ACTIVE; a shadow is compared with ACTIVE"
                ),
            )
            .with_hint("shadow a candidate: `feedctl update-model --candidate` makes one"));
        }
        if !v.is_complete() {
            return Err(Error::invalid(
                "version",
                format!(
                    "version {version} of `{model}` never finished deploying ({}: {}); only a complete version can be shadowed",
                    v.status, v.message
                ),
            )
            .with_hint("see view-model for the complete versions"));
        }
        let pointer = ShadowPointer {
            version,
            since: Utc::now(),
        };
        self.write_small(
            model,
            "SHADOW",
            serde_json::to_vec(&pointer).expect("serialises"),
        )?;
        self.record(
            model,
            version,
            v.status,
            "shadow: servers score live requests with this version beside ACTIVE",
        )?;
        Ok(pointer)
    }

    /// Stops shadowing; the version that was shadowed, if one was.
    pub fn clear_shadow(&self, model: &str) -> Result<Option<u32>> {
        let Some(p) = self.shadow(model)? else {
            return Ok(None);
        };
        match &self.remote {
            None => {
                let path = self.model_dir(model).join("SHADOW");
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::storage(format!("removing {}", path.display()), e))
                    }
                }
            }
            Some(r) => r.delete(&format!("models/{model}/SHADOW"))?,
        }
        if let Ok(v) = self.version(model, Some(p.version)) {
            self.record(model, p.version, v.status, "shadow stopped")?;
        }
        Ok(Some(p.version))
    }

    /// Stores what server `server` measured of `version` as a shadow (its own file).
    pub fn write_shadow_stats(
        &self,
        model: &str,
        version: u32,
        server: &str,
        stats: &ShadowStats,
    ) -> Result<()> {
        let bytes = serde_json::to_vec(stats).expect("serialises");
        match &self.remote {
            None => {
                let dir = self.version_dir(model, version).join("shadow");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::storage(format!("creating {}", dir.display()), e))?;
                store::write_atomic(&dir.join(format!("{server}.json")), &bytes)
            }
            Some(r) => {
                let rel = format!("{}/shadow/{server}.json", version_rel(model, version));
                r.put(&rel, bytes, Expect::Any)?.ok();
                Ok(())
            }
        }
    }

    /// Every server's measurements of `version` as a shadow against the latest ACTIVE version
    /// it was compared with, added up; `None` when none wrote.
    pub fn shadow_stats(&self, model: &str, version: u32) -> Result<Option<ShadowStats>> {
        let mut files: Vec<Vec<u8>> = Vec::new();
        match &self.remote {
            None => {
                let dir = self.version_dir(model, version).join("shadow");
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return Ok(None);
                };
                for e in entries.flatten() {
                    if e.path().extension().is_some_and(|x| x == "json") {
                        if let Ok(bytes) = std::fs::read(e.path()) {
                            files.push(bytes);
                        }
                    }
                }
            }
            Some(r) => {
                let rel = format!("{}/shadow", version_rel(model, version));
                for (name, _) in r.objects_under(&rel)? {
                    if let Some(read) = r.get(&format!("{rel}/{name}"))? {
                        files.push(read.bytes);
                    }
                }
            }
        }
        // A file being replaced is read whole or not at all; a corrupt one is skipped.
        let parsed: Vec<ShadowStats> = files
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect();
        // Comparisons with the latest ACTIVE version only: another ACTIVE answered differently.
        let Some(latest) = parsed.iter().map(|s| s.against).max() else {
            return Ok(None);
        };
        let mut total = ShadowStats::default();
        for s in parsed.iter().filter(|s| s.against == latest) {
            total.add(s);
        }
        Ok(Some(total))
    }

    /// A small object of the model's folder (a pointer), replaced whole.
    fn write_small(&self, model: &str, name: &str, bytes: Vec<u8>) -> Result<()> {
        match &self.remote {
            None => store::write_atomic(&self.model_dir(model).join(name), &bytes),
            Some(r) => {
                r.put(&format!("models/{model}/{name}"), bytes, Expect::Any)?
                    .ok();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn comparisons_measure_overlap_and_rank_agreement() {
        let same = Comparison::of(&ids("a b c d"), &ids("a b c d"), 0.001, 0.002);
        assert_eq!((same.overlap, same.correlation), (1.0, Some(1.0)));
        let reversed = Comparison::of(&ids("a b c d"), &ids("d c b a"), 0.0, 0.0);
        assert_eq!((reversed.overlap, reversed.correlation), (1.0, Some(-1.0)));
        // The shadow's page is cut to ACTIVE's length: `e` and `a` beyond it do not count.
        let half = Comparison::of(&ids("a b c d"), &ids("x b y c e a"), 0.0, 0.0);
        assert_eq!((half.overlap, half.correlation), (0.5, Some(1.0)));
        let one = Comparison::of(&ids("a b"), &ids("b z"), 0.0, 0.0);
        assert_eq!((one.overlap, one.correlation), (0.5, None));

        let mut s = ShadowStats::default();
        s.observe(&same);
        s.observe(&one);
        let mut total = ShadowStats::default();
        total.add(&s);
        total.add(&s);
        assert_eq!(total.compared, 4);
        assert_eq!(total.mean_overlap(), Some(0.75));
        assert_eq!(total.mean_correlation(), Some(1.0));
        assert_eq!(
            ShadowStats::quantile(&total.active_latency, 0.5),
            Some(0.000_5)
        );
        assert_eq!(
            ShadowStats::quantile(&total.active_latency, 0.75),
            Some(0.001)
        );
        assert_eq!(
            ShadowStats::quantile(&total.shadow_latency, 0.99),
            Some(0.002_5)
        );
    }

    #[test]
    fn shadow_pointer_needs_a_complete_version_other_than_active() {
        let home = tempfile::tempdir().unwrap();
        let reg = Registry::open(home.path()).unwrap();
        reg.begin("m", "x", "create").unwrap().promote().unwrap();
        let err = reg.set_shadow("m", 1).unwrap_err().to_string();
        assert!(err.contains("is ACTIVE"), "{err}");
        let candidate = reg.begin("m", "x", "update").unwrap();
        let err = reg.set_shadow("m", 2).unwrap_err().to_string();
        assert!(err.contains("never finished deploying"), "{err}");
        candidate.finish(true).unwrap();
        drop(candidate);
        assert_eq!(reg.active_version("m").unwrap(), Some(1));
        let p = reg.set_shadow("m", 2).unwrap();
        assert_eq!(reg.shadow("m").unwrap(), Some(p));
        let mut stats = ShadowStats::default();
        stats.observe(&Comparison::of(&ids("a b"), &ids("a b"), 0.0, 0.0));
        reg.write_shadow_stats("m", 2, "one", &stats).unwrap();
        reg.write_shadow_stats("m", 2, "two", &stats).unwrap();
        assert_eq!(reg.shadow_stats("m", 2).unwrap().unwrap().compared, 2);
        assert_eq!(reg.clear_shadow("m").unwrap(), Some(2));
        assert_eq!(reg.shadow("m").unwrap(), None);
        assert_eq!(reg.clear_shadow("m").unwrap(), None);
    }
}
