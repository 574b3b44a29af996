//! Local slots: each thread's own first blocks per pool. Scopes in steady state take no
//! lock; blocks come back when a thread exits, when the pool is trimmed, and chunk counts
//! stay right when chunks cross threads.

use crate::util::{KIB, check, scaled, small_pool};
use perfloc::Pool;
use std::alloc::Layout;
use std::sync::{Barrier, mpsc};

/// One scope: a chunk and a few small allocations in its first block.
fn scope(pool: &Pool) -> u64 {
    let chunk = pool.chunk();
    *chunk.alloc(7u64) + u64::from(chunk.alloc_slice_copy(&[1u8; 32])[31])
}

#[test]
fn steady_scopes_take_no_lock_at_all() {
    let pool = small_pool();
    for _ in 0..10 {
        scope(&pool);
    }
    let warm = pool.stats();
    for _ in 0..scaled(100_000, 200) {
        assert_eq!(scope(&pool), 8);
    }
    let after = pool.stats();
    assert_eq!(
        (after.pool_lock_calls, after.shard_lock_calls),
        (warm.pool_lock_calls, warm.shard_lock_calls),
        "{warm}\n{after}"
    );
    assert_eq!((after.live_chunks, after.in_use_bytes), (0, 0));
    assert_eq!(after.cached_bytes, warm.cached_bytes);
    check(&pool);
}

/// `threads` threads make and drop chunks on one pool: after a warm-up scope each, no
/// lock (pool-wide or shard) is taken for `cycles` more per thread.
fn no_lock_with(threads: usize, cycles: usize) {
    let pool = small_pool();
    let warm = Barrier::new(threads + 1);
    let measured = Barrier::new(threads + 1);
    let before = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                scope(&pool);
                warm.wait();
                measured.wait();
                for _ in 0..cycles {
                    assert_eq!(scope(&pool), 8);
                }
            });
        }
        warm.wait();
        let before = pool.stats();
        measured.wait();
        before
    });
    let now = pool.stats();
    assert_eq!(
        (now.pool_lock_calls, now.shard_lock_calls),
        (before.pool_lock_calls, before.shard_lock_calls),
        "{threads} threads x {cycles} cycles took locks:\n{before}\n{now}"
    );
    assert_eq!(now.live_chunks, 0);
    check(&pool);
}

#[test]
fn sixteen_threads_take_no_lock_in_steady_state() {
    no_lock_with(scaled(16, 3), scaled(100_000, 50));
}

#[test]
fn sixty_four_threads_take_no_lock_in_steady_state() {
    no_lock_with(scaled(64, 4), scaled(100_000, 20));
}

#[test]
fn blocks_of_an_exited_thread_come_back_on_trim() {
    let pool = small_pool();
    std::thread::scope(|s| {
        s.spawn(|| {
            let chunks: Vec<_> = (0..3).map(|_| pool.chunk()).collect();
            drop(chunks); // two first blocks stay in this thread's slot
        })
        .join()
        .unwrap();
    });
    let stats = pool.stats();
    assert!(stats.cached_bytes >= 2 * 4 * KIB, "{stats}");
    assert_eq!((stats.live_chunks, stats.in_use_bytes), (0, 0));
    check(&pool);
    pool.trim();
    let stats = pool.stats();
    assert_eq!((stats.cached_bytes, stats.live_chunks, stats.in_use_bytes), (0, 0, 0), "{stats}");
    check(&pool);
}

#[test]
fn a_trim_has_a_live_thread_hand_its_blocks_back_at_its_next_scope() {
    let pool = &small_pool();
    let (to_worker, work) = mpsc::channel::<()>();
    let (to_main, done) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            for _ in work {
                scope(pool);
                to_main.send(()).unwrap();
            }
        });
        to_worker.send(()).unwrap();
        done.recv().unwrap();
        let cached = pool.stats().cached_bytes;
        assert!(cached >= 4 * KIB, "the worker's slot keeps its first block");
        pool.trim();
        // The worker is idle: its block waits in its slot until its next scope.
        assert!(pool.stats().cached_bytes <= cached);
        to_worker.send(()).unwrap();
        done.recv().unwrap();
        // Its next scope handed the old block back (and cached the one it used).
        let stats = pool.stats();
        assert!(stats.cached_bytes <= 4 * KIB, "{stats}");
        assert!(stats.pool_lock_calls > 0);
        check(pool);
        drop(to_worker);
    });
}

