//! Fault injection: every failed map or purge, on every path, is an `AllocError` (or a
//! smaller result), leaks nothing, corrupts nothing, and the pool works again once the
//! fault clears.

use crate::util::{
    KIB, MIB, all_bytes, append_filled, check, fill, intact, patterned, scaled, small_pool,
};
use allocator_api2::vec::Vec as AVec;
use perfloc::fault_injection::{clear, fail_next_maps, fail_next_purges};
use perfloc::{Chunk, Pool, SyncChunk};
use std::alloc::Layout;

/// An allocation filled with a pattern: where, how long, and the pattern's id.
type Patterned = (std::ptr::NonNull<u8>, usize, usize);

/// Disarms faults even when a test fails, so other tests on this thread are unaffected.
struct Armed;
impl Drop for Armed {
    fn drop(&mut self) {
        clear();
    }
}

#[test]
fn a_failed_map_for_a_first_block_is_an_error_and_changes_nothing() {
    let _armed = Armed;
    let pool = small_pool();
    fail_next_maps(u32::MAX);
    assert!(pool.try_chunk().is_err());
    let stats = pool.stats();
    assert_eq!((stats.mapped_bytes, stats.top_chunks, stats.live_chunks), (0, 0, 0));
    clear();
    let chunk = pool.try_chunk().expect("works once the fault clears");
    assert_eq!(*chunk.alloc(9u8), 9);
    check(&pool);
}

#[test]
fn a_failed_map_for_a_successor_or_a_large_block_leaves_the_chunk_intact() {
    let _armed = Armed;
    let pool = small_pool();
    let chunk = pool.chunk();
    // Fill the pool's first top chunk so the next block needs a mapping.
    let others: Vec<Chunk<'_>> = (0..15).map(|_| pool.chunk()).collect();
    let kept = chunk.alloc_slice_fill_with(4000, |_| 0u8);
    fill(kept, 1);
    let before = (chunk.stats(), pool.stats().in_use_bytes, pool.stats().mapped_bytes);
    fail_next_maps(u32::MAX);
    for layout in [Layout::new::<[u8; 512]>(), Layout::from_size_align(100 * KIB, 8).unwrap()] {
        assert!(chunk.try_alloc_layout(layout).is_err(), "{layout:?}");
        assert_eq!((chunk.stats(), pool.stats().in_use_bytes, pool.stats().mapped_bytes), before);
    }
    clear();
    assert!(chunk.try_alloc_layout(Layout::from_size_align(100 * KIB, 8).unwrap()).is_ok());
    assert!(intact(kept, 1), "nothing was corrupted");
    drop((chunk, others));
    assert_eq!(pool.stats().in_use_bytes, 0, "nothing leaked");
    check(&pool);
}

#[test]
fn when_the_regular_size_is_refused_the_pool_maps_just_enough() {
    let _armed = Armed;
    let pool =
        Pool::builder().first_top_chunk_size(4 * MIB).first_block_size(4 * KIB).build().unwrap();
    fail_next_maps(1); // the 4 MiB mapping fails, the 4 KiB fallback succeeds
    let chunk = pool.try_chunk().expect("the fallback mapping");
    assert_eq!(pool.top_chunk_sizes(), [4 * KIB]);
    assert_eq!(pool.stats().mmap_calls, 2);
    drop(chunk);
    check(&pool);
}

#[test]
fn failed_purges_give_back_less_and_keep_the_books_straight() {
    let _armed = Armed;
    let pool = Pool::builder()
        .first_top_chunk_size(64 * MIB)
        .first_block_size(4 * KIB)
        .retain(0)
        .decay(std::time::Duration::MAX)
        .build()
        .unwrap();
    let keeper = pool.chunk(); // keeps the one top chunk in use, so only purges can help
    let chunks: Vec<Chunk<'_>> = (0..32)
        .map(|i| {
            let c = pool.chunk();
            patterned(&c, MIB, i);
            c
        })
        .collect();
    drop(chunks);
    fail_next_purges(u32::MAX);
    assert_eq!(pool.trim(), 0, "every purge failed");
    let stats = pool.stats();
    assert_eq!(stats.purged_bytes, 0);
    assert!(stats.madvise_calls >= 1);
    check(&pool);
    clear();
    assert!(pool.trim() >= 32 * MIB, "purges work again");
    check(&pool);
    assert!(keeper.alloc_slice_copy(&[5u8; 10]).iter().all(|&b| b == 5));
}

