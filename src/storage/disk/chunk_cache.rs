//! A bounded cache of the encoded bytes of block chunks, shared by every
//! scan of the disk engine (`super::scan`).
//!
//! Without it a query reads every chunk it touches with one `pread` and
//! checks its CRC, and the next query does it again. The cache keeps the
//! checked bytes up to a byte budget (`DiskConfig::chunk_cache_bytes`,
//! the `--chunk-cache-bytes` flag of `tidemark serve`) and evicts with the
//! CLOCK policy: a chunk read since the hand last passed it gets a second
//! chance. It keeps encoded bytes, not decoded points: decoded points take
//! about ten times the memory, and reading them back from memory cost as
//! much CPU time as decoding in a measurement on 10M points (see
//! BENCHMARKS.md).
//!
//! Blocks are immutable and a block id is never reused while the engine
//! runs, so an entry never goes stale. Entries of blocks that compaction,
//! retention or a deletion removed are never read again and are the first
//! to be evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use super::block::BlockId;

/// Fixed cost of one entry besides its bytes: key, ring slot, map slot
/// and allocation headers, an estimate.
const ENTRY_BYTES: usize = 128;

/// A chunk's place: its block and its offset in the block file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub block: BlockId,
    pub offset: u64,
}

struct Entry {
    chunk: Arc<[u8]>,
    bytes: usize,
    /// Set by a lookup, cleared when the CLOCK hand passes.
    referenced: bool,
}

#[derive(Default)]
struct CacheState {
    entries: HashMap<ChunkKey, Entry>,
    /// The CLOCK ring, front first; contains each key of `entries` once.
    ring: VecDeque<ChunkKey>,
    used_bytes: usize,
}

/// Encoded chunks up to a byte budget. A budget of 0 disables the cache.
pub struct ChunkCache {
    capacity_bytes: usize,
    /// Guards the entries, the ring and the byte count; held only for a
    /// lookup or an insertion, never while a chunk is read or decoded.
    state: Mutex<CacheState>,
}

impl ChunkCache {
    pub fn new(capacity_bytes: usize) -> ChunkCache {
        ChunkCache {
            capacity_bytes,
            state: Mutex::new(CacheState::default()),
        }
    }

    pub fn get(&self, key: ChunkKey) -> Option<Arc<[u8]>> {
        if self.capacity_bytes == 0 {
            return None;
        }
        let mut state = self.state.lock();
        let entry = state.entries.get_mut(&key)?;
        entry.referenced = true;
        Some(entry.chunk.clone())
    }

    /// Adds a chunk's bytes, evicting others until they fit. A chunk that
    /// another thread added first is kept as it is. Bytes larger than the
    /// whole budget are not cached.
    pub fn insert(&self, key: ChunkKey, chunk: Arc<[u8]>) {
        let bytes = ENTRY_BYTES + chunk.len();
        if bytes > self.capacity_bytes {
            return;
        }
        let mut state = self.state.lock();
        if state.entries.contains_key(&key) {
            return;
        }
        while state.used_bytes + bytes > self.capacity_bytes {
            let Some(candidate) = state.ring.pop_front() else {
                break;
            };
            let entry = state
                .entries
                .get_mut(&candidate)
                .expect("every key in the ring has an entry");
            if entry.referenced {
                entry.referenced = false;
                state.ring.push_back(candidate);
                continue;
            }
            let evicted = state
                .entries
                .remove(&candidate)
                .expect("the entry was just found");
            state.used_bytes -= evicted.bytes;
        }
        state.entries.insert(
            key,
            Entry {
                chunk,
                bytes,
                referenced: false,
            },
        );
        state.ring.push_back(key);
        state.used_bytes += bytes;
    }

    /// Estimated bytes of the cached chunks and their entries; at most the
    /// budget.
    pub fn used_bytes(&self) -> usize {
        self.state.lock().used_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of a chunk whose entry takes `ENTRY_BYTES + len`.
    fn chunk(len: usize, fill: u8) -> Arc<[u8]> {
        vec![fill; len].into()
    }

    fn key(block: u64, offset: u64) -> ChunkKey {
        ChunkKey {
            block: BlockId(block),
            offset,
        }
    }

    #[test]
    fn cache_stays_within_budget() {
        let entry = ENTRY_BYTES + 100;
        let cache = ChunkCache::new(3 * entry);
        for offset in 0..10 {
            cache.insert(key(1, offset), chunk(100, offset as u8));
            assert!(cache.used_bytes() <= 3 * entry, "after chunk {offset}");
        }
        assert_eq!(cache.used_bytes(), 3 * entry);
        assert!(cache.get(key(1, 0)).is_none());
        assert_eq!(cache.get(key(1, 9)).unwrap()[0], 9);
    }

    #[test]
    fn referenced_chunk_survives_eviction() {
        let cache = ChunkCache::new(2 * (ENTRY_BYTES + 100));
        cache.insert(key(1, 0), chunk(100, 0));
        cache.insert(key(1, 1), chunk(100, 1));
        assert!(cache.get(key(1, 0)).is_some());
        cache.insert(key(1, 2), chunk(100, 2));

        assert!(cache.get(key(1, 0)).is_some());
        assert!(cache.get(key(1, 1)).is_none());
        assert!(cache.get(key(1, 2)).is_some());
    }

    #[test]
    fn oversized_and_disabled_caches_keep_nothing() {
        let small = ChunkCache::new(ENTRY_BYTES + 99);
        small.insert(key(1, 0), chunk(100, 0));
        assert!(small.get(key(1, 0)).is_none());
        assert_eq!(small.used_bytes(), 0);

        let disabled = ChunkCache::new(0);
        disabled.insert(key(1, 0), chunk(1, 0));
        assert!(disabled.get(key(1, 0)).is_none());
        assert_eq!(disabled.used_bytes(), 0);
    }

    #[test]
    fn second_insert_keeps_first_copy() {
        let cache = ChunkCache::new(1 << 20);
        cache.insert(key(2, 8), chunk(10, 1));
        cache.insert(key(2, 8), chunk(10, 2));
        assert_eq!(cache.get(key(2, 8)).unwrap()[0], 1);
        assert_eq!(cache.used_bytes(), ENTRY_BYTES + 10);
    }
}
