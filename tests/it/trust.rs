//! What a chunk takes from its caller is never trusted beyond what is proven (the list in
//! `src/chunk.rs`, "What a chunk takes from its caller"): checkpoints of other chunks, of
//! dropped chunks, from before a reset or made stale are refused or proven harmless, even
//! when this chunk reuses the other chunk's blocks; a zero-size allocation is never taken
//! for the newest. Layouts and foreign pointers: `bad_input.rs`, `allocator.rs`,
//! `dedicated_blocks.rs`. Run under Miri and ASan in CI.

use crate::util::{KIB, check, fill, intact, scaled};
use allocator_api2::alloc::Allocator;
use perfloc::{BumpState, CheckpointError, Pool, ProcessChunk};
use std::alloc::Layout;

/// A pool whose first blocks are small, so that 64 KiB allocations get large blocks.
fn pool() -> Pool {
    Pool::builder().first_top_chunk_size(1 << 20).first_block_size(4 * KIB).build().unwrap()
}

/// A large allocation (a block of its own) filled with the pattern of `id`, as a raw
/// slice: the model of a live allocation that a rewind must not touch.
fn large<K: BumpState>(chunk: &ProcessChunk<'_, K>, id: usize) -> *mut [u8] {
    let bytes = chunk.alloc_slice_fill_copy(scaled(64 * KIB, 16 * KIB), 0u8);
    fill(bytes, id);
    bytes
}

/// Whether `bytes`, still allocated in a live chunk, hold the pattern of `id`.
fn still(bytes: *mut [u8], id: usize) -> bool {
    // SAFETY: the callers pass allocations of chunks that are alive and were not rewound
    // past them.
    intact(unsafe { &*bytes }, id)
}

/// The review's case: chunk `b` gets chunk `a`'s first block back from the thread's slot
/// and is handed `a`'s checkpoint, taken after `a` made (and gave back) five large blocks.
/// Trusted, the rewind would keep `b`'s large block while moving the cursor back over its
/// node, and the next allocation would overwrite the node.
fn another_chunks_checkpoint_on_its_reused_block<K: BumpState>(
    new_chunk: for<'p> fn(&'p Pool) -> ProcessChunk<'p, K>,
) {
    let pool = pool();
    let (cp, a_first) = {
        let mut a = new_chunk(&pool);
        let start = a.checkpoint();
        for id in 0..5 {
            large(&a, id);
        }
        a.rewind_to(start);
        (a.checkpoint(), a.alloc(0u8) as *const u8)
    };
    let mut b = new_chunk(&pool);
    let b_first = b.alloc(0u8) as *const u8;
    assert_eq!(b_first, a_first, "b reuses a's first block: the case under test");
    let kept = large(&b, 9);
    let before = b.stats();
    assert_eq!(b.try_rewind_to(cp), Err(CheckpointError::Foreign));
    assert_eq!(b.stats(), before, "refused: nothing changed");
    let message = crate::checkpoints::panics(|| b.rewind_to(cp));
    assert!(message.contains("another chunk"), "{message}");
    b.alloc_slice_copy(&[0u8; 64]);
    assert!(still(kept, 9));
    assert_eq!(b.stats().dedicated_blocks, 1);
    drop(b);
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0), "{stats}");
    check(&pool);
}

#[test]
fn another_chunks_checkpoint_is_refused_even_on_its_reused_block() {
    another_chunks_checkpoint_on_its_reused_block(Pool::chunk);
    another_chunks_checkpoint_on_its_reused_block(Pool::sync_chunk);
}

fn replaced_inside_a_scope<K: BumpState>(new_chunk: for<'p> fn(&'p Pool) -> ProcessChunk<'p, K>) {
    let pool = pool();
    let mut chunk = new_chunk(&pool);
    let start = chunk.checkpoint();
    for id in 0..3 {
        large(&chunk, id); // large blocks numbered 1..=3 in the first chunk
    }
    chunk.rewind_to(start);
    // The scope's checkpoint: at the start of the first block, after 3 large blocks.
    let kept = chunk.scoped(|c| {
        drop(std::mem::replace(c, new_chunk(&pool)));
        *c = new_chunk(&pool); // likely the first block of the chunk just dropped
        large(c, 7)
    });
    // The new chunk refused the old chunk's checkpoint: its large block and node stay.
    assert_eq!(chunk.stats().dedicated_blocks, 1);
    chunk.alloc_slice_copy(&[0u8; 64]);
    assert!(still(kept, 7));
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn a_chunk_put_in_place_inside_a_scope_keeps_what_it_allocated() {
    replaced_inside_a_scope(Pool::chunk);
    replaced_inside_a_scope(Pool::sync_chunk);
}

#[test]
fn a_dropped_chunks_checkpoint_never_moves_a_new_chunk() {
    let pool = pool();
    let cp = {
        let chunk = pool.chunk();
        chunk.alloc_slice_copy(&[1u8; 1000]);
        chunk.checkpoint()
    };
    let mut fresh = pool.chunk();
    assert_eq!(fresh.try_rewind_to(cp), Err(CheckpointError::Foreign));
    assert_eq!(fresh.stats().used_bytes, 0, "not moved forward over another chunk's data");
    let mut shared = pool.sync_chunk();
    assert_eq!(shared.try_rewind_to(cp), Err(CheckpointError::Foreign));
    assert_eq!(shared.stats().used_bytes, 0);
}

