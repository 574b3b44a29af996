//! [`ChunkStats`]: where a chunk's memory went, and the chunk's `Debug`.
//!
//! Read-only: the chain's headers and the large list are walked, nothing changes. For a
//! [`SyncChunk`] that other threads are allocating from, the figures are a snapshot that
//! may race (cursors move, freed bytes are counted without a lock).
//!
//! [`SyncChunk`]: crate::SyncChunk

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use super::{BumpState, ProcessChunk, data_start};
use crate::stats::ChunkStats;

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    /// Figures of this chunk: blocks, their capacity and the bytes handed out. For a
    /// `SyncChunk` that other threads are allocating from, a snapshot that may be stale.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// chunk.alloc([0u64; 4]);
    /// assert_eq!(chunk.stats().used_bytes, 32);
    /// ```
    pub fn stats(&self) -> ChunkStats {
        let mut stats = ChunkStats::default();
        let mut cur = Some(self.first);
        while let Some(header) = cur {
            // SAFETY: chain blocks have initialised headers (invariant 1), published before
            // the link to them (`Release`, acquired here).
            let h = unsafe { header.as_ref() };
            let cursor = self.state.cursor_of(header);
            stats.blocks += 1;
            stats.capacity_bytes += h.size;
            stats.used_bytes += cursor - data_start(header).addr().get();
            stats.tail_bytes += header.addr().get() + h.size - cursor;
            cur = NonNull::new(h.next.load(Ordering::Acquire));
        }
        // After a rewind past bytes freed, the count may exceed what is left.
        stats.freed_bytes = self.state.freed().min(stats.used_bytes);
        self.state.slow(|slow| {
            stats.limit = (slow.limit != usize::MAX).then_some(slow.limit);
            stats.peak_bytes = slow.peak;
            let mut node = slow.large;
            while let Some(n) = node {
                // SAFETY: large nodes are initialised (invariant 3).
                let n = unsafe { n.as_ref() };
                stats.blocks += 1;
                stats.dedicated_blocks += 1;
                stats.dedicated_bytes += n.block.size;
                stats.capacity_bytes += n.block.size;
                stats.used_bytes += n.used;
                node = n.next;
            }
            // Invariant 5; a `SyncChunk`'s figures are a snapshot that may race.
            debug_assert!(K::SHARED || stats.capacity_bytes == slow.held, "held {}", slow.held);
        });
        stats
    }

    /// Total capacity of the chunk's blocks in bytes (bumpalo's name for
    /// [`ChunkStats::capacity_bytes`]).
    ///
    /// ```
    /// assert!(perfloc::sync_chunk().allocated_bytes() >= perfloc::MIN_BLOCK_SIZE);
    /// ```
    pub fn allocated_bytes(&self) -> usize {
        self.stats().capacity_bytes
    }
}

impl<K: BumpState> fmt::Debug for ProcessChunk<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME).field("stats", &self.stats()).finish_non_exhaustive()
    }
}
