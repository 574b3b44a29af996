//! Limits and errors: AllocError past the limit and on failed mappings, recovery, and
//! ConfigError naming the bad setting.

use crate::util::{KIB, MIB, all_bytes, append_filled, check, limited};
use allocator_api2::vec::Vec;
use perfloc::{MIN_BLOCK_SIZE, Pool};
use std::alloc::Layout;

#[test]
fn past_the_limit_allocation_fails_and_the_pool_recovers_when_memory_comes_back() {
    let pool = limited(MIB);
    let chunks: std::vec::Vec<_> =
        std::iter::from_fn(|| pool.try_chunk().ok()).take(10_000).collect();
    // 64 + 128 + 256 + 512 KiB = 960 KiB mapped; the next regular top chunk (1 MiB) would
    // pass the limit, so the pool maps the largest that fits (64 KiB) and then stops.
    assert_eq!(pool.stats().mapped_bytes, MIB);
    assert_eq!(chunks.len(), MIB / (4 * KIB));
    assert!(pool.try_chunk().is_err());
    assert!(pool.stats().mapped_bytes <= MIB);
    check(&pool);
    drop(chunks);
    let chunk = pool.try_chunk().expect("memory given back is usable again");
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    assert!(v.try_reserve(2 * MIB).is_err(), "Vec::try_reserve reports the limit");
    assert!(chunk.try_alloc([0u8; 64 * KIB]).is_ok());
    v.try_reserve(256 * KIB).expect("within the limit it works");
    // What `v.extend(repeat_n(1, 256 * KIB))` does (no allocator call: the room is
    // reserved), copied in one go, so Miri too fills all that was reserved.
    append_filled(&mut v, 1, 256 * KIB);
    assert!(all_bytes(&v, 1));
    assert_eq!(pool.stats().mmap_calls, 5, "no mapping was attempted past the limit");
    check(&pool);
}

#[test]
fn a_failed_mapping_is_an_alloc_error_and_the_pool_keeps_working() {
    let pool = Pool::builder().first_top_chunk_size(64 * KIB).build().unwrap();
    let chunk = pool.chunk();
    // 128 TiB, the whole user address space: the kernel refuses the mapping.
    let huge = Layout::from_size_align(1 << 47, 8).unwrap();
    assert!(chunk.try_alloc_layout(huge).is_err());
    let stats = pool.stats();
    assert_eq!(stats.mmap_calls, 2, "one refused mapping");
    assert_eq!(stats.top_chunks, 1, "nothing kept from the failure");
    assert_eq!(*chunk.alloc(5u32), 5);
    let other = pool.chunk();
    assert_eq!(*other.alloc(6u32), 6);
    check(&pool);
}

#[test]
fn a_refused_big_top_chunk_falls_back_to_one_just_big_enough() {
    // The first top chunk (128 TiB) is refused by the kernel; the pool maps the smallest
    // top chunk that holds the block instead.
    let pool = Pool::builder().first_top_chunk_size(1 << 47).build().unwrap();
    let chunk = pool.try_chunk().expect("fallback mapping");
    assert_eq!(*chunk.alloc(1u8), 1);
    assert_eq!(pool.stats().mmap_calls, 2);
    assert!(pool.top_chunk_sizes()[0] < 1 << 47);
}

#[test]
fn requests_near_isize_max_are_errors() {
    let pool = Pool::new();
    let chunk = pool.chunk();
    for (size, align) in [
        (isize::MAX as usize, 1),
        (isize::MAX as usize - 4095, 4096),
        (1, 1 << 62),
        (1 << 62, 1 << 62),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        assert!(chunk.try_alloc_layout(layout).is_err(), "size {size} align {align}");
    }
    let mut v: Vec<u64, _> = Vec::new_in(&chunk);
    assert!(v.try_reserve(isize::MAX as usize / 8 - 10).is_err(), "reaches the allocator");
    assert_eq!(*chunk.alloc(3u8), 3);
    check(&pool);
}

#[test]
fn a_failed_over_aligned_request_does_not_grow_the_chunk() {
    let pool = limited(MIB);
    let chunk = pool.chunk();
    chunk.alloc(1u64);
    let memory = |p: &Pool| {
        let s = p.stats();
        (s.mapped_bytes, s.in_use_bytes, s.mmap_calls, s.top_chunk_stats)
    };
    let before = (chunk.stats(), memory(&pool));
    let layout = Layout::from_size_align(64, 1 << 21).unwrap();
    assert!(chunk.try_alloc_layout(layout).is_err());
    assert_eq!((chunk.stats(), memory(&pool)), before);
}

#[test]
fn bad_settings_are_config_errors_that_name_the_setting() {
    let cases = [
        (Pool::builder().first_top_chunk_size(0), "first_top_chunk_size", "zero"),
        (Pool::builder().first_top_chunk_size(3 << 20), "first_top_chunk_size", "power of two"),
        (Pool::builder().first_top_chunk_size(1024), "first_top_chunk_size", "minimum"),
        (Pool::builder().first_block_size(0), "first_block_size", "zero"),
        (Pool::builder().first_block_size(5000), "first_block_size", "power of two"),
        (Pool::builder().first_block_size(MIN_BLOCK_SIZE / 2), "first_block_size", "minimum"),
        (Pool::builder().first_block_size(4 << 20), "first_block_size", "first_top_chunk_size"),
        (Pool::builder().first_top_chunk_size(1 << 63), "first_top_chunk_size", "maximum"),
        (Pool::builder().limit(0), "limit", "first_top_chunk_size"),
        (Pool::builder().limit(512 * KIB), "limit", "smaller than first_top_chunk_size"),
    ];
    for (builder, setting, words) in cases {
        let err = builder.build().expect_err(setting);
        assert_eq!(err.setting(), setting);
        let message = err.to_string();
        assert!(message.contains(setting) && message.contains(words), "{message}");
        let _: &dyn std::error::Error = &err;
    }
    let pool: Pool = Pool::builder().first_block_size(MIN_BLOCK_SIZE).try_into().unwrap();
    assert_eq!(pool.chunk().stats().capacity_bytes, MIN_BLOCK_SIZE);
}