#[test]
fn a_reset_makes_every_earlier_checkpoint_foreign() {
    let pool = pool();
    let mut chunk = pool.chunk();
    chunk.alloc(1u64);
    let cp = chunk.checkpoint();
    chunk.reset();
    assert_eq!(chunk.try_rewind_to(cp), Err(CheckpointError::Foreign));
    assert_eq!(chunk.stats().used_bytes, 0, "not moved forward to the old position");
    // A scope whose closure resets the chunk leaves it as the closure left it.
    chunk.alloc(2u64);
    chunk.scoped(|c| {
        c.reset();
        c.alloc([0u8; 24]);
    });
    assert_eq!(chunk.stats().used_bytes, 24);
    // Checkpoints taken after the reset still work.
    let cp = chunk.checkpoint();
    chunk.alloc(3u64);
    assert_eq!(chunk.try_rewind_to(cp), Ok(()));
    assert_eq!(chunk.stats().used_bytes, 24);
}

/// A checkpoint made stale by a rewind to an earlier one, whose block comes back to the
/// same chunk from the pool: refused, or (if the block returns at the same address)
/// accepted harmlessly, giving back every large block made since (the proof in
/// `src/chunk/checkpoint.rs`).
fn stale_checkpoint_of_a_returned_block<K: BumpState>(
    new_chunk: for<'p> fn(&'p Pool) -> ProcessChunk<'p, K>,
) {
    let pool = pool();
    let mut chunk = new_chunk(&pool);
    let before = large(&chunk, 1);
    let early = chunk.checkpoint();
    chunk.alloc_slice_fill_copy(3 * KIB, 0u8);
    let successor = chunk.alloc_slice_fill_copy(2 * KIB, 0u8).as_ptr(); // a successor block
    let late = chunk.checkpoint();
    chunk.rewind_to(early);
    assert_eq!(chunk.try_rewind_to(late), Err(CheckpointError::Stale));
    let since = large(&chunk, 2); // its node lies in the first block
    chunk.alloc_slice_fill_copy(3 * KIB, 0u8);
    let again = chunk.alloc_slice_fill_copy(2 * KIB, 0u8).as_ptr(); // a successor again
    match chunk.try_rewind_to(late) {
        Ok(()) => {
            assert_eq!(again, successor, "accepted only with the block back at its address");
            assert_eq!(chunk.stats().dedicated_blocks, 1, "the large block made since went back");
        }
        Err(err) => {
            assert_eq!(err, CheckpointError::Stale);
            assert!(still(since, 2));
        }
    }
    chunk.alloc_slice_copy(&[0u8; 256]);
    assert!(still(before, 1), "the large block from before both checkpoints is intact");
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn a_stale_checkpoint_whose_block_came_back_is_harmless() {
    stale_checkpoint_of_a_returned_block(Pool::chunk);
    stale_checkpoint_of_a_returned_block(Pool::sync_chunk);
}

#[test]
fn checkpoints_move_between_threads_and_stay_their_chunks() {
    let pool = pool();
    let mut chunk = pool.sync_chunk();
    let cp = std::thread::scope(|s| s.spawn(|| chunk.checkpoint()).join().unwrap());
    let other = std::thread::scope(|s| s.spawn(|| pool.chunk().checkpoint()).join().unwrap());
    chunk.alloc(1u64);
    assert_eq!(chunk.try_rewind_to(other), Err(CheckpointError::Foreign));
    assert_eq!(chunk.try_rewind_to(cp), Ok(()));
    assert_eq!(chunk.stats().used_bytes, 0);
}

#[test]
fn a_zero_size_allocation_is_never_taken_for_the_newest() {
    let pool = pool();
    let chunk = pool.chunk();
    let zero = Layout::from_size_align(0, 8).unwrap();
    let z = (&chunk).allocate(zero).unwrap().cast::<u8>();
    let word: *mut u64 = chunk.alloc(5u64);
    assert_eq!(word.addr(), z.as_ptr().addr(), "the word sits where the zero-size one points");
    let used = chunk.stats().used_bytes;
    // SAFETY: `z` is a live zero-size allocation of `zero` in `chunk`.
    unsafe { (&chunk).deallocate(z, zero) };
    assert_eq!(chunk.stats().used_bytes, used, "freeing it gave nothing back");
    // SAFETY: `word` is live; freeing `z` did not touch it.
    assert_eq!(unsafe { *word }, 5);
}

/// What the review saw: a large node overwritten (here on purpose, by copying another node
/// over it) loses its block when the chunk drops, and `Pool::check` said `Ok`. It names the
/// lost bytes now. Natively only: the write is outside any allocation handed out.
#[test]
#[cfg(not(miri))]
fn pool_check_finds_a_block_lost_by_an_overwritten_large_node() {
    let pool = pool();
    let chunk = pool.chunk();
    let first: *mut u64 = chunk.alloc(0u64); // each large node follows its marker
    large(&chunk, 1);
    let second: *mut u64 = chunk.alloc(0u64);
    large(&chunk, 2);
    assert_eq!(chunk.stats().dedicated_blocks, 2);
    let node = second.addr() - first.addr() - 8;
    // SAFETY: both nodes lie in the chunk's first block, which is mapped and ours; this
    // breaks the chunk's bookkeeping on purpose (the second node now names the first
    // block), and the chunk is only dropped afterwards.
    unsafe {
        let from = first.cast::<u8>().add(8);
        std::ptr::copy_nonoverlapping(from, second.cast::<u8>().add(8), node);
    }
    drop(chunk);
    let err = pool.check().unwrap_err();
    assert!(err.contains("with no live chunk"), "{err}");
    assert!(err.starts_with(&format!("{} bytes", pool.stats().in_use_bytes)), "{err}");
}
