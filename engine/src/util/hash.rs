//! Hashes that are the same in every process and build (never the standard library's randomly
//! keyed one): page fingerprints that any replica checks, and experiment assignments that keep a
//! user in one variant on every server.

/// 64-bit FNV-1a.
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A point in [0, 1) for `key` under `salt`, uniform over keys: FNV-1a of both, then
/// SplitMix64's finaliser, whose avalanche FNV lacks (ids that differ in their last character
/// would otherwise land close together).
pub fn unit(salt: &str, key: &str) -> f64 {
    let mut h = Fnv::default();
    h.write(salt.as_bytes());
    h.write(&[0]);
    h.write(key.as_bytes());
    let mut z = h.0;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_stable_and_spread() {
        // Fixed values (computed independently): a change of the function would move every
        // user of a running experiment to another variant.
        assert_eq!(unit("exp", "u1"), 0.5597288111001969);
        assert_eq!(unit("exp", "u2"), 0.9495660291462916);
        assert_ne!(unit("exp", "u1"), unit("other", "u1"));
        let mut buckets = [0usize; 10];
        for i in 0..100_000 {
            buckets[(unit("exp", &format!("user{i}")) * 10.0) as usize] += 1;
        }
        for b in buckets {
            assert!((9_500..10_500).contains(&b), "{buckets:?}");
        }
    }
}
