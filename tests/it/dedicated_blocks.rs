//! Large blocks (one allocation in a block of its own): found by address whatever the
//! layout the caller passes, so they go back to the pool after any shrink, at every size
//! around the thresholds; `reset` keeps the largest block, large or not.

use crate::util::{KIB, MIB, all_bytes, append, append_filled, check, limited, scaled, small_pool};
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
        assert_eq!(chunk.stats().dedicated_blocks, 0, "cycle {i}");
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
        assert_eq!(chunk.stats().dedicated_blocks, 1);
        let new = Layout::from_size_align(new_size, 8).unwrap();
        // SAFETY: `p` is a live allocation of `old` in `chunk`; the shrunk one replaces it
        // and is given up at once.
        unsafe {
            p.as_ptr().write_bytes(7, new_size);
            let q = (&chunk).shrink(p, old, new).unwrap().cast::<u8>();
            assert!(std::slice::from_raw_parts(q.as_ptr(), new_size) == vec![7; new_size]);
            (&chunk).deallocate(q, new);
        }
        assert_eq!(chunk.stats().dedicated_blocks, 0, "shrunk to {new_size}");
    }
    check(&pool);
}

/// A fresh chunk of `pool` (first block 4 KiB) whose next successor is `4 KiB << k`: the
/// first block, then each of `k` successors, filled but for a little room.
fn chunk_with_successors(pool: &Pool, k: usize) -> Chunk<'_> {
    let chunk = pool.chunk();
    chunk.alloc_layout(Layout::from_size_align(4 * KIB - 128, 8).unwrap());
    for j in 0..k {
        chunk.alloc_layout(Layout::from_size_align(((4 * KIB) << j) - 128, 8).unwrap());
    }
    assert_eq!(chunk.stats().dedicated_blocks, 0);
    chunk
}

