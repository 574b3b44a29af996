//! Model checking of the pool's concurrency with [loom](https://docs.rs/loom): the shards'
//! locks, the pool's lock, the `excess` flag, chunks dropped on another thread, threads
//! that exit with blocks in their shard, and `trim`, under every interleaving of those
//! primitives' operations up to a preemption bound.
//!
//! Compiled only with `--cfg loom` (a normal `cargo test` builds nothing here):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` overrides each model's preemption bound; `LOOM_LOG=trace` shows
//! each execution. Each model prints how many executions it explored (with `--nocapture`).
//! Loom builds skip the other tests' dev-dependencies (`cfg(not(loom))` in Cargo.toml), so
//! only this test target builds under loom.
//!
//! Under loom each thread has the shard of its loom id (the model's main thread 0, then
//! 1, 2, …), so the threads here never share a shard, as with fewer than eight threads
//! outside loom; shards meet through `stats`, `check`, `trim` and the pool draining them.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loom::sync::Arc;
use loom::thread;
use perfloc::{Chunk, Pool, PoolBuilder};

/// Runs `f` under every interleaving loom explores with at most `preemptions` preemptions
/// (`LOOM_MAX_PREEMPTIONS` overrides it), and prints how many executions that was.
fn model(name: &str, preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(preemptions));
    let bound = builder.preemption_bound;
    let start = std::time::Instant::now();
    builder.check({
        let executions = executions.clone();
        move || {
            executions.fetch_add(1, Ordering::Relaxed);
            f();
        }
    });
    println!(
        "loom model {name}: {} executions, preemption bound {bound:?}, {:.2?}",
        executions.load(Ordering::Relaxed),
        start.elapsed()
    );
}

/// A pool small enough that a chunk with one allocation of [`BIG`] bytes needs a successor
/// block: 4 KiB first blocks in a 64 KiB first top chunk.
fn small() -> PoolBuilder {
    Pool::builder().first_top_chunk_size(64 << 10).first_block_size(4 << 10)
}

/// Bytes of an allocation larger than a first block: it takes an 8 KiB successor block.
const BIG: usize = 5000;

/// Allocates `len` bytes in `chunk` and fills them with a pattern of `seed`; [`intact`]
/// checks it later (another thread writing into a block lent twice would break it).
fn fill(chunk: &Chunk<'_>, len: usize, seed: u8) -> *const u8 {
    let data = chunk.alloc_slice_fill_with(len, |i| (i as u8).wrapping_add(seed));
    data.as_ptr()
}

fn intact(ptr: *const u8, len: usize, seed: u8) -> bool {
    // SAFETY: `ptr..ptr + len` is an allocation of a chunk that the caller keeps alive.
    let data = unsafe { std::slice::from_raw_parts(ptr, len) };
    data.iter().enumerate().all(|(i, &b)| b == (i as u8).wrapping_add(seed))
}

/// One chunk's life: a first block from the pool, a successor for `BIG` bytes, dropped.
fn cycle(pool: &Pool, seed: u8) {
    let chunk = pool.chunk();
    let ptr = fill(&chunk, BIG, seed);
    assert!(intact(ptr, BIG, seed), "a block was lent twice");
    assert_eq!(chunk.stats().blocks, 2);
}

/// With no chunk alive: the bookkeeping holds, no byte is in use, no block is lost.
fn balanced(pool: &Pool) {
    pool.check().expect("pool invariants");
    let stats = pool.stats();
    assert_eq!(stats.live_chunks, 0, "{stats:?}");
    assert_eq!(stats.in_use_bytes, 0, "a block was lost: {stats:?}");
    assert_eq!(stats.free_bytes + stats.in_use_bytes, stats.mapped_bytes, "{stats:?}");
    // Every mapped byte is free in its top chunk or cached in a shard.
    let free_in_top_chunks: usize = stats.top_chunk_stats.iter().map(|top| top.free_bytes).sum();
    assert_eq!(free_in_top_chunks + stats.cached_bytes, stats.mapped_bytes, "{stats:?}");
}