#[test]
fn random_faults_on_every_path_never_corrupt_or_leak() {
    let _armed = Armed;
    // Memory goes back to the OS as soon as it is free, so mappings (and faults) are
    // frequent: first blocks, successors, large blocks, fallbacks, purges.
    let pool = Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .retain(0)
        .decay(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let mut next = crate::util::rng(0x9E37_79B9_7F4A_7C15u64);
    let mut held: Vec<(Chunk<'_>, Vec<Patterned>)> = Vec::new();
    let (mut failures, mut successes) = (0, 0);
    // Under Miri, where each step maps or unmaps and costs tens of thousands of interpreted
    // steps, a tenth of the steps and of the expected counts.
    let (steps, min_failures, min_successes) = scaled((2000, 20, 500), (100, 2, 25));
    for id in 0..steps {
        match next() % 8 {
            0 => fail_next_maps(1 + (next() % 3) as u32),
            1 => fail_next_purges(1),
            2 => {
                pool.trim();
            }
            _ => {}
        }
        if held.is_empty() || next() % 5 == 0 {
            match pool.try_chunk() {
                Ok(chunk) => held.push((chunk, Vec::new())),
                Err(_) => failures += 1,
            }
            continue;
        }
        let k = next() % held.len();
        if held.len() > 8 || next() % 4 == 0 {
            let (chunk, allocations) = held.swap_remove(k);
            for &(p, len, aid) in &allocations {
                // SAFETY: allocations of `chunk`, alive until it drops below.
                assert!(intact(unsafe { std::slice::from_raw_parts(p.as_ptr(), len) }, aid));
            }
            drop(chunk);
            continue;
        }
        let (chunk, allocations) = &mut held[k];
        let size = [16, 3000, 20_000, 300_000][next() % 4];
        match chunk.try_alloc_layout(Layout::from_size_align(size, 8).unwrap()) {
            Ok(p) => {
                // SAFETY: a fresh allocation of `size` bytes.
                fill(unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), size) }, id);
                allocations.push((p, size, id));
                successes += 1;
            }
            Err(_) => failures += 1,
        }
    }
    clear();
    eprintln!("{failures} failures, {successes} successes");
    assert!(
        failures >= min_failures && successes >= min_successes,
        "{failures} failures, {successes} successes"
    );
    for (_, allocations) in &held {
        for &(p, len, aid) in allocations {
            // SAFETY: allocations of live chunks.
            assert!(intact(unsafe { std::slice::from_raw_parts(p.as_ptr(), len) }, aid));
        }
    }
    drop(held);
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0), "nothing leaked");
    check(&pool);
    // And the pool works normally again.
    let chunk = pool.chunk();
    assert!(chunk.try_alloc_layout(Layout::from_size_align(300_000, 8).unwrap()).is_ok());
}

#[test]
fn a_failed_map_leaves_a_sync_chunk_and_a_growing_vector_intact() {
    let _armed = Armed;
    let pool = small_pool();
    let chunk = pool.sync_chunk();
    // Fill the pool's first top chunk so that any further block needs a mapping.
    let others: Vec<Chunk<'_>> = (0..15).map(|_| pool.chunk()).collect();
    let mut v: AVec<u8, &SyncChunk<'_>> = AVec::new_in(&chunk);
    append_filled(&mut v, 3, 1000);
    let before = (chunk.stats(), pool.stats().in_use_bytes, pool.stats().mapped_bytes);
    fail_next_maps(u32::MAX);
    assert!(pool.try_sync_chunk().is_err());
    // Growth past the block (a growable large block, then any block) needs a mapping.
    assert!(v.try_reserve(64 * KIB).is_err());
    assert!(chunk.try_alloc_layout(Layout::from_size_align(100 * KIB, 8).unwrap()).is_err());
    assert_eq!((chunk.stats(), pool.stats().in_use_bytes, pool.stats().mapped_bytes), before);
    assert!(all_bytes(&v, 3), "the vector kept its data");
    clear();
    v.try_reserve(64 * KIB).expect("works once the fault clears");
    append_filled(&mut v, 4, 64 * KIB);
    assert!(all_bytes(&v[..1000], 3) && all_bytes(&v[1000..], 4));
    drop(v);
    drop((chunk, others));
    assert_eq!(pool.stats().in_use_bytes, 0, "nothing leaked");
    check(&pool);
}
