//! Maps keyed by a block or tree-node index, or by a handle or request id, which
//! replication updates for every block. SipHash (the std default) was a noticeable share of
//! a replicated block's cost; an integer key needs only a good mix. The mix is keyed per
//! process, so a peer choosing which indexes we look up cannot predict collisions.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A map keyed by integers (handles, request ids, (handle, index) pairs).
pub type IntMap<K, V> = HashMap<K, V, IndexHash>;

pub type IndexMap<V> = IntMap<u64, V>;

#[derive(Clone, Copy)]
pub struct IndexHash {
    key: u64,
}

impl Default for IndexHash {
    fn default() -> Self {
        static KEY: OnceLock<u64> = OnceLock::new();
        let key = *KEY.get_or_init(|| {
            // RandomState is seeded from the OS once per process
            std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
        });
        IndexHash { key }
    }
}

impl BuildHasher for IndexHash {
    type Hasher = IndexHasher;

    fn build_hasher(&self) -> IndexHasher {
        IndexHasher { state: self.key }
    }
}

pub struct IndexHasher {
    state: u64,
}

impl Hasher for IndexHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = mix(self.state ^ n);
    }

    // integer keys mix once each, not once per byte
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// The 64-bit finaliser of MurmurHash3: every input bit affects every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_indexes_spread_over_buckets() {
        let h = IndexHash::default();
        // the low 13 bits pick a bucket in a table of 8192: consecutive indexes must not
        // pile into a few of them
        let mut buckets = std::collections::HashSet::new();
        for i in 0..8192u64 {
            buckets.insert(h.hash_one(i) & 8191);
        }
        assert!(buckets.len() > 5000, "{} buckets used", buckets.len());
        let mut map: IndexMap<u64> = IndexMap::default();
        for i in 0..1000 {
            map.insert(i * 2, i);
        }
        assert_eq!(map.get(&500), Some(&250));
        assert_eq!(map.get(&501), None);
    }
}