#[test]
fn large_allocations_around_the_thresholds_go_back_when_deallocated() {
    let pool = small_pool();
    let step = if cfg!(miri) { 40 } else { 8 };
    for k in 0..4 {
        // An allocation is large when it does not fit in the next successor, `4 KiB << k`
        // with its header: sizes just below and above that.
        let threshold = (4 * KIB) << k;
        for size in (threshold - 96..threshold + 96).step_by(step) {
            for align in [8, 64, 4096] {
                for shrink_to in [None, Some(size / 3), Some(0)] {
                    let chunk = chunk_with_successors(&pool, k);
                    let in_use = pool.stats().in_use_bytes;
                    let layout = Layout::from_size_align(size, align).unwrap();
                    let p = alloc_not_newest(&chunk, layout);
                    let large = chunk.stats().dedicated_blocks;
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
                    assert_eq!(chunk.stats().dedicated_blocks, 0, "{what}");
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
        assert_eq!(chunk.stats().dedicated_blocks, 0, "cycle {i}");
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
    assert_eq!(chunk.stats().dedicated_blocks, 1);
    v.shrink_to_fit();
    assert_eq!(chunk.stats().dedicated_blocks, 0, "the block went back at once");
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
    assert_eq!(chunk.stats().dedicated_blocks, 1);
    chunk.reset();
    let kept = chunk.stats();
    assert_eq!((kept.blocks, kept.dedicated_blocks, kept.used_bytes), (1, 0, 0), "{kept}");
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

#[test]
fn reset_keeps_the_largest_block_even_an_older_regular_one() {
    let pool = Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .chunk_limit(16 * KIB)
        .build()
        .unwrap();
    let mut chunk = pool.chunk();
    chunk.alloc_slice_fill_copy(3 * KIB, 1u8); // the 4 KiB first block
    chunk.alloc_slice_fill_copy(6 * KIB, 2u8); // an 8 KiB successor
    chunk.alloc_slice_fill_copy(3 * KIB, 3u8); // a 4 KiB one: 16 KiB would pass the limit
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.capacity_bytes), (3, 16 * KIB), "{stats}");
    chunk.reset();
    let kept = chunk.stats();
    assert_eq!((kept.blocks, kept.capacity_bytes, kept.used_bytes), (1, 8 * KIB, 0), "{kept}");
    assert_eq!(pool.stats().in_use_bytes, 8 * KIB);
    chunk.alloc_slice_fill_copy(6 * KIB, 4u8);
    assert_eq!(chunk.stats().blocks, 1, "the same work fits the kept block");
    drop(chunk);
    check(&pool);
}

/// Pushes `len` bytes one by one into a fresh `Vec` in `chunk`; returns how many times the
/// data moved, checking every byte survived each move.
///
/// Under Miri the pushes that fit the capacity are one bulk copy instead (a push per byte
/// took Miri 46 s for the steady-state test's three vectors of 32 KiB); every push that
/// grows the vector is still a `push`, so the allocator sees the same calls and layouts.
fn moves_while_pushing(chunk: &Chunk<'_>, len: usize) -> usize {
    // Byte `i` is `i as u8`: 256 bytes repeated (a bulk copy, fast under Miri).
    let mut expected = (0..=255u8).collect::<std::vec::Vec<u8>>().repeat(len.div_ceil(256));
    expected.truncate(len);
    let mut v: Vec<u8, _> = Vec::new_in(chunk);
    let (mut moves, mut at) = (0, v.as_ptr());
    let mut i = 0;
    while i < len {
        if cfg!(miri) && v.len() < v.capacity() {
            // No room is reserved here (there is room), so no allocator call either.
            let n = (v.capacity() - v.len()).min(len - i);
            append(&mut v, &expected[i..i + n]);
            assert_eq!(v.as_ptr(), at, "filling the capacity moves nothing");
            i += n;
            continue;
        }
        let byte = expected[i];
        v.push(byte);
        if v.as_ptr() != at {
            if i > 0 {
                moves += 1;
            }
            at = v.as_ptr();
            assert!(v[..] == expected[..v.len()], "data moved intact");
        }
        i += 1;
    }
    assert!(v[..] == expected[..], "every byte pushed is there");
    moves
}

#[test]
fn a_vec_pushed_to_megabytes_grows_its_block_in_place() {
    // The vector outgrows the first block (a first block never grows: the local slots
    // recycle them) and moves once, to a successor cut from the bottom of the largest free
    // block, which then grows in place over its buddies; when the first top chunk is too
    // small, once more, to a block in a new top chunk with room to double.
    let len = scaled(2 * MIB, 32 * KIB);
    let pool = Pool::new();
    let chunk = pool.chunk();
    let moves = moves_while_pushing(&chunk, len);
    assert!(moves <= 2, "{moves} moves for {len} bytes");
    assert_eq!(chunk.stats().dedicated_blocks, 0);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0, "whole: {}", pool.stats());
    check(&pool);
}

#[test]
fn in_steady_state_a_vec_pushed_to_megabytes_moves_at_most_twice() {
    // The `large_growth` benchmark's pattern: a fresh chunk per cycle of a pool that
    // earlier cycles (and their first blocks in the thread's local slot) warmed.
    let len = scaled(2 * MIB, 32 * KIB);
    let pool = Pool::new();
    for cycle in 0..scaled(6, 3) {
        let chunk = pool.chunk();
        let moves = moves_while_pushing(&chunk, len);
        assert!(moves <= 2, "cycle {cycle}: {moves} moves for {len} bytes");
        let stats = chunk.stats();
        assert!(stats.blocks <= 3, "cycle {cycle}: {stats}");
        drop(chunk);
        assert_eq!(pool.stats().in_use_bytes, 0, "cycle {cycle}: {}", pool.stats());
        check(&pool);
    }
    assert!(pool.stats().mapped_bytes <= 16 * MIB, "{}", pool.stats());
}

/// A pool with 4 KiB first blocks and a 1 MiB first top chunk: room for successors to
/// grow in place.
fn roomy_pool(chunk_limit: Option<usize>) -> Pool {
    let builder = Pool::builder().first_top_chunk_size(MIB).first_block_size(4 * KIB);
    match chunk_limit {
        Some(limit) => builder.chunk_limit(limit),
        None => builder,
    }
    .build()
    .expect("valid settings")
}

/// Appends `byte` in steps of 1 KiB until `v` holds `len` bytes (a `Vec` doubles its
/// capacity as it goes); returns how many times the data moved.
fn grow_to(v: &mut Vec<u8, &Chunk<'_>>, len: usize, byte: u8) -> usize {
    let mut moves = 0;
    while v.len() < len {
        let at = v.as_ptr();
        let had = v.capacity();
        append_filled(v, byte, KIB);
        moves += usize::from(had > 0 && v.as_ptr() != at);
    }
    moves
}

#[test]
fn a_growing_vec_keeps_its_successor_and_grows_it_in_place() {
    // Past the first block the vector moves once, to a successor; each later doubling
    // grows that block, in whole pages: the chunk keeps two blocks.
    let pool = roomy_pool(None);
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    assert_eq!(grow_to(&mut v, 2 * KIB, 1), 0, "in the first block");
    assert_eq!(grow_to(&mut v, 64 * KIB, 2), 1, "one move, then growth in place");
    assert!(all_bytes(&v[..2 * KIB], 1) && all_bytes(&v[2 * KIB..], 2));
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.dedicated_blocks), (2, 0), "{stats}");
    assert_eq!(stats.capacity_bytes, 4 * KIB + 68 * KIB, "64 KiB and a header: {stats}");
    drop(v);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn growing_the_current_block_respects_the_chunk_limit() {
    // With a 100 KiB chunk limit, the successor grows a page at a time to 96 KiB (4 + 96 =
    // 100 KiB held): the vector stops at 95 KiB with an error, the chunk within limit.
    let pool = roomy_pool(Some(100 * KIB));
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    append_filled(&mut v, 1, 2 * KIB);
    v.reserve_exact(3 * KIB); // past the first block: moves to a successor
    let at = v.as_ptr();
    while v.try_reserve_exact(KIB).is_ok() {
        append_filled(&mut v, 1, KIB);
        assert!(chunk.stats().capacity_bytes <= 100 * KIB, "{}", chunk.stats());
    }
    assert_eq!(v.as_ptr(), at, "grew in place up to the limit");
    assert_eq!(v.len(), 95 * KIB);
    assert!(all_bytes(&v, 1));
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.capacity_bytes), (2, 100 * KIB), "{stats}");
    assert!(stats.peak_bytes <= 100 * KIB, "{stats}");
    // Lifting the limit lets it grow on, in place.
    chunk.set_limit(None);
    append_filled(&mut v, 2, 8 * KIB);
    assert_eq!(v.as_ptr(), at);
    let grown = chunk.stats().capacity_bytes;
    assert!(grown - 4 * KIB - v.capacity() < 8 * KIB, "the vector and a page or two: {grown}");
    drop(v);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn rewind_and_reset_after_growth_in_place_keep_the_pool_consistent() {
    let pool = roomy_pool(None);
    let mut chunk = pool.chunk();
    chunk.alloc_slice_copy(&[9u8; 3 * KIB]);
    let mark = chunk.checkpoint();
    let before = chunk.stats();
    chunk.scoped(|c| {
        // Successors, the last grown in place a few times.
        let mut v: Vec<u8, _> = Vec::new_in(&*c);
        assert!(grow_to(&mut v, 64 * KIB, 1) <= 1);
        assert!(c.stats().blocks <= 3, "{}", c.stats());
        check(c.pool());
    });
    assert_eq!(chunk.stats().blocks, before.blocks, "the grown successor went back");
    assert_eq!(chunk.stats().capacity_bytes, before.capacity_bytes);
    check(&pool);
    // A checkpoint in a successor that grows afterwards, rewound after it grew.
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    assert_eq!(grow_to(&mut v, 8 * KIB, 3), 0, "in a successor, which grows in place");
    core::mem::forget(v); // stays allocated, below the checkpoint
    let blocks = chunk.stats().blocks;
    assert!(blocks <= 3, "{}", chunk.stats());
    let inner = chunk.checkpoint();
    {
        let mut w: Vec<u8, _> = Vec::new_in(&chunk);
        assert_eq!(grow_to(&mut w, 100 * KIB, 4), 0, "the successor grew in place");
    }
    let grown = chunk.stats();
    assert_eq!(grown.blocks, blocks, "{grown}");
    chunk.rewind_to(inner);
    let after = chunk.stats();
    assert_eq!(after.capacity_bytes, grown.capacity_bytes, "the grown block stays, grown");
    check(&pool);
    // The grown block is usable up to its new end.
    let big = chunk.alloc_slice_copy(&vec![6u8; 100 * KIB]);
    assert!(all_bytes(big, 6));
    assert_eq!(chunk.stats().blocks, blocks);
    chunk.rewind_to(mark);
    assert_eq!(chunk.stats().capacity_bytes, before.capacity_bytes);
    check(&pool);
    // Grow again, then reset: the grown block is the largest and is kept.
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    grow_to(&mut v, 200 * KIB, 7);
    drop(v);
    chunk.reset();
    let kept = chunk.stats();
    assert_eq!((kept.blocks, kept.used_bytes), (1, 0), "{kept}");
    assert!(kept.capacity_bytes > 200 * KIB, "the grown block is kept: {kept}");
    check(&pool);
    assert_eq!(chunk.alloc_slice_copy(&vec![8u8; 200 * KIB]).len(), 200 * KIB);
    assert_eq!(chunk.stats().blocks, 1, "the kept block holds the same work again");
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0, "{}", pool.stats());
    check(&pool);
}

