//! Nested scopes (child chunks) and reset.

use crate::util::{KIB, check, scaled, small_pool};
use allocator_api2::vec::Vec;

#[test]
fn a_child_lives_inside_its_parent_and_returns_its_blocks_on_drop() {
    let pool = small_pool();
    let parent = pool.chunk();
    let mut kept: Vec<u64, _> = Vec::new_in(&parent);
    kept.extend(0..100);
    // Under Miri (an interpreted push per element) 16 KB instead of 80 KB.
    let n = scaled(10_000, 2_000);
    let parent_bytes = pool.stats().in_use_bytes;
    {
        let child = parent.child();
        let mut scratch: Vec<u64, _> = Vec::new_in(&child);
        scratch.extend(0..n); // past the child's 4 KiB first block: successors
        // The parent's collection stays usable while the child lives.
        assert!(child.stats().blocks > 1, "the child took successors");
        kept.push(scratch.iter().sum());
        assert_eq!(pool.stats().live_chunks, 2);
        assert!(pool.stats().in_use_bytes > parent_bytes);
    }
    assert_eq!(pool.stats().in_use_bytes, parent_bytes, "the child's blocks went back");
    assert_eq!(pool.stats().live_chunks, 1);
    assert_eq!(kept.len(), 101);
    assert_eq!(kept[100], (0..n).sum::<u64>());
    assert!(kept.iter().take(100).copied().eq(0..100));
}

#[test]
fn grandchildren_nest() {
    let pool = small_pool();
    let root = pool.chunk();
    let a = root.alloc(1u32);
    {
        let child = root.child();
        let b = child.alloc(2u32);
        {
            let grandchild = child.child();
            let c = grandchild.alloc(3u32);
            assert_eq!(*a + *b + *c, 6);
            assert_eq!(pool.stats().live_chunks, 3);
        }
        assert_eq!(*b, 2);
    }
    assert_eq!((*a, pool.stats().live_chunks), (1, 1));
}

#[test]
fn reset_keeps_only_the_largest_block_and_reuses_it() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    // Under Miri 16 KB: still three regular blocks.
    for i in 0..scaled(10_000u64, 2_000) {
        chunk.alloc(i);
    }
    chunk.alloc_slice_copy(&[0u8; 300 * KIB]); // a large block too
    let before = chunk.stats();
    assert!(before.blocks > 3);
    chunk.reset();
    let after = chunk.stats();
    assert_eq!((after.blocks, after.dedicated_blocks, after.used_bytes), (1, 0, 0));
    // The kept block is the largest: the large one.
    assert!(after.capacity_bytes >= 300 * KIB, "{after}");
    assert_eq!(pool.stats().in_use_bytes, after.capacity_bytes);
    // Reuse: the same work fits again without new blocks from the pool.
    let mapped = pool.stats().mmap_calls;
    for i in 0..1000u64 {
        assert_eq!(*chunk.alloc(i), i);
    }
    assert_eq!(chunk.stats().blocks, 1);
    assert_eq!(pool.stats().mmap_calls, mapped);
    check(&pool);
}
