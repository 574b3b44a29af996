//! Nested scopes in one chunk: `scoped`, `checkpoint` and `rewind_to` give back what was
//! allocated since, blocks included, keep what came before, and take nothing from the pool.

use crate::util::{KIB, check, intact, patterned, scaled, small_pool};
use allocator_api2::vec::Vec;
use perfloc::Pool;

/// The bytes of an allocation made before a scope, to look at after it: a scope needs the
/// chunk by `&mut`, so no borrow of them may live across it.
struct Kept(*const u8, usize);

impl Kept {
    fn of(bytes: &[u8]) -> Kept {
        Kept(bytes.as_ptr(), bytes.len())
    }

    fn intact(&self, id: usize) -> bool {
        // SAFETY: the chunk keeps memory allocated before a checkpoint when it rewinds, and
        // the chunk is alive.
        intact(unsafe { std::slice::from_raw_parts(self.0, self.1) }, id)
    }
}

#[test]
fn a_scope_gives_back_its_bytes_and_blocks_and_keeps_what_came_before() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    let before = Kept::of(patterned(&chunk, 100, 1));
    let big_before = Kept::of(patterned(&chunk, 200 * KIB, 2)); // a large block
    let stats_before = chunk.stats();
    let in_use_before = pool.stats().in_use_bytes;
    let sum = chunk.scoped(|c| {
        let mut v: Vec<u64, _> = Vec::new_in(&*c);
        v.extend(0..scaled(20_000, 2_000)); // successors
        let large = patterned(c, 300 * KIB, 3); // a large block of its own
        assert!(intact(large, 3));
        assert!(c.stats().blocks > stats_before.blocks + 1);
        v.iter().sum::<u64>()
    });
    assert_eq!(sum, (0..scaled(20_000u64, 2_000)).sum());
    let after = chunk.stats();
    assert_eq!(
        (after.blocks, after.dedicated_blocks, after.used_bytes, after.capacity_bytes),
        (
            stats_before.blocks,
            stats_before.dedicated_blocks,
            stats_before.used_bytes,
            stats_before.capacity_bytes
        )
    );
    assert_eq!(pool.stats().in_use_bytes, in_use_before, "the scope's blocks went back");
    assert!(before.intact(1) && big_before.intact(2));
    check(&pool);
    // The chunk goes on from where it was: the next allocation takes the scope's bytes.
    let next = chunk.alloc(7u64) as *const u64;
    assert_eq!(chunk.stats().used_bytes, stats_before.used_bytes + 8);
    assert!(!next.is_null());
}

#[test]
fn a_scope_in_the_current_block_takes_nothing_from_the_pool() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    chunk.alloc(1u8);
    let stats = pool.stats();
    for i in 0..100u64 {
        let got = chunk.scoped(|c| *c.alloc(i) + c.alloc_slice_copy(&[i; 4])[3]);
        assert_eq!(got, 2 * i);
    }
    let now = pool.stats();
    assert_eq!(
        (now.in_use_bytes, now.live_chunks, now.pool_lock_calls),
        (stats.in_use_bytes, stats.live_chunks, stats.pool_lock_calls)
    );
    assert_eq!(chunk.stats().used_bytes, 8);
}

#[test]
fn scopes_nest_and_each_keeps_its_parents_allocations() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    let outer_used = chunk.scoped(|outer| {
        let a = Kept::of(patterned(outer, 3 * KIB, 10));
        let used = outer.stats().used_bytes;
        outer.scoped(|inner| {
            let b = Kept::of(patterned(inner, 50 * KIB, 11)); // a large block
            assert!(b.intact(11));
            inner.scoped(|innermost| patterned(innermost, 100 * KIB, 12).len());
            assert!(b.intact(11));
        });
        assert!(a.intact(10));
        assert_eq!(outer.stats().used_bytes, used);
        assert_eq!(outer.stats().blocks, 1);
        used
    });
    assert!(outer_used >= 3 * KIB);
    assert_eq!(chunk.stats().used_bytes, 0);
    check(&pool);
}

