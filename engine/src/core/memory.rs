//! What a policy's training will hold in memory at its peak, part by part, so that a run that
//! cannot fit is refused before it starts, and the refusal names the setting to lower.
//!
//! Estimates count `f32` tensors (and the plain arrays a policy builds), not the allocator's
//! slack or the process's fixed cost: they compare with the resident memory a training adds
//! over what the process held before it (`util::memory::PeakMeter`), recorded side by side in
//! the evaluation report.

use serde::{Deserialize, Serialize};

/// One part of an estimate: what it is, its size, and the settings it grows with (the first is
/// the one a refusal suggests lowering).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPart {
    pub what: String,
    pub bytes: u64,
    pub settings: &'static [&'static str],
}

/// A policy's peak training memory, by part.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryEstimate {
    pub parts: Vec<MemoryPart>,
    /// Whether the data's shape was known (after the fetch), or only the settings (`validate`,
    /// where catalog-sized parts count zero and sequences fill their configured length).
    pub with_data: bool,
}

impl MemoryEstimate {
    pub fn new(with_data: bool) -> Self {
        Self {
            parts: Vec::new(),
            with_data,
        }
    }

    /// Adds a part of `floats` 4-byte values (counts are `f64`: products of settings overflow
    /// `usize` arithmetic long before they stop being a meaningful refusal).
    pub fn floats(
        &mut self,
        what: impl Into<String>,
        floats: f64,
        settings: &'static [&'static str],
    ) {
        self.bytes(what, floats * 4.0, settings);
    }

    pub fn bytes(
        &mut self,
        what: impl Into<String>,
        bytes: f64,
        settings: &'static [&'static str],
    ) {
        self.parts.push(MemoryPart {
            what: what.into(),
            bytes: bytes.clamp(0.0, u64::MAX as f64) as u64,
            settings,
        });
    }

    /// Adds the parts of whichever of two stages that never overlap needs more (a training step
    /// and a validation pass).
    pub fn add_larger(&mut self, a: MemoryEstimate, b: MemoryEstimate) {
        let larger = if a.total() >= b.total() { a } else { b };
        self.parts.extend(larger.parts);
    }

    pub fn total(&self) -> u64 {
        self.parts
            .iter()
            .fold(0u64, |s, p| s.saturating_add(p.bytes))
    }

    /// The part worth lowering first.
    pub fn largest(&self) -> Option<&MemoryPart> {
        self.parts.iter().max_by_key(|p| p.bytes)
    }

    /// `attention maps 17.2 GB, activations 8.6 GB, …`, largest first.
    pub fn describe(&self) -> String {
        let mut parts: Vec<&MemoryPart> = self.parts.iter().filter(|p| p.bytes > 0).collect();
        parts.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        parts
            .iter()
            .map(|p| format!("{} {}", p.what, human_bytes(p.bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The record for the evaluation report, with the measured peak when there is one.
    pub fn report(&self, measured: Option<u64>) -> MemoryReport {
        MemoryReport {
            estimated_bytes: self.total(),
            measured_bytes: measured,
            parts: self
                .parts
                .iter()
                .map(|p| (p.what.clone(), p.bytes))
                .collect(),
        }
    }
}

/// Estimated against measured training memory, in the evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryReport {
    /// The estimate the run was admitted with.
    pub estimated_bytes: u64,
    /// The most resident memory training added over what the process held before it; absent
    /// where it cannot be read (no `/proc`, or training on a GPU, whose memory this is not).
    pub measured_bytes: Option<u64>,
    /// The estimate by part.
    pub parts: Vec<(String, u64)>,
}

/// `512 B`, `3.4 MB`, `61.2 GB` (powers of 1000, as `memory_limit` reads `GB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_describe_largest_first_and_name_the_largest_part() {
        let mut e = MemoryEstimate::new(false);
        e.floats("parameters", 1e6, &["hidden"]);
        e.floats("attention maps", 5e9, &["max_seq_len", "batch_size"]);
        e.floats("nothing", 0.0, &[]);
        assert_eq!(e.total(), 4_000_000 + 20_000_000_000);
        assert_eq!(e.largest().unwrap().settings[0], "max_seq_len");
        assert_eq!(e.describe(), "attention maps 20.0 GB, parameters 4.0 MB");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }
}