#[test]
fn chunks_crossing_threads_keep_the_live_count() {
    let pool = small_pool();
    let (send, receive) = mpsc::channel();
    std::thread::scope(|s| {
        let maker = s.spawn(|| {
            for _ in 0..scaled(100, 10) {
                send.send(pool.chunk()).unwrap();
            }
            drop(send);
        });
        let dropper = s.spawn(move || {
            let mut seen = 0;
            for chunk in receive {
                assert_eq!(*chunk.alloc(1u8), 1);
                seen += 1;
            }
            seen
        });
        maker.join().unwrap();
        assert_eq!(dropper.join().unwrap(), scaled(100, 10));
    });
    let stats = pool.stats();
    assert_eq!((stats.live_chunks, stats.in_use_bytes), (0, 0), "{stats}");
    let chunk = pool.chunk();
    assert_eq!(pool.stats().live_chunks, 1);
    drop(chunk);
    pool.trim();
    assert_eq!(pool.stats().cached_bytes, 0);
    check(&pool);
}

#[test]
fn a_dropped_pool_leaves_the_threads_slots_harmless() {
    for round in 0..scaled(200, 5) {
        let pool = Pool::builder()
            .first_top_chunk_size(64 * KIB)
            .first_block_size(4 * KIB)
            .build()
            .unwrap();
        assert_eq!(scope(&pool), 8);
        assert_eq!(scope(&pool), 8, "round {round}");
        let stats = pool.stats();
        assert_eq!(stats.live_chunks, 0);
        assert!(stats.cached_bytes > 0, "the slot holds the first block");
        check(&pool);
    } // each pool drops with a block in this thread's slot
    let pool = small_pool();
    assert_eq!(scope(&pool), 8);
    check(&pool);
}

/// Runs 129 chunks that each do `work` (one in 4 is learned from, in windows of 16: two
/// windows and more), then one more; returns that one's first block size.
fn learned(pool: &Pool, work: impl Fn(&perfloc::Chunk<'_>)) -> usize {
    for _ in 0..129 {
        work(&pool.chunk());
    }
    let chunk = pool.chunk();
    let first = chunk.stats().capacity_bytes;
    work(&chunk);
    first
}

#[test]
fn a_thread_learns_the_first_block_its_chunks_need() {
    use perfloc::allocator_api2::vec::Vec;
    // A 16 KiB first block until it learns; 64 KiB at most.
    let pool = Pool::builder().learn_first_block(true).build().unwrap();
    // Allocations left unwritten: the cursors move all the same, and Miri runs it fast.
    let bytes = |n: usize| {
        move |chunk: &perfloc::Chunk<'_>| {
            chunk.alloc_layout(Layout::from_size_align(n, 8).unwrap());
        }
    };
    assert_eq!(learned(&pool, bytes(5000)), 8 * KIB, "5,000 bytes and a header: two pages");
    check(&pool);
    assert_eq!(learned(&pool, bytes(20 * KIB)), 24 * KIB, "it follows the need up");
    check(&pool);
    // What counts is how far the cursor went, not where it ends: a vector freed (its bytes
    // rewound) before the chunk drops.
    let rewound = |chunk: &perfloc::Chunk<'_>| {
        let v: Vec<u8, _> = Vec::with_capacity_in(9000, chunk);
        drop(v);
    };
    assert_eq!(learned(&pool, rewound), 12 * KIB);
    // Chunks past `max_block_size` are large ones: their first block is the configured one.
    let large = |chunk: &perfloc::Chunk<'_>| {
        for _ in 0..100 {
            chunk.alloc_layout(Layout::from_size_align(1000, 8).unwrap());
        }
    };
    assert_eq!(learned(&pool, large), 16 * KIB);
    check(&pool);
    // Learned blocks come back through the thread's local slot: no lock in steady state.
    assert_eq!(learned(&pool, bytes(5000)), 8 * KIB);
    let warm = pool.stats();
    for _ in 0..scaled(1000, 100) {
        bytes(5000)(&pool.chunk());
    }
    let after = pool.stats();
    assert_eq!(
        (after.pool_lock_calls, after.shard_lock_calls),
        (warm.pool_lock_calls, warm.shard_lock_calls),
        "{warm}\n{after}"
    );
    assert_eq!((after.live_chunks, after.in_use_bytes), (0, 0));
    check(&pool);
}

