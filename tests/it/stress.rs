//! Concurrency stress: threads make, fill, send and drop chunks of one pool at once.
//!
//! `PERFLOC_STRESS_CYCLES` (default 20,000; under Miri 16) chunk cycles per thread, on 4
//! threads; every fourth chunk is sent to the next thread, which checks and drops it. CI runs
//! 4 × 1,000,000 in release: `PERFLOC_STRESS_CYCLES=1000000 cargo test --release --test it stress`.

use crate::util::{check, intact, patterned, scaled, small_pool};
use perfloc::Chunk;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const THREADS: usize = 4;

/// A chunk on its way to another thread, with a patterned allocation in it.
struct Sent<'p> {
    chunk: Chunk<'p>,
    ptr: *const u8,
    len: usize,
    id: usize,
}

// SAFETY: `ptr` points into memory owned by `chunk` (which is `Send`), and travels with it;
// only the receiving thread uses either.
unsafe impl Send for Sent<'_> {}

impl Sent<'_> {
    fn check_and_drop(self) {
        // SAFETY: `ptr..ptr + len` is an allocation of `chunk`, still alive.
        assert!(intact(unsafe { std::slice::from_raw_parts(self.ptr, self.len) }, self.id));
        drop(self.chunk);
    }
}

#[test]
fn threads_make_send_and_drop_chunks_of_one_pool() {
    let cycles: usize = std::env::var("PERFLOC_STRESS_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(scaled(20_000, 16));
    let pool = small_pool();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<Sent<'_>>()).unzip();
    std::thread::scope(|s| {
        for (t, receiver) in receivers.into_iter().enumerate() {
            let to_next = senders[(t + 1) % THREADS].clone();
            let pool = &pool;
            s.spawn(move || {
                for n in 0..cycles {
                    let chunk = pool.chunk();
                    let id = t * cycles + n;
                    let len = 16 + (id * 7919) % 6000;
                    let bytes = patterned(&chunk, len, id);
                    chunk.alloc_slice_fill_with(id % 300, |i| i as u32);
                    let ptr = bytes.as_ptr();
                    if n % 4 == 0 {
                        to_next
                            .send(Sent { chunk, ptr, len, id })
                            .expect("the next thread listens");
                    } else {
                        assert!(intact(bytes, id));
                    }
                    while let Ok(received) = receiver.try_recv() {
                        received.check_and_drop();
                    }
                }
                drop(to_next);
                // Drain what the previous thread still sends.
                for received in receiver {
                    received.check_and_drop();
                }
            });
        }
        drop(senders);
    });
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0), "{stats}");
    check(&pool);
}

/// Trimming under traffic: threads make and drop chunks in a big top chunk that a
/// long-lived chunk keeps mapped, while another thread trims in a loop. Each trim purges
/// what the chunks freed, and they take it back. A trim must cost what it gives back: it
/// once walked and re-purged pages already purged, holding the pool's lock all the while
/// (here 0.60 ms a cycle in release, against 0.16 ms since).
#[test]
fn trimming_while_threads_make_and_drop_chunks_costs_what_it_gives_back() {
    let cycles: usize = std::env::var("PERFLOC_TRIM_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(miri) { 4 } else { 1000 });
    let pool = perfloc::Pool::builder()
        .first_top_chunk_size(if cfg!(miri) { 1 << 20 } else { 64 << 20 })
        .retain(0)
        .build()
        .unwrap();
    let _long_lived = pool.chunk();
    // `i * 7 % 251` repeats every 251 bytes: one period, then copies (cheap under Miri).
    let mut pattern = (0..251).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>().repeat(403);
    pattern.truncate(101_000);
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let trims = std::thread::scope(|s| {
        let trimmer = s.spawn(|| {
            let mut trims = 0u64;
            while !done.load(Ordering::Relaxed) {
                pool.trim();
                trims += 1;
            }
            trims
        });
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let (pool, pattern) = (&pool, &pattern);
                s.spawn(move || {
                    for n in 0..cycles {
                        let chunk = pool.chunk();
                        let len = 1000 + ((t * cycles + n) * 7919) % 100_000;
                        let bytes = chunk.alloc_slice_copy(&pattern[..len]);
                        assert!(bytes[..] == pattern[..len], "purged while in use");
                        drop(chunk);
                        pool.trim(); // and the other thread's trimmer purges meanwhile
                    }
                })
            })
            .collect();
        workers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, Ordering::Relaxed);
        trimmer.join().unwrap()
    });
    let per_cycle = start.elapsed() / (2 * cycles as u32);
    let stats = pool.stats();
    eprintln!("{cycles} cycles x 2 threads, {trims} trims: {per_cycle:?} a cycle\n{stats}");
    assert!(stats.madvise_calls > 0, "the trims purged: {stats}");
    // Generous for a loaded machine: the bounds catch a trim whose cost grows with what is
    // already purged (64 ms a cycle was once measured at 1,000 cycles).
    let bound = match (cfg!(feature = "check-invariants"), cfg!(debug_assertions)) {
        (true, _) => 20, // the checker walks every free block after each change
        (false, true) => 5,
        (false, false) => 1,
    };
    // Not under Miri, whose clock counts interpreted steps.
    if !cfg!(miri) {
        assert!(per_cycle < Duration::from_millis(bound), "{per_cycle:?} a cycle");
    }
    check(&pool);
}
