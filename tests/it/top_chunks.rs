//! Top chunks: doubling, sizing for huge requests, reuse without system calls.

use crate::util::{KIB, MIB, check, fill, intact, scaled, small_pool};

#[test]
fn each_new_top_chunk_is_twice_the_last() {
    let pool = small_pool();
    assert!(pool.top_chunk_sizes().is_empty(), "nothing is mapped before the first chunk");
    // 4 KiB first blocks: 16 fit in the first 64 KiB top chunk, 32 in the next, ...
    let chunks: Vec<_> = (0..16 + 32 + 64 + 1).map(|_| pool.chunk()).collect();
    assert_eq!(pool.top_chunk_sizes(), [64 * KIB, 128 * KIB, 256 * KIB, 512 * KIB]);
    let stats = pool.stats();
    assert_eq!(stats.top_chunks, 4);
    assert_eq!(stats.mapped_bytes, (64 + 128 + 256 + 512) * KIB);
    assert_eq!(stats.mmap_calls, 4);
    assert_eq!(stats.in_use_bytes, chunks.len() * 4 * KIB);
    check(&pool);
}

#[test]
fn a_huge_request_gets_its_own_top_chunk_without_inflating_later_ones() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let huge = chunk.alloc_slice_copy(&vec![0u8; 4 * MIB]);
    fill(huge, 3);
    assert_eq!(pool.top_chunk_sizes(), [64 * KIB, 4 * MIB]);
    // The regular sequence carries on (64 KiB, 128 KiB taken by the huge request, 256 KiB):
    // it doubles with every mapping but never from the huge top chunk's size.
    let others: Vec<_> = (0..16).map(|_| pool.chunk()).collect();
    assert_eq!(pool.top_chunk_sizes(), [64 * KIB, 4 * MIB, 256 * KIB]);
    assert!(intact(huge, 3));
    drop(others);
    check(&pool);
}

#[test]
fn a_request_larger_than_the_next_top_chunk_maps_a_top_chunk_big_enough() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let layout = std::alloc::Layout::from_size_align(200 * KIB, 8).unwrap();
    let ptr = chunk.try_alloc_layout(layout).unwrap();
    assert!(pool.top_chunk_sizes().contains(&(256 * KIB)));
    // SAFETY: `ptr` is a fresh allocation of `layout` in `chunk`.
    unsafe { ptr.as_ptr().write_bytes(0xEE, layout.size()) };
}

#[test]
fn blocks_given_back_are_reused_without_any_system_call() {
    let pool = small_pool();
    // Warm up: the largest working set this test will use.
    for _ in 0..scaled(10, 2) {
        let chunks: Vec<_> = (0..40).map(|_| pool.chunk()).collect();
        drop(chunks);
    }
    let warm = pool.stats();
    // Under Miri fewer rounds, in larger steps over the same lengths (0..2000 words).
    let rounds = scaled(10_000usize, 50);
    let words: Vec<u32> = (0..2000).collect();
    for round in 0..rounds {
        let len = round * (10_000 / rounds) % 2000;
        let chunk = pool.chunk();
        let v = chunk.alloc_slice_copy(&words[..len]);
        assert_eq!(v.len(), len);
    }
    let after = pool.stats();
    assert_eq!(after.mmap_calls, warm.mmap_calls, "no mmap in steady state");
    assert_eq!(after.munmap_calls, warm.munmap_calls, "no munmap in steady state");
    assert_eq!(after.mapped_bytes, warm.mapped_bytes);
    assert_eq!(after.in_use_bytes, 0);
    check(&pool);
}
