//! Hostile arguments to every safe entry point get an error and leave the chunk and the
//! pool usable; pointers from another chunk (a sibling, a child, a parent) handed to a
//! chunk's `Allocator` methods never corrupt it. Run under ASan in CI, which would catch
//! a write to memory the pool has not lent.

use crate::util::{KIB, MIB, append_filled, check, fill, intact, limited, scaled, small_pool};
use allocator_api2::alloc::Allocator;
use allocator_api2::collections::TryReserveErrorKind;
use allocator_api2::vec::Vec;
use hashbrown::HashMap;
use perfloc::{Chunk, Pool};
use std::alloc::Layout;

/// A patterned allocation that must survive whatever the test does next.
fn witness<'c>(chunk: &'c Chunk<'_>, id: usize) -> &'c mut [u8] {
    let bytes = chunk.alloc_slice_fill_with(300, |_| 0u8);
    fill(bytes, id);
    bytes
}

/// The chunk and its pool still work: a small and a large allocation, then the books.
fn still_usable(pool: &Pool, chunk: &Chunk<'_>) {
    assert_eq!(*chunk.try_alloc(41u64).expect("a word still fits"), 41);
    let mut big: Vec<u8, _> = Vec::new_in(chunk);
    big.try_reserve_exact(scaled(64 * KIB, 16 * KIB)).expect("a large block");
    // What `big.resize(n, 7)` does (one `reserve(n)`, no-op here), copied in one go.
    append_filled(&mut big, 7, scaled(64 * KIB, 16 * KIB));
    assert_eq!(big[1000], 7);
    check(pool);
}

#[test]
fn layouts_near_isize_max_and_huge_alignments_are_errors() {
    let pool = limited(16 * MIB);
    let chunk = pool.chunk();
    let kept = witness(&chunk, 1);
    let before = chunk.stats();
    for (size, align) in [
        (isize::MAX as usize, 1),
        (isize::MAX as usize - 7, 8),
        (isize::MAX as usize - (1 << 30) + 1, 1 << 30),
        (1, 1 << 30), // needs a gigabyte past the 16 MiB limit
        (64, 1 << 40),
        (0, 1 << 62), // zero-size: a dangling pointer, no memory
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        match chunk.try_alloc_layout(layout) {
            Ok(ptr) => {
                assert_eq!((size, ptr.as_ptr() as usize % align), (0, 0), "align {align}");
            }
            Err(perfloc::AllocError) => assert_ne!(size, 0),
        }
        assert_eq!(chunk.stats(), before, "a failed request changes nothing: {size} {align}");
    }
    assert!(intact(kept, 1));
    still_usable(&pool, &chunk);
}

#[test]
fn capacity_overflow_in_collections_is_an_error_that_keeps_the_data() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut v: Vec<u64, _> = Vec::new_in(&chunk);
    v.extend(0..100);
    let err = v.try_reserve(usize::MAX).unwrap_err();
    assert_eq!(err.kind(), TryReserveErrorKind::CapacityOverflow);
    let err = v.try_reserve(isize::MAX as usize / 8 - 200).unwrap_err();
    assert!(matches!(err.kind(), TryReserveErrorKind::AllocError { .. }), "{err:?}");
    assert!(v.try_reserve_exact(usize::MAX / 2).is_err());
    assert_eq!(v.as_slice(), (0..100).collect::<std::vec::Vec<u64>>());
    v.push(100); // still grows
    let mut map = HashMap::new_in(&chunk);
    map.insert(1, 2);
    assert!(map.try_reserve(usize::MAX).is_err());
    assert_eq!(map.get(&1), Some(&2));
    drop((v, map));
    still_usable(&pool, &chunk);
}

