//! Pool and chunk figures and their reports.

use crate::util::{KIB, small_pool};

#[test]
fn pool_stats_follow_chunks_and_top_chunks() {
    let pool = small_pool();
    assert_eq!(pool.stats(), perfloc::PoolStats::default(), "an unused pool has mapped nothing");
    let a = pool.chunk();
    let b = pool.chunk();
    let stats = pool.stats();
    assert_eq!(stats.top_chunks, 1);
    assert_eq!(stats.mapped_bytes, 64 * KIB);
    assert_eq!(stats.in_use_bytes, 8 * KIB);
    assert_eq!(stats.free_bytes, 56 * KIB);
    assert_eq!(stats.live_chunks, 2);
    assert_eq!((stats.mmap_calls, stats.munmap_calls), (1, 0));
    assert_eq!(pool.top_chunk_sizes(), [64 * KIB]);
    drop(a);
    assert_eq!((pool.stats().live_chunks, pool.stats().in_use_bytes), (1, 4 * KIB));
    drop(b);
}

#[test]
fn chunk_stats_count_blocks_capacity_and_use() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc_slice_copy(&[0u8; 1000]);
    chunk.alloc_slice_copy(&[0u8; 3096]); // does not fit in the rest of the first block
    let stats = chunk.stats();
    assert_eq!(stats.blocks, 2);
    assert_eq!(stats.capacity_bytes, 4 * KIB + 8 * KIB);
    assert_eq!(stats.used_bytes, 4096);
    assert_eq!(chunk.allocated_bytes(), stats.capacity_bytes);
    chunk.alloc_slice_copy(&[0u8; 100 * KIB]);
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.large_blocks), (3, 1));
    assert_eq!(stats.used_bytes, 4096 + 100 * KIB + 40, "plus the large block's record");
}

#[test]
fn reports_are_readable() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc_slice_copy(&[0u8; 6000]);
    let report = pool.stats().to_string();
    assert!(report.contains("perfloc pool: 64.0 KiB mapped in 1 top chunk"), "{report}");
    assert!(report.contains("in use 12.0 KiB by 1 live chunk; free 52.0 KiB"), "{report}");
    assert!(report.contains("1 mmap, 0 munmap, 0 madvise"), "{report}");
    let report = chunk.stats().to_string();
    assert!(report.contains("used of 12.0 KiB in 2 blocks"), "{report}");
    assert!(format!("{chunk:?}").contains("blocks: 2"));
}