#[test]
fn a_sync_chunk_teaches_the_same() {
    let pool = Pool::builder().learn_first_block(true).build().unwrap();
    for _ in 0..129 {
        pool.sync_chunk().alloc_layout(Layout::from_size_align(20 * KIB, 8).unwrap());
    }
    assert_eq!(pool.sync_chunk().stats().capacity_bytes, 24 * KIB);
    check(&pool);
    // And off by default.
    let fixed = Pool::new();
    for _ in 0..129 {
        fixed.sync_chunk().alloc_layout(Layout::from_size_align(20 * KIB, 8).unwrap());
    }
    assert_eq!(fixed.sync_chunk().stats().capacity_bytes, 16 * KIB);
}

/// A learning pool whose thread has learned 24 KiB first blocks (whole pages, of no size
/// class) from chunks that allocate 20 KiB, and that layout.
fn learned_24_kib() -> (Pool, Layout) {
    let pool = Pool::builder().learn_first_block(true).build().unwrap();
    let need = Layout::from_size_align(20 * KIB, 8).unwrap();
    let first = learned(&pool, |chunk| {
        chunk.alloc_layout(need);
    });
    assert_eq!(first, 24 * KIB, "20 KiB and a header");
    (pool, need)
}

#[test]
fn learned_blocks_past_the_slot_stay_in_the_shard() {
    let (pool, need) = learned_24_kib();
    // A thread that keeps four chunks alive at once: two first blocks come from its local
    // slot, the other two from its shard, and none from the top chunks after a warm-up.
    let four = || {
        let chunks: Vec<_> = (0..4).map(|_| pool.chunk()).collect();
        for chunk in &chunks {
            assert_eq!(chunk.stats().capacity_bytes, 24 * KIB);
            chunk.alloc_layout(need);
        }
    };
    four();
    let warm = pool.stats();
    for _ in 0..scaled(100, 10) {
        four();
    }
    let after = pool.stats();
    assert_eq!(after.pool_lock_calls, warm.pool_lock_calls, "{warm}\n{after}");
    // Two blocks in the slot, two in the shard (beside what it held before it learned).
    assert_eq!(after.cached_bytes, warm.cached_bytes, "{warm}\n{after}");
    assert!(after.cached_bytes >= 4 * 24 * KIB, "{after}");
    check(&pool);
    // A trim gives them back to the top chunks.
    pool.trim();
    assert_eq!(pool.stats().cached_bytes, 0);
    check(&pool);
}

#[test]
fn a_learned_first_block_never_grows_in_place() {
    use perfloc::allocator_api2::vec::Vec;
    let (pool, _) = learned_24_kib();
    // A vector outgrows the first block while it is the newest allocation: it moves to a
    // successor, and the first block keeps the size the thread's slot takes back.
    let chunk = pool.chunk();
    let mut v: Vec<u8, _> = Vec::with_capacity_in(12 * KIB, &chunk);
    v.extend_from_slice(&[1; 100]);
    v.reserve_exact(28 * KIB);
    let stats = chunk.stats();
    assert_eq!(stats.blocks, 2, "{stats}");
    assert_eq!(v.len(), 100);
    drop(v);
    drop(chunk);
    let warm = pool.stats();
    assert_eq!(pool.chunk().stats().capacity_bytes, 24 * KIB);
    assert_eq!(pool.stats().pool_lock_calls, warm.pool_lock_calls, "from the slot");
    check(&pool);
}
