//! The machine's memory and this process's resident set, from `/proc` (Linux). Elsewhere every
//! reading is `None` and callers fall back to stated defaults.
//!
//! Why the peak is reset rather than read once: `VmHWM` is the high-water mark of the process's
//! whole life, so a peak read after training would also hold the fetch's. Writing `5` to
//! `/proc/self/clear_refs` (Linux 4.0+) restarts it at the current resident set, which makes a
//! stage's own peak measurable.

use std::fs;

/// Total memory of the machine in bytes (`MemTotal`).
pub fn machine_total() -> Option<u64> {
    kib_field(&fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")
}

/// Half of the machine's memory, or 4 GiB where it cannot be read: the default budget of a
/// fetch and of a training run (the dataset a fetch leaves is held while training).
pub fn default_budget() -> u64 {
    machine_total().map(|b| b / 2).unwrap_or(4 << 30)
}

/// This process's resident set now (`VmRSS`).
pub fn resident() -> Option<u64> {
    status_field("VmRSS:")
}

/// Measures the most resident memory a stage adds over what the process held when it began.
pub struct PeakMeter {
    start: Option<u64>,
}

impl PeakMeter {
    /// Restarts the process's high-water mark at its current resident set. Without `/proc` (or
    /// where `clear_refs` is not writable) the meter measures nothing.
    pub fn start() -> Self {
        let reset = fs::write("/proc/self/clear_refs", "5").is_ok();
        Self {
            start: if reset { resident() } else { None },
        }
    }

    /// The peak resident set since [`Self::start`], less the resident set then: what the stage
    /// needed on top of what was already held. Other threads of the process count too.
    pub fn finish(self) -> Option<u64> {
        let start = self.start?;
        Some(status_field("VmHWM:")?.saturating_sub(start))
    }
}

fn status_field(name: &str) -> Option<u64> {
    kib_field(&fs::read_to_string("/proc/self/status").ok()?, name)
}

/// The `name  1234 kB` line of a `/proc` table, in bytes.
fn kib_field(table: &str, name: &str) -> Option<u64> {
    let line = table.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_fields_in_bytes() {
        let t = "MemTotal:       24000000 kB\nMemFree:  1 kB\n";
        assert_eq!(kib_field(t, "MemTotal:"), Some(24_000_000 * 1024));
        assert_eq!(kib_field(t, "MemFree:"), Some(1024));
        assert_eq!(kib_field(t, "Swap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stage_that_touches_memory_measures_at_least_most_of_it() {
        let meter = PeakMeter::start();
        let mut block = vec![1u8; 64 << 20];
        // Touch every page so that it is resident, then keep it alive past the reading.
        for i in (0..block.len()).step_by(4096) {
            block[i] = (i % 251) as u8;
        }
        let peak = meter.finish();
        assert!(block.iter().step_by(4096).any(|&b| b > 1));
        if let Some(peak) = peak {
            assert!(peak >= 48 << 20, "measured {peak} bytes for a 64 MiB stage");
        }
    }
}