/// Threads make and drop chunks on one pool: first blocks come from and go back to each
/// thread's shard (its budget, `retain / 16`, holds one 4 KiB block), successor blocks go
/// through the pool's lock.
fn threads_make_and_drop_chunks(threads: u8, cycles: u8) {
    let pool = Arc::new(small().retain(64 << 10).decay(Duration::MAX).build().unwrap());
    let threads: Vec<_> = (0..threads)
        .map(|t| {
            let pool = pool.clone();
            thread::spawn(move || {
                for round in 0..cycles {
                    cycle(&pool, t * 16 + round);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    balanced(&pool);
    assert_eq!(pool.stats().mapped_bytes, 64 << 10, "one top chunk was enough");
}

#[test]
fn two_threads_make_and_drop_chunks() {
    model("two_threads_make_and_drop_chunks", 4, || threads_make_and_drop_chunks(2, 2));
}

#[test]
fn three_threads_make_and_drop_chunks() {
    model("three_threads_make_and_drop_chunks", 3, || threads_make_and_drop_chunks(3, 2));
}

/// Every 64th release into a shard runs the downsizing policy if the pool's `excess` flag
/// (written under the pool's lock, read without it) says there is something to give back.
/// The main thread's 64th release races the other thread, whose 40 000-byte allocation
/// maps a second top chunk and so turns the flag from false (`retain` covers the first top
/// chunk) to true.
#[test]
fn shard_runs_the_policy() {
    model("shard_runs_the_policy", 4, || {
        let pool = Arc::new(small().retain(128 << 10).decay(Duration::ZERO).build().unwrap());
        // 63 releases into the main thread's shard, before any other thread runs.
        for _ in 0..63 {
            drop(pool.chunk());
        }
        let other = {
            let pool = pool.clone();
            thread::spawn(move || {
                let chunk = pool.chunk();
                let ptr = fill(&chunk, 40_000, 12);
                assert!(intact(ptr, 40_000, 12), "a block was lent twice");
            })
        };
        drop(pool.chunk()); // the 64th
        other.join().unwrap();
        balanced(&pool);
    });
}

/// A chunk made on the main thread drops on another while a third thread and the main
/// thread make and drop chunks of their own: the chunk counts of two shards, and blocks
/// taken through one shard given back through another.
#[test]
fn chunk_dropped_on_another_thread() {
    // A chunk sent to a loom thread must be `'static`, so its pool is too: a loom lazy
    // static, made anew (and dropped) in each execution. The main thread makes it before
    // spawning, so reaching it adds no ordering between the threads that spawning did not.
    loom::lazy_static! {
        static ref POOL: Pool = small().retain(64 << 10).decay(Duration::MAX).build().unwrap();
    }
    model("chunk_dropped_on_another_thread", 4, || {
        let pool: &'static Pool = &POOL;
        let chunk = pool.chunk();
        let ptr = fill(&chunk, BIG, 1) as usize;
        let dropper = thread::spawn(move || {
            assert!(intact(ptr as *const u8, BIG, 1), "a block was lent twice");
            drop(chunk);
        });
        let user = thread::spawn(move || cycle(pool, 2));
        cycle(pool, 3);
        dropper.join().unwrap();
        user.join().unwrap();
        balanced(pool);
    });
}

/// One thread makes and drops chunks while another trims: with `retain(0)` and
/// `decay(ZERO)` every release runs the downsizing policy and unmaps the idle top chunk,
/// so the chunk's blocks race with `munmap` decisions and re-mappings.
#[test]
fn trim_while_chunks_come_and_go() {
    model("trim_while_chunks_come_and_go", 4, || {
        let pool = Arc::new(small().retain(0).decay(Duration::ZERO).build().unwrap());
        let user = {
            let pool = pool.clone();
            thread::spawn(move || cycle(&pool, 3))
        };
        pool.trim();
        user.join().unwrap();
        balanced(&pool);
        pool.trim();
        let stats = pool.stats();
        assert_eq!((stats.mapped_bytes, stats.top_chunks), (0, 0), "{stats:?}");
    });
}

/// `trim` drains a shard while its thread takes and gives back blocks through it: `retain`
/// lets each shard cache a 4 KiB block, and a 40 000-byte allocation needs a 64 KiB large
/// block, so the pool maps a second top chunk (128 KiB) that `trim` unmaps.
#[test]
fn trim_drains_a_shard_in_use() {
    model("trim_drains_a_shard_in_use", 4, || {
        let pool = Arc::new(small().retain(64 << 10).decay(Duration::MAX).build().unwrap());
        let user = {
            let pool = pool.clone();
            thread::spawn(move || {
                for seed in 0..2 {
                    let chunk = pool.chunk();
                    let ptr = fill(&chunk, 40_000, seed);
                    assert!(intact(ptr, 40_000, seed), "a block was lent twice");
                }
            })
        };
        pool.trim();
        user.join().unwrap();
        balanced(&pool);
        pool.trim();
        balanced(&pool);
        let stats = pool.stats();
        assert!(stats.mapped_bytes <= 64 << 10, "trim keeps only retain: {stats:?}");
        assert_eq!(stats.cached_bytes, 0, "trim drained the shards: {stats:?}");
    });
}

/// A thread exits while its shard holds a cached block; another thread then needs every
/// byte the pool may map (`limit` = one top chunk), so the pool must drain the exited
/// thread's shard to serve it, while the main thread reads the stats.
#[test]
fn thread_exits_with_cached_blocks() {
    model("thread_exits_with_cached_blocks", 4, || {
        let pool = Arc::new(
            small().limit(64 << 10).retain(64 << 10).decay(Duration::MAX).build().unwrap(),
        );
        {
            let pool = pool.clone();
            thread::spawn(move || cycle(&pool, 4)).join().unwrap();
        }
        // Thread 1 is gone; its shard holds its 4 KiB first block.
        assert_eq!(pool.stats().cached_bytes, 4 << 10);
        let user = {
            let pool = pool.clone();
            thread::spawn(move || {
                // 4 KiB first block, 8 KiB successor, 32 KiB large block, 16 KiB successor:
                // 60 KiB, all the top chunk has but the cached 4 KiB.
                let chunk = pool.chunk();
                let a = fill(&chunk, BIG, 5);
                let b = fill(&chunk, 20_000, 6);
                let c = fill(&chunk, 10_000, 7);
                // Nothing free, nothing left to map: only thread 1's shard has a block.
                let second = pool.try_chunk().expect("the pool drains the exited thread's shard");
                assert!(intact(a, BIG, 5) && intact(b, 20_000, 6) && intact(c, 10_000, 7));
                drop(second);
            })
        };
        let stats = pool.stats();
        assert!(stats.mapped_bytes <= 64 << 10, "{stats:?}");
        assert_eq!(stats.free_bytes + stats.in_use_bytes, stats.mapped_bytes, "{stats:?}");
        user.join().unwrap();
        balanced(&pool);
        assert_eq!(pool.stats().mapped_bytes, 64 << 10);
    });
}

/// Downsizing races chunks: with `decay(ZERO)` every release into the pool purges the
/// free memory above `retain / 2` (`madvise`), while the other thread takes blocks, which
/// may be the ones being purged; `limit` (one top chunk) leaves no room to map around it.
#[test]
fn downsizing_races_chunks() {
    model("downsizing_races_chunks", 4, || {
        let pool = Arc::new(
            small().limit(64 << 10).retain(64 << 10).decay(Duration::ZERO).build().unwrap(),
        );
        let other = {
            let pool = pool.clone();
            thread::spawn(move || {
                cycle(&pool, 8);
                cycle(&pool, 9);
            })
        };
        cycle(&pool, 10);
        cycle(&pool, 11);
        other.join().unwrap();
        balanced(&pool);
        let stats = pool.stats();
        assert_eq!(stats.mapped_bytes, 64 << 10, "{stats:?}");
        assert!(stats.purged_bytes > 0, "the policy purged: {stats:?}");
    });
}

/// A block that downsizing is purging is out of the books until its `madvise` is done,
/// which runs without the pool's lock: with `retain(0)` every release purges all the free
/// memory of a top chunk still in use, and with `limit` at one top chunk a thread that
/// needs a block meanwhile must wait for the purge instead of failing.
#[test]
fn acquire_waits_for_a_purge() {
    model("acquire_waits_for_a_purge", 4, || {
        let pool =
            Arc::new(small().limit(64 << 10).retain(0).decay(Duration::ZERO).build().unwrap());
        let other = {
            let pool = pool.clone();
            thread::spawn(move || cycle(&pool, 13))
        };
        cycle(&pool, 14);
        other.join().unwrap();
        balanced(&pool);
    });
}
