//! Large blocks (one allocation in a block of its own): found by address whatever the
//! layout the caller passes, so they go back to the pool after any shrink, at every size
//! around the thresholds; `reset` keeps the largest block, large or not.

use crate::util::{KIB, MIB, check, limited, scaled, small_pool};
use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;
use perfloc::{Chunk, Pool};
use std::alloc::Layout;
use std::ptr::NonNull;

/// Iterations of the leak loops: enough to pass a small `limit` many times over.
const CYCLES: usize = if cfg!(miri) { 20 } else { 100 };

/// Allocates `layout` and a word after it, so the allocation is not the newest one.
fn alloc_not_newest(chunk: &Chunk<'_>, layout: Layout) -> NonNull<u8> {
    let ptr = chunk.alloc_layout(layout);
    chunk.alloc(0u64);
    ptr
}

#[test]
fn a_shrunk_large_vec_goes_back_to_the_pool_when_dropped() {
    // Each 1 MiB buffer needs a block of its own; if one were kept, the 4 MiB limit would
    // be hit after a few cycles.
    let pool = limited(4 * MIB);
    let chunk = pool.chunk();
    let base = pool.stats().in_use_bytes;
    for i in 0..CYCLES {
        let mut v: Vec<u8, _> = Vec::new_in(&chunk);
        v.try_reserve_exact(MIB).expect("within the limit");
        v.extend_from_slice(&[i as u8; 100]);
        chunk.alloc(0u64); // v is not the newest allocation
        v.shrink_to_fit();
        assert_eq!(v, [i as u8; 100]);
        drop(v);
        assert_eq!(chunk.stats().large_blocks, 0, "cycle {i}");
        assert!(pool.stats().in_use_bytes <= base + 8 * KIB, "cycle {i}: {}", pool.stats());
    }
    check(&pool);
}

#[test]
fn a_large_block_shrunk_to_any_size_goes_back_when_deallocated() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let size = scaled(600 * KIB, 60 * KIB);
    let old = Layout::from_size_align(size, 8).unwrap();
    for new_size in [size - 1, size / 2, 9 * KIB, 8 * KIB - 8, 4 * KIB, 64, 1, 0] {
        let p = alloc_not_newest(&chunk, old);
        assert_eq!(chunk.stats().large_blocks, 1);
        let new = Layout::from_size_align(new_size, 8).unwrap();
        // SAFETY: `p` is a live allocation of `old` in `chunk`; the shrunk one replaces it
        // and is given up at once.
        unsafe {
            p.as_ptr().write_bytes(7, new_size);
            let q = (&chunk).shrink(p, old, new).unwrap().cast::<u8>();
            assert!(std::slice::from_raw_parts(q.as_ptr(), new_size) == vec![7; new_size]);
            (&chunk).deallocate(q, new);
        }
        assert_eq!(chunk.stats().large_blocks, 0, "shrunk to {new_size}");
    }
    check(&pool);
}

/// A fresh chunk of `pool` (first block 4 KiB) whose next successor is `8 KiB << k`: each
/// of `k` allocations fills a new successor but for a little room.
fn chunk_with_successors(pool: &Pool, k: usize) -> Chunk<'_> {
    let chunk = pool.chunk();
    for j in 0..k {
        chunk.alloc_layout(Layout::from_size_align(((8 * KIB) << j) - 128, 8).unwrap());
    }
    assert_eq!(chunk.stats().large_blocks, 0);
    chunk
}

#[test]
fn large_allocations_around_the_thresholds_go_back_when_deallocated() {
    let pool = small_pool();
    let step = if cfg!(miri) { 40 } else { 8 };
    for k in 0..4 {
        // An allocation is large when it does not fit in the next successor, `8 KiB << k`
        // with its header: sizes just below and above that.
        let threshold = (8 * KIB) << k;
        for size in (threshold - 96..threshold + 96).step_by(step) {
            for align in [8, 64, 4096] {
                for shrink_to in [None, Some(size / 3), Some(0)] {
                    let chunk = chunk_with_successors(&pool, k);
                    let in_use = pool.stats().in_use_bytes;
                    let layout = Layout::from_size_align(size, align).unwrap();
                    let p = alloc_not_newest(&chunk, layout);
                    let large = chunk.stats().large_blocks;
                    // SAFETY: `p` is a live allocation of `layout`; a shrunk one replaces it;
                    // the last one is given up.
                    unsafe {
                        let (q, last) = match shrink_to {
                            Some(n) => {
                                let small = Layout::from_size_align(n, align).unwrap();
                                ((&chunk).shrink(p, layout, small).unwrap().cast(), small)
                            }
                            None => (p, layout),
                        };
                        (&chunk).deallocate(q, last);
                    }
                    let what = format!("size {size} align {align} shrunk to {shrink_to:?}");
                    assert_eq!(chunk.stats().large_blocks, 0, "{what}");
                    if large == 1 {
                        assert!(pool.stats().in_use_bytes <= in_use, "{what}");
                    }
                }
            }
        }
    }
    check(&pool);
}