#[test]
fn repeated_scopes_do_not_inflate_the_successor_sizes() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    for _ in 0..scaled(200, 20) {
        chunk.scoped(|c| patterned(c, 6 * KIB, 0).len());
    }
    // Each scope needed one successor of the same size: without the successor size put
    // back, they would double every time.
    let peak = chunk.stats().peak_bytes;
    assert!(peak <= 4 * KIB + 8 * KIB, "peak {peak}");
}

#[test]
fn a_panic_inside_a_scope_rewinds_and_the_chunk_keeps_working() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    let kept = Kept::of(patterned(&chunk, 64, 5));
    let in_use = pool.stats().in_use_bytes;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        chunk.scoped(|c| {
            patterned(c, 100 * KIB, 6);
            panic!("a handler failed");
        })
    }));
    assert!(result.is_err());
    assert_eq!(pool.stats().in_use_bytes, in_use);
    assert_eq!(chunk.stats().used_bytes, 64);
    assert!(kept.intact(5));
    assert!(intact(patterned(&chunk, 1000, 7), 7));
    check(&pool);
}

#[test]
fn rewind_to_goes_back_to_the_checkpoint_in_both_kinds() {
    let pool = small_pool();
    let mut chunk = pool.sync_chunk();
    chunk.alloc(1u64);
    let mark = chunk.checkpoint();
    std::thread::scope(|s| {
        for t in 0..2 {
            let chunk = &chunk;
            s.spawn(move || chunk.alloc_slice_fill_with(scaled(10_000, 100), |i| i + t).len());
        }
    });
    assert!(chunk.stats().used_bytes > 8);
    chunk.rewind_to(mark);
    assert_eq!((chunk.stats().used_bytes, chunk.stats().blocks), (8, 1));
    // The same checkpoint again: nothing was allocated since.
    chunk.rewind_to(mark);
    assert_eq!(chunk.stats().used_bytes, 8);
    check(&pool);
}

pub fn panics(f: impl FnOnce()) -> String {
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
    err.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or(err.downcast_ref::<String>().cloned())
        .unwrap()
}

#[test]
fn a_foreign_or_stale_checkpoint_is_refused_and_changes_nothing() {
    let pool = small_pool();
    let mut chunk = pool.chunk();
    let other = pool.chunk();
    chunk.alloc(1u32);
    let used = chunk.stats().used_bytes;
    let message = panics(|| chunk.rewind_to(other.checkpoint()));
    assert!(message.contains("another chunk"), "{message}");
    assert_eq!(chunk.stats().used_bytes, used);

    // Stale: its block went back to the pool when an earlier checkpoint was rewound to.
    let early = chunk.checkpoint();
    patterned(&chunk, 3 * KIB, 0);
    patterned(&chunk, 3 * KIB, 0); // a successor
    let late = chunk.checkpoint();
    chunk.rewind_to(early);
    panics(|| chunk.rewind_to(late));
    // Stale: the chunk was reset and kept another block.
    patterned(&chunk, 100 * KIB, 0);
    chunk.reset();
    panics(|| chunk.rewind_to(early));
    assert_eq!(*chunk.alloc(3u8), 3);
    check(&pool);
}

#[test]
fn a_scope_whose_closure_swaps_the_chunk_leaves_both_chunks_whole() {
    let pool = Pool::new();
    let mut chunk = pool.chunk();
    let mut other = pool.chunk();
    other.alloc_slice_copy(&[9u8; 100]);
    chunk.scoped(|c| {
        c.alloc(1u8);
        std::mem::swap(c, &mut other);
    });
    // `chunk` is the other chunk now, untouched by the rewind; `other` keeps the scope's byte.
    assert_eq!(chunk.stats().used_bytes, 104);
    assert_eq!(other.stats().used_bytes, 8);
    drop((chunk, other));
    assert_eq!(pool.stats().live_chunks, 0);
    check(&pool);
}