#[test]
fn a_newest_allocation_moving_to_a_block_of_its_own_leaves_no_copy_behind() {
    // The successor cannot grow past the 64 KiB top chunk: from 128 KiB the vector moves
    // to a large block, and its bytes in the successor are given back (the large block's
    // record takes their place), not left as a dead copy.
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    grow_to(&mut v, 256 * KIB, 1);
    assert!(all_bytes(&v, 1));
    let stats = chunk.stats();
    assert_eq!(stats.dedicated_blocks, 1, "{stats}");
    let regular = stats.used_bytes - v.capacity();
    assert!(regular < 32 * KIB, "{regular} bytes left in regular blocks: {stats}");
    drop(v);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

/// Whole pages holding `bytes`.
fn pages(bytes: usize) -> usize {
    let page = 4096; // the test machines' page; a larger one only rounds further
    bytes.div_ceil(page) * page
}

#[test]
fn a_moved_buffer_leaves_no_block_behind_in_either_kind() {
    fn run<K: perfloc::BumpState>(chunk: &perfloc::ProcessChunk<'_, K>) {
        let pool = chunk.pool();
        // Two vectors growing in turn, never the newest allocation: each is cut where the
        // other may want to grow, so they move from dedicated block to dedicated block.
        let mut vs: [Vec<u8, _>; 2] = [Vec::new_in(chunk), Vec::new_in(chunk)];
        let mut moves = 0;
        let mut blockers = std::vec::Vec::new();
        for step in 0..scaled(40, 12) {
            let v = &mut vs[step % 2];
            let (at, had) = (v.as_ptr(), v.capacity());
            append_filled(v, step as u8, 16 * KIB);
            chunk.alloc(0u64);
            moves += usize::from(had >= 32 * KIB && v.as_ptr() != at);
            // Another chunk's block, from the lowest free memory: now and then right above
            // a vector, which must then move to grow.
            if step % 3 == 0 {
                let blocker = pool.chunk();
                blocker.alloc_slice_fill_copy(24 * KIB, 0u8);
                blockers.push(blocker);
            }
            // One dedicated block per vector, exactly its pages: every block either moved
            // out of went back to the pool, which holds nothing else.
            let stats = chunk.stats();
            let dedicated: usize = vs.iter().map(|v| pages(v.capacity())).sum();
            if vs.iter().all(|v| v.capacity() >= 32 * KIB) {
                assert_eq!(stats.dedicated_blocks, 2, "step {step}: {stats}");
                assert_eq!(stats.dedicated_bytes, dedicated, "step {step}: {stats}");
            }
            let others: usize = blockers.iter().map(|b| b.stats().capacity_bytes).sum();
            assert_eq!(pool.stats().in_use_bytes, stats.capacity_bytes + others, "step {step}");
        }
        assert!(moves >= 1, "a buffer moved from dedicated block to dedicated block");
        for (k, v) in vs.iter().enumerate() {
            let pieces = v.chunks(16 * KIB).enumerate();
            assert!(pieces.clone().all(|(i, c)| all_bytes(c, (2 * i + k) as u8)));
        }
    }
    // One top chunk for both: no room to map another where they could grow apart.
    let pool = Pool::builder().first_top_chunk_size(2 * MIB).limit(2 * MIB).build().unwrap();
    run(&pool.chunk());
    run(&pool.sync_chunk());
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn dedicated_blocks_are_whole_pages_not_powers_of_two() {
    let pool = Pool::new();
    for size in [32 * KIB, 40_000, 100 * KIB + 1, 300 * KIB] {
        let chunk = pool.chunk();
        let sync = pool.sync_chunk();
        chunk.alloc_slice_fill_copy(size, 1u8);
        sync.alloc_slice_fill_copy(size, 1u8);
        for stats in [chunk.stats(), sync.stats()] {
            assert_eq!(stats.dedicated_blocks, 1, "{size}: {stats}");
            assert_eq!(stats.dedicated_bytes, pages(size), "{size}: {stats}");
        }
    }
    // Below the threshold, where it fits, a regular block.
    let roomy = Pool::builder().first_block_size(64 * KIB).build().unwrap();
    let small = roomy.chunk();
    small.alloc_slice_fill_copy(32 * KIB - 8, 1u8);
    assert_eq!(small.stats().dedicated_blocks, 0);
    check(&pool);
}

#[test]
fn a_block_grown_for_a_vector_gives_its_end_back_when_the_vector_moves_on() {
    // The vector is the newest allocation: its successor grows in place over the free
    // pages above it, past `max_block_size`, until the top chunk ends; then it moves to a
    // dedicated block, and the grown successor keeps only what it still holds (at least
    // `max_block_size`).
    let pool = Pool::builder()
        .first_top_chunk_size(256 * KIB)
        .first_block_size(4 * KIB)
        .max_block_size(16 * KIB)
        .build()
        .unwrap();
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    v.push(3); // in the first block: then it grows as the newest allocation
    let mut regular_peak = 0;
    while v.len() < 256 * KIB {
        append_filled(&mut v, 3, 4 * KIB);
        let stats = chunk.stats();
        regular_peak = regular_peak.max(stats.capacity_bytes - stats.dedicated_bytes);
    }
    let stats = chunk.stats();
    assert_eq!(stats.dedicated_blocks, 1, "{stats}");
    assert!(regular_peak > 64 * KIB, "a successor grew in place: {regular_peak}");
    let regular = stats.capacity_bytes - stats.dedicated_bytes;
    assert!(regular <= 4 * KIB + 16 * KIB, "the grown end went back: {stats}");
    assert!(all_bytes(&v, 3));
    drop(v);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn block_growth_settings_are_checked_by_name() {
    let err = Pool::builder().first_block_size(128 * KIB).max_block_size(64 * KIB).build();
    assert_eq!(err.unwrap_err().setting(), "max_block_size");
    let err = Pool::builder().max_block_size(48 * KIB).build().unwrap_err();
    assert!(err.to_string().contains("power of two"), "{err}");
    let err = Pool::builder().dedicated_threshold(4095).build().unwrap_err();
    assert_eq!(err.setting(), "dedicated_threshold");
    // Unset, the cap follows a larger first block; `usize::MAX` lifts it.
    let pool = Pool::builder().first_block_size(128 * KIB).build().unwrap();
    let chunk = pool.chunk();
    chunk.alloc_slice_fill_copy(120 * KIB, 0u8);
    chunk.alloc_slice_fill_copy(16 * KIB, 0u8); // a successor: 64 KiB, half the first
    assert_eq!(chunk.stats().capacity_bytes, 192 * KIB);
    let pool = Pool::builder().max_block_size(usize::MAX).dedicated_threshold(usize::MAX);
    let pool = pool.build().unwrap();
    let chunk = pool.chunk();
    chunk.alloc_slice_fill_copy(scaled(MIB, 64 * KIB), 0u8);
    assert_eq!(chunk.stats().dedicated_blocks, 1, "only what no successor holds");
}
