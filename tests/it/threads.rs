//! Threads: Pool is Send + Sync, Chunk is Send; chunks made and dropped concurrently,
//! across threads, and in any order.

use crate::util::{check, fill, intact, patterned, scaled, small_pool};
use allocator_api2::vec::Vec;
use perfloc::{Chunk, Pool};
use std::sync::mpsc;

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn pool_is_send_and_sync_and_chunk_is_send() {
    assert_send_sync::<Pool>();
    assert_send::<Chunk<'static>>();
    assert_send_sync::<perfloc::PoolStats>();
}

#[test]
fn many_threads_make_and_drop_chunks_from_one_pool() {
    let pool = small_pool();
    // Under Miri fewer rounds, in larger steps over the same lengths (0..20,000 bytes).
    let rounds = scaled(2000usize, 20);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let pool = &pool;
            s.spawn(move || {
                for round in 0..rounds {
                    let chunk = pool.chunk();
                    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
                    let len = (round * (26_000 / rounds) + t) % 20_000;
                    v.reserve(len);
                    // SAFETY: `reserve` made room for `len` bytes, all written before
                    // `set_len` (one `memset`: `resize` writes byte by byte, slow under Miri).
                    unsafe {
                        v.as_mut_ptr().write_bytes(0, len);
                        v.set_len(len);
                    }
                    fill(&mut v, t * 100_000 + round);
                    let child = chunk.child();
                    let extra = child.alloc_slice_fill_with(round % 300, |i| i as u32);
                    assert!(intact(&v, t * 100_000 + round));
                    assert!(extra.iter().enumerate().all(|(i, &x)| x == i as u32));
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0));
    check(&pool);
}

#[test]
fn a_chunk_made_on_one_thread_can_be_dropped_on_another() {
    let pool = small_pool();
    let (tx, rx) = mpsc::channel::<(Chunk<'_>, usize)>();
    // Under Miri fewer chunks, in larger steps over the same sizes (0..5,000 bytes).
    let chunks = scaled(500, 20);
    let step = 5000 / chunks;
    std::thread::scope(|s| {
        let pool = &pool;
        s.spawn(move || {
            for id in 0..chunks {
                let chunk = pool.chunk();
                patterned(&chunk, id * step, id);
                tx.send((chunk, id)).unwrap();
            }
        });
        s.spawn(move || {
            for (chunk, id) in rx {
                assert!(chunk.stats().used_bytes >= id * step);
                drop(chunk);
            }
        });
    });
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

/// A chunk with one patterned allocation in it, remembered by address.
struct Held<'p> {
    _chunk: Chunk<'p>,
    ptr: *const u8,
    len: usize,
    id: usize,
}

impl Held<'_> {
    fn intact(&self) -> bool {
        // SAFETY: `ptr..ptr + len` is an allocation of `chunk`, alive while `chunk` is; the
        // chunk's blocks do not move when the `Chunk` value moves.
        intact(unsafe { std::slice::from_raw_parts(self.ptr, self.len) }, self.id)
    }
}

#[test]
fn chunks_may_drop_in_any_order_and_their_blocks_are_reused() {
    let pool = small_pool();
    let mut held: std::vec::Vec<Held<'_>> = std::vec::Vec::new();
    let mut next = crate::util::rng(0x2545_F491_4F6C_DD1Du64);
    for id in 0..scaled(3000, 40) {
        if held.len() > 20 || (!held.is_empty() && next() % 3 == 0) {
            let victim = held.swap_remove(next() % held.len());
            assert!(victim.intact());
            drop(victim);
            check(&pool);
        }
        let chunk = pool.chunk();
        let bytes = patterned(&chunk, next() % 50_000, id);
        let (ptr, len) = (bytes.as_ptr(), bytes.len());
        held.push(Held { _chunk: chunk, ptr, len, id });
    }
    assert!(held.iter().all(Held::intact));
    drop(held);
    assert_eq!(pool.stats().in_use_bytes, 0);
    let mapped = pool.stats().mmap_calls;
    drop(pool.chunk());
    assert_eq!(pool.stats().mmap_calls, mapped);
    check(&pool);
}

#[test]
fn the_global_pool_serves_every_thread() {
    // Under Miri fewer and shorter.
    let (chunks, step) = scaled((1000u64, 1), (20, 10));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            s.spawn(move || {
                for i in 0..chunks {
                    let len = i * step;
                    let chunk = perfloc::chunk();
                    let mut v: Vec<u64, _> = Vec::new_in(&chunk);
                    v.extend(0..len);
                    assert_eq!(
                        v.iter().sum::<u64>(),
                        len * len.saturating_sub(1) / 2,
                        "thread {t}"
                    );
                }
            });
        }
    });
    assert!(std::ptr::eq(Pool::global(), Pool::global()));
    assert!(Pool::global().stats().mmap_calls >= 1);
}

#[test]
fn steady_chunk_cycles_take_no_pool_wide_lock() {
    let pool = small_pool();
    let cycle = || {
        let chunk = pool.chunk();
        patterned(&chunk, 6000, 0); // a first block and a successor
    };
    let cycles = scaled(10_000, 50);
    for _ in 0..100 {
        cycle();
    }
    let warm = pool.stats();
    assert!(warm.cached_bytes > 0, "{warm}");
    std::thread::scope(|s| {
        // Joined, not just ended with the scope: a thread's local slots are marked gone
        // by its thread-local destructors, which a scope does not wait for.
        let threads = [
            s.spawn(|| (0..cycles).for_each(|_| cycle())),
            s.spawn(|| (0..cycles).for_each(|_| cycle())),
        ];
        for thread in threads {
            thread.join().unwrap();
        }
    });
    for _ in 0..cycles {
        cycle();
    }
    let after = pool.stats();
    // Each new thread warms its own shard once; after that no cycle reaches the pool.
    assert!(after.pool_lock_calls - warm.pool_lock_calls <= 8, "{warm}\n{after}");
    assert_eq!(after.mmap_calls, warm.mmap_calls);
    assert_eq!(after.in_use_bytes, 0);
    check(&pool);
    // trim() takes the cached blocks back too.
    pool.trim();
    assert_eq!(pool.stats().cached_bytes, 0);
    check(&pool);
}