#[test]
fn shrinking_to_zero_and_deallocating_keeps_nothing_mapped() {
    // An over-aligned large allocation, shrunk to nothing and freed, in a loop under a
    // limit that holds only a few of them.
    let pool = limited(16 * MIB);
    let chunk = pool.chunk();
    let big = Layout::from_size_align(MIB, MIB).unwrap();
    let empty = Layout::from_size_align(0, MIB).unwrap();
    for i in 0..CYCLES {
        let p = (&chunk).allocate(big).expect("within the limit").cast::<u8>();
        chunk.alloc(0u64);
        // SAFETY: `p` is a live allocation of `big`; the empty one replaces it and is given
        // up at once.
        unsafe {
            let q = (&chunk).shrink(p, big, empty).unwrap().cast::<u8>();
            assert_eq!(q.as_ptr() as usize % MIB, 0);
            (&chunk).deallocate(q, empty);
        }
        assert_eq!(chunk.stats().large_blocks, 0, "cycle {i}");
    }
    assert!(pool.stats().mapped_bytes <= 16 * MIB);
    check(&pool);
}

#[test]
fn a_shrunk_large_allocation_that_fits_the_current_block_moves_there() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::with_capacity_in(MIB, &chunk);
    v.extend_from_slice(b"request body");
    assert_eq!(chunk.stats().large_blocks, 1);
    v.shrink_to_fit();
    assert_eq!(chunk.stats().large_blocks, 0, "the block went back at once");
    assert_eq!(v, b"request body");
    assert!(pool.stats().in_use_bytes < 64 * KIB, "{}", pool.stats());
    check(&pool);
}

#[test]
fn reset_keeps_the_largest_block_even_a_large_one() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    chunk.alloc(1u64);
    chunk.alloc_layout(Layout::from_size_align(MIB, 8).unwrap()); // a 1 MiB block of its own
    assert_eq!(chunk.stats().large_blocks, 1);
    chunk.reset();
    let kept = chunk.stats();
    assert_eq!((kept.blocks, kept.large_blocks, kept.used_bytes), (1, 0, 0), "{kept}");
    assert!(kept.capacity_bytes >= MIB, "the largest block is kept: {kept}");
    // The same work fits again without a block from the pool.
    let in_use = pool.stats().in_use_bytes;
    let big = chunk.alloc_slice_copy(&vec![5u8; MIB / 2]);
    assert_eq!(big[1000], 5);
    assert_eq!(chunk.stats().blocks, 1);
    assert_eq!(pool.stats().in_use_bytes, in_use);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

/// Pushes `len` bytes one by one into a fresh `Vec` in `chunk`; returns how many times the
/// data moved, checking every byte survived each move.
fn moves_while_pushing(chunk: &Chunk<'_>, len: usize) -> usize {
    let mut v: Vec<u8, _> = Vec::new_in(chunk);
    let (mut moves, mut at) = (0, v.as_ptr());
    for i in 0..len {
        v.push(i as u8);
        if v.as_ptr() != at {
            if i > 0 {
                moves += 1;
            }
            at = v.as_ptr();
            assert!(v.iter().enumerate().all(|(j, &b)| b == j as u8), "data moved intact");
        }
    }
    moves
}

#[test]
fn a_vec_pushed_to_megabytes_grows_its_large_block_in_place() {
    // Past the first block, the vector moves to a large block cut from the bottom of the
    // largest free block, so every later doubling takes the block's free buddy instead of
    // moving the data (a new top chunk, when the first is too small, is one more move).
    let len = scaled(2 * MIB, 32 * KIB);
    let pool = Pool::new();
    let chunk = pool.chunk();
    let moves = moves_while_pushing(&chunk, len);
    eprintln!("{moves} moves for {len} bytes");
    assert!(moves <= 5, "{moves} moves for {len} bytes");
    assert_eq!(chunk.stats().large_blocks, 0, "the grown block went back with the vector");
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0, "whole: {}", pool.stats());
    check(&pool);
}

#[test]
fn a_large_block_whose_buddy_is_lent_moves_as_before() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    v.extend_from_slice(&[7; 64 * KIB]);
    // Another chunk takes everything free, so no buddy of the vector's block is free.
    let other = pool.chunk();
    let mut blockers = std::vec::Vec::new();
    while let Ok(b) = other.try_alloc_layout(Layout::from_size_align(64 * KIB, 8).unwrap()) {
        blockers.push(b);
        if pool.stats().free_bytes < 64 * KIB {
            break;
        }
    }
    let before = v.as_ptr();
    v.extend_from_slice(&[8; 64 * KIB]);
    assert_ne!(v.as_ptr(), before, "moved: no buddy was free");
    assert!(v[..64 * KIB].iter().all(|&b| b == 7) && v[64 * KIB..].iter().all(|&b| b == 8));
    drop(v);
    drop((chunk, other));
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}
