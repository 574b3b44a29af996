//! Per-chunk limits: past its limit a chunk's allocations fail with `AllocError`, while the
//! pool and every other chunk go on; the panicking methods say which limit was hit.

use crate::util::{KIB, MIB, append, append_filled, check, intact, limited, patterned, scaled};
use allocator_api2::vec::Vec;
use perfloc::Pool;
use std::alloc::Layout;

fn pool_with_chunk_limit(limit: usize) -> Pool {
    Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .chunk_limit(limit)
        .build()
        .expect("valid settings")
}

/// Tries to allocate `len` bytes.
fn try_bytes<K: perfloc::BumpState>(
    chunk: &perfloc::ProcessChunk<'_, K>,
    len: usize,
) -> Result<(), perfloc::AllocError> {
    chunk.try_alloc_layout(Layout::array::<u8>(len).unwrap()).map(drop)
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn past_its_limit_a_chunk_fails_alone_and_keeps_working() {
    let pool = pool_with_chunk_limit(256 * KIB);
    let greedy = pool.chunk();
    let kept = patterned(&greedy, 1000, 1);
    let mut v: Vec<u8, _> = Vec::new_in(&greedy);
    assert!(v.try_reserve(300 * KIB).is_err(), "past the chunk's limit");
    assert!(greedy.try_alloc_layout(Layout::array::<u8>(MIB).unwrap()).is_err());
    let stats = greedy.stats();
    assert_eq!(stats.limit, Some(256 * KIB));
    assert!(stats.capacity_bytes <= 256 * KIB && stats.peak_bytes <= 256 * KIB, "{stats:?}");
    // Within the limit the same chunk still works, and what it held is intact.
    v.try_reserve(100 * KIB).expect("within the limit");
    append_filled(&mut v, 7, 100 * KIB);
    assert!(intact(kept, 1));
    // Another chunk of the pool is not affected by the first one's refusals.
    let other = pool.chunk();
    assert_eq!(other.alloc_slice_copy(&[1u8; 200 * KIB]).len(), 200 * KIB);
    assert!(pool.stats().in_use_bytes > 256 * KIB, "the pool itself has no limit");
    check(&pool);
}

#[test]
fn a_successor_is_cut_down_to_fit_the_limit() {
    // First block 4 KiB; the next successor would be 8 KiB, past a 10 KiB limit: the chunk
    // takes a 4 KiB one instead, and the limit is never passed.
    let pool = pool_with_chunk_limit(10 * KIB);
    let chunk = pool.chunk();
    let mut taken = 0;
    while chunk.try_alloc([0u8; 512]).is_ok() {
        taken += 512;
    }
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.capacity_bytes), (2, 8 * KIB), "{stats:?}");
    assert!(taken > 6 * KIB, "the second block was used: {taken}");
    assert_eq!(stats.peak_bytes, 8 * KIB);
    check(&pool);
}

#[test]
fn children_count_against_their_own_limit() {
    let pool = pool_with_chunk_limit(64 * KIB);
    let parent = pool.chunk();
    patterned(&parent, 20 * KIB, 0); // a 20 KiB dedicated block: 24 KiB held
    assert!(try_bytes(&parent, 44 * KIB).is_err());
    assert!(try_bytes(&parent, 40 * KIB).is_ok(), "whole pages: 64 KiB held");
    let child = parent.child();
    assert_eq!(child.limit(), Some(64 * KIB));
    assert_eq!(child.alloc_slice_copy(&[2u8; 20 * KIB]).len(), 20 * KIB);
    child.set_limit(Some(8 * KIB));
    assert!(try_bytes(&child, 8 * KIB).is_err());
    assert_eq!(parent.limit(), Some(64 * KIB), "the parent's limit did not change");
}

#[test]
fn a_lowered_limit_refuses_new_blocks_only_and_a_lifted_one_admits_them() {
    let pool = Pool::new();
    let chunk = pool.chunk();
    let kept = patterned(&chunk, 100 * KIB, 3);
    chunk.set_limit(Some(32 * KIB)); // below what the chunk holds
    assert!(try_bytes(&chunk, 50 * KIB).is_err());
    assert!(intact(kept, 3));
    assert!(chunk.try_alloc(1u8).is_ok(), "room left in the current block is still usable");
    chunk.set_limit(None);
    assert_eq!(chunk.limit(), None);
    assert!(try_bytes(&chunk, 50 * KIB).is_ok());
}

#[test]
fn a_vector_growing_in_its_large_block_stops_at_the_limit_intact() {
    let limit = scaled(4 * MIB, 512 * KIB);
    let pool = pool_with_chunk_limit(limit);
    let chunk = pool.chunk();
    let piece: std::vec::Vec<u8> = (0..4096).map(|i| (i % 251) as u8).collect();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    // Appended 4 KiB at a time (one bulk copy each: cheap under Miri too); past 128 KiB
    // the vector grows in a large block that extends in place, each extension admitted.
    while v.try_reserve(piece.len()).is_ok() {
        append(&mut v, &piece);
        assert!(v.len() <= 8 * MIB, "the limit never stopped it");
    }
    assert!(v.len() >= limit / 4 && v.len() <= limit, "stopped at {}", v.len());
    assert!(v.chunks(piece.len()).all(|part| part == &piece[..]), "the data is intact");
    assert!(chunk.stats().peak_bytes <= limit);
    check(&pool);
}

#[test]
fn sync_chunk_threads_never_take_it_past_its_limit() {
    let pool = pool_with_chunk_limit(512 * KIB);
    let chunk = pool.sync_chunk();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| while chunk.try_alloc([0u8; 3000]).is_ok() {});
        }
    });
    let stats = chunk.stats();
    assert!(stats.peak_bytes <= 512 * KIB && stats.capacity_bytes > 256 * KIB, "{stats:?}");
    check(&pool);
}

#[test]
fn the_panic_says_which_limit_was_hit_with_the_figures() {
    let pool = pool_with_chunk_limit(64 * KIB);
    let chunk = pool.chunk();
    let message = panic_message(|| {
        chunk.alloc_slice_copy(&[0u8; 100 * KIB]);
    });
    assert!(message.contains("chunk limit") && message.contains("65536"), "{message}");
    assert!(message.contains("102400 bytes"), "names the allocation: {message}");

    let pool = limited(256 * KIB);
    let chunk = pool.chunk();
    let message = panic_message(|| {
        chunk.alloc_slice_copy(&[0u8; 300 * KIB]);
    });
    assert!(message.contains("pool's limit of 262144 bytes"), "{message}");

    let pool = Pool::new();
    let chunk = pool.chunk();
    let message = panic_message(|| {
        chunk.alloc_layout(Layout::from_size_align(1 << 46, 8).unwrap());
    });
    assert!(message.contains("the OS refused"), "{message}");
    assert_eq!(*chunk.alloc(5u8), 5, "the chunk works after each refusal");
}

#[test]
fn a_chunk_limit_below_the_first_block_is_a_config_error() {
    let err = Pool::builder().first_block_size(16 * KIB).chunk_limit(8 * KIB).build().unwrap_err();
    assert_eq!(err.setting(), "chunk_limit");
    assert!(err.to_string().contains("first_block_size"), "{err}");
}
