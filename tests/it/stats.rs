//! Pool and chunk figures and their reports.

use crate::util::{KIB, MIB, check, scaled, small_pool};
use perfloc::Pool;
use std::alloc::Layout;

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
    assert_eq!(stats.capacity_bytes, 4 * KIB + 4 * KIB, "the first successor");
    assert_eq!(stats.used_bytes, 4096);
    assert_eq!(chunk.allocated_bytes(), stats.capacity_bytes);
    chunk.alloc_slice_copy(&[0u8; 100 * KIB]);
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.dedicated_blocks), (3, 1));
    assert_eq!(stats.used_bytes, 4096 + 100 * KIB + 40, "plus the large block's record");
}

#[test]
fn reports_are_readable() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc_slice_copy(&[0u8; 6000]);
    let report = pool.stats().to_string();
    assert!(report.contains("perfloc pool: 64.0 KiB mapped in 1 top chunk"), "{report}");
    assert!(report.contains("in use 12.0 KiB ("), "{report}");
    assert!(report.contains("%) by 1 live chunk; free 52.0 KiB"), "{report}");
    assert!(report.contains("1 mmap, 0 munmap, 0 madvise"), "{report}");
    let report = chunk.stats().to_string();
    assert!(report.contains("12.0 KiB in 2 blocks (1 dedicated, 8.0 KiB)"), "{report}");
    assert!(format!("{chunk:?}").contains("blocks: 2"));
}

/// Whether the pool asks the OS which pages are resident (`mincore`): the condition on
/// `resident_runs` in `src/os.rs`. Elsewhere all of `in_use_bytes` counts as resident.
const MINCORE: bool = cfg!(all(not(miri), any(target_os = "linux", target_os = "android")));

#[test]
fn pool_stats_tell_how_much_of_in_use_is_resident() {
    // A new pool: every page it lends was mapped for it and never touched before.
    let pool = Pool::builder().first_top_chunk_size(scaled(64 * MIB, 4 * MIB)).build().unwrap();
    let size = scaled(MIB, 64 * KIB);
    let written = pool.chunk();
    let layout = Layout::from_size_align(size, 4096).unwrap();
    // SAFETY: a fresh allocation of `size` bytes, written whole.
    unsafe { written.alloc_layout(layout).as_ptr().write_bytes(0xA5, size) };
    let before = pool.stats();
    assert!(before.resident_in_use_bytes >= size, "every page written is resident\n{before}");
    assert!(before.resident_in_use_bytes <= before.in_use_bytes, "{before}");

    // A block never written: in use, but resident only where the chunk wrote its record
    // (or, with transparent huge pages, in the 2 MiB around that).
    let untouched = pool.chunk();
    untouched.alloc_layout(Layout::from_size_align(scaled(16 * MIB, 256 * KIB), 4096).unwrap());
    let after = pool.stats();
    let in_use = after.in_use_bytes - before.in_use_bytes;
    let resident = after.resident_in_use_bytes - before.resident_in_use_bytes;
    assert!(in_use >= scaled(16 * MIB, 256 * KIB), "{after}");
    if MINCORE {
        assert!(resident < in_use / 2, "{resident} of {in_use} new bytes resident\n{after}");
    } else {
        assert_eq!(after.resident_in_use_bytes, after.in_use_bytes, "all counts as resident");
    }
    let report = after.to_string();
    let share = after.resident_in_use_bytes as f64 * 100.0 / after.in_use_bytes as f64;
    assert!(report.contains(&format!("resident, {share:.0}%)")), "{report}");
    check(&pool);
    drop((written, untouched));
    assert_eq!(pool.stats().resident_in_use_bytes, 0, "nothing in use");
}

#[test]
fn pool_stats_tell_how_much_free_memory_stays_resident() {
    // Nothing goes back by itself: only `trim` gives free memory back.
    let pool = Pool::builder()
        .first_top_chunk_size(scaled(64 * MIB, 4 * MIB))
        .retain(0)
        .decay(std::time::Duration::MAX)
        .build()
        .unwrap();
    // A live chunk keeps the top chunk mapped through the trim below.
    let keeper = pool.chunk();
    let size = scaled(MIB, 64 * KIB);
    let written = pool.chunk();
    // SAFETY: a fresh allocation of `size` bytes, written whole.
    unsafe {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        written.alloc_layout(layout).as_ptr().write_bytes(0xA5, size);
    }
    let before = pool.stats();
    drop(written);
    let after = pool.stats();
    assert!(after.resident_free_bytes <= after.free_bytes, "{after}");
    if MINCORE {
        let freed = after.resident_free_bytes - before.resident_free_bytes;
        assert!(freed >= size, "the written pages stay resident once free\n{after}");
    } else {
        assert_eq!(after.resident_free_bytes, after.free_bytes, "all counts as resident");
    }
    let report = after.to_string();
    assert!(report.contains(" resident), of which "), "the free memory's share\n{report}");

    assert!(pool.trim() >= size);
    let trimmed = pool.stats();
    assert_eq!(trimmed.top_chunks, 1, "{trimmed}");
    if MINCORE {
        assert_eq!(trimmed.resident_free_bytes, 0, "trim purged every free page\n{trimmed}");
    } else {
        assert_eq!(trimmed.resident_free_bytes, trimmed.free_bytes, "{trimmed}");
    }
    check(&pool);
    drop(keeper);
}

#[test]
fn pool_stats_keep_the_peak_of_lent_memory() {
    let pool = small_pool();
    let size = scaled(MIB, 64 * KIB);
    let chunks: Vec<_> = (0..4)
        .map(|_| {
            let chunk = pool.chunk();
            chunk.alloc_layout(Layout::from_size_align(size, 8).unwrap());
            chunk
        })
        .collect();
    let busy = pool.stats();
    assert!(busy.peak_lent_bytes >= busy.in_use_bytes, "{busy}");
    assert!(busy.in_use_bytes >= 4 * size, "{busy}");
    drop(chunks);
    let idle = pool.stats();
    assert!(idle.in_use_bytes < size, "{idle}");
    assert_eq!(idle.peak_lent_bytes, busy.peak_lent_bytes, "the peak stays\n{idle}");
    assert!(idle.peak_lent_bytes <= idle.peak_mapped_bytes, "{idle}");
    let report = idle.to_string();
    assert!(report.contains(" lent at most)"), "{report}");
    check(&pool);
}