#[test]
fn a_limit_hit_in_the_middle_of_a_grow_keeps_the_vector_and_the_pool() {
    let limit = scaled(2 * MIB, 256 * KIB);
    let step = scaled(64 * KIB, 8 * KIB);
    let pool = limited(limit);
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    let mut expected = std::vec::Vec::new();
    let mut hit = false;
    for round in 0..64usize {
        let len = v.len();
        match v.try_reserve(len.max(step)) {
            Ok(()) => {
                append_filled(&mut v, round as u8, len.max(step));
                // Not `resize`, which writes a byte at a time (slow under Miri).
                expected.extend_from_slice(&vec![round as u8; len.max(step)]);
            }
            Err(_) => {
                hit = true;
                break;
            }
        }
    }
    assert!(hit, "the limit stops the doubling");
    let len = v.len();
    assert!(len >= limit / 8, "{len}");
    assert!(v[..] == expected[..], "the data survived the failed grow");
    // A grow by a little may still fit; a grow past the limit fails again, unchanged.
    assert!(v.try_reserve_exact(4 * MIB).is_err());
    assert_eq!(v.len(), len);
    drop(v);
    still_usable(&pool, &chunk);
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    assert!(pool.try_chunk().is_ok(), "memory came back: the pool serves again");
}

/// A chunk's blocks and the bytes handed out in them: all but the count of bytes freed.
fn blocks(stats: perfloc::ChunkStats) -> [usize; 6] {
    let s = stats;
    [s.blocks, s.dedicated_blocks, s.capacity_bytes, s.used_bytes, s.tail_bytes, s.peak_bytes]
}

#[test]
fn foreign_pointers_never_corrupt_the_chunk_that_receives_them() {
    let pool = small_pool();
    let parent = pool.chunk();
    let sibling = pool.chunk();
    let child = parent.child();
    let kept = witness(&parent, 2);
    let layout = Layout::from_size_align(200, 8).unwrap();
    let big = Layout::from_size_align(scaled(200 * KIB, 20 * KIB), 8).unwrap(); // a large block
    let own_big = (&parent).allocate(big).unwrap(); // so the parent looks its large blocks up
    // The newest allocation of each other chunk, and a large one: the cases where the
    // receiving chunk would rewind its bump pointer or release a block if it trusted them.
    for (name, other) in [("sibling", &sibling), ("child", &child)] {
        for layout in [layout, big] {
            let foreign = (&other).allocate(layout).unwrap().cast::<u8>();
            // SAFETY: `foreign` is a live allocation of `layout` in `other`.
            unsafe { std::slice::from_raw_parts_mut(foreign.as_ptr(), layout.size()) }.fill(9);
            let before = parent.stats();
            // SAFETY: deliberately the wrong allocator: `parent` must ignore the pointer.
            // The memory stays `other`'s and stays valid, so nothing reads freed memory.
            unsafe { (&parent).deallocate(foreign, layout) };
            // Only the count of bytes freed may change: it believes the caller.
            assert_eq!(
                blocks(parent.stats()),
                blocks(before),
                "{name}: deallocate changed nothing"
            );
            let smaller = Layout::from_size_align(100, 8).unwrap();
            // SAFETY: as above; a shrink in place leaves the memory where it is.
            let q = unsafe { (&parent).shrink(foreign, layout, smaller) }.unwrap().cast::<u8>();
            assert_eq!(q, foreign, "{name}: shrinks in place, touching nothing");
            assert_eq!(blocks(parent.stats()), blocks(before));
            assert!(intact(kept, 2), "{name}");
            // SAFETY: `foreign` is still a live allocation of `layout` in `other`.
            let bytes = unsafe { std::slice::from_raw_parts(foreign.as_ptr(), layout.size()) };
            assert!(bytes == vec![9; layout.size()], "{name}: the other chunk's data is intact");
            // SAFETY: given back to its own chunk.
            unsafe { (&other).deallocate(foreign, layout) };
        }
    }
    // And the parent's own pointer handed to the child.
    let p = (&parent).allocate(layout).unwrap().cast::<u8>();
    let before = child.stats();
    // SAFETY: deliberately the wrong allocator, as above.
    unsafe { (&child).deallocate(p, layout) };
    assert_eq!(blocks(child.stats()), blocks(before));
    assert_eq!(sibling.stats().dedicated_blocks, 0, "the sibling's large block went back");
    assert_eq!(parent.stats().dedicated_blocks, 1, "the parent's own large block is still there");
    // SAFETY: the parent's own allocation, given back to it.
    unsafe { (&parent).deallocate(own_big.cast(), big) };
    assert_eq!(parent.stats().dedicated_blocks, 0);
    drop(child);
    still_usable(&pool, &parent);
    still_usable(&pool, &sibling);
}
