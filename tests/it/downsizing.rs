//! Downsizing: memory above `retain` goes back to the OS after `decay`, or at once with
//! `trim`; steady traffic does not thrash. (Resident-set measurements are in
//! `tests/resident.rs`, a binary of their own so other tests do not disturb them.)

use crate::util::{KIB, MIB, check, scaled};
use perfloc::{Chunk, Pool};
use std::time::{Duration, Instant};

fn pool(retain: usize, decay: Duration) -> Pool {
    Pool::builder()
        .first_top_chunk_size(256 * KIB)
        .first_block_size(4 * KIB)
        .retain(retain)
        .decay(decay)
        .build()
        .unwrap()
}

/// Holds `total` bytes across chunks of `per_chunk` bytes each, written so they are resident.
fn spike(pool: &Pool, total: usize, per_chunk: usize) -> Vec<Chunk<'_>> {
    (0..total / per_chunk)
        .map(|i| {
            let chunk = pool.chunk();
            let len = per_chunk - 64;
            let ptr = chunk.alloc_layout(std::alloc::Layout::array::<u8>(len).unwrap());
            // SAFETY: a fresh allocation of `len` bytes (one `memset`, cheap under Miri too).
            unsafe { ptr.as_ptr().write_bytes(i as u8, len) };
            chunk
        })
        .collect()
}

/// Under Miri, where making and dropping a chunk costs thousands of interpreted steps, the
/// big spikes come in a quarter as many chunks, four times as large.
fn big(per_chunk: usize) -> usize {
    scaled(per_chunk, 4 * per_chunk)
}

/// The `decay` of the tests that wait for it. Under Miri, whose clock (in isolation) ticks
/// a fixed few microseconds per interpreted step, a longer one: the steps of dropping a
/// spike must take well under `decay` there too.
fn decay() -> Duration {
    scaled(Duration::from_millis(200), Duration::from_secs(2))
}

/// One small request: a chunk with a few KiB in it.
fn small_request(pool: &Pool, n: usize) {
    let chunk = pool.chunk();
    let words = scaled(2000, 200); // under Miri a request in well under a millisecond of its clock
    let v = chunk.alloc_slice_fill_with(words + n % words, |i| i as u32);
    assert_eq!(v[1], 1);
}

#[test]
fn trim_gives_back_everything_above_retain_at_once() {
    let pool = pool(MIB, Duration::MAX);
    drop(spike(&pool, 64 * MIB, big(MIB)));
    let before = pool.stats();
    assert!(before.mapped_bytes >= 64 * MIB);
    assert_eq!(before.munmap_calls, 0, "decay MAX: nothing goes back by itself");
    let released = pool.trim();
    let after = pool.stats();
    assert!(released >= 62 * MIB, "{released}");
    assert_eq!(after.released_bytes, released as u64);
    assert!(after.mapped_bytes - after.purged_bytes <= MIB + 256 * KIB, "{after}");
    assert!(after.munmap_calls > 0);
    assert_eq!(after.peak_mapped_bytes, before.mapped_bytes);
    assert_eq!(pool.trim(), 0, "nothing left to give back");
    check(&pool);
    // The pool keeps working, reusing what is left before mapping again.
    drop(spike(&pool, 8 * MIB, big(MIB)));
    check(&pool);
}

#[test]
fn a_decay_longer_than_the_process_has_lived_gives_nothing_back_yet() {
    let years = |n: u64| Duration::from_secs(n * 365 * 24 * 3600);
    for decay in [Duration::MAX, Duration::from_secs(u64::MAX), years(100), years(1)] {
        let pool = pool(0, decay);
        drop(spike(&pool, 4 * MIB, big(MIB)));
        // Steady traffic after the spike gives the policy its turns.
        for n in 0..scaled(64, 8) {
            small_request(&pool, n);
        }
        let stats = pool.stats();
        assert_eq!(stats.released_bytes, 0, "decay {decay:?}: {stats}");
        assert_eq!((stats.munmap_calls, stats.madvise_calls), (0, 0), "decay {decay:?}");
        assert!(pool.trim() >= 3 * MIB, "trim still gives back at once");
        check(&pool);
    }
}

#[test]
fn unused_top_chunks_go_largest_first_and_what_covers_retain_stays() {
    let pool = pool(MIB, Duration::MAX);
    drop(spike(&pool, 32 * MIB, big(256 * KIB)));
    let sizes = pool.top_chunk_sizes();
    assert!(sizes.len() >= 6, "{sizes:?}");
    pool.trim();
    // 16, 8, 4, 2 MiB go; then 1 MiB stays (without it less than retain would be ready),
    // and 512 and 256 KiB go as the 1 MiB one covers retain on its own.
    assert_eq!(pool.top_chunk_sizes(), [MIB]);
    assert_eq!(pool.stats().munmap_calls as usize, sizes.len() - 1);
    // Mapping restarts from twice the largest top chunk left.
    let hold = spike(&pool, 4 * MIB, big(256 * KIB));
    assert_eq!(pool.top_chunk_sizes()[1], 2 * MIB);
    drop(hold);
    check(&pool);
}

#[test]
fn free_blocks_in_a_top_chunk_still_in_use_are_purged() {
    let pool = pool(0, Duration::MAX);
    let mut chunks = spike(&pool, 16 * MIB, 256 * KIB);
    let keeper = chunks.pop().expect("the newest chunk lives in the largest top chunk");
    drop(chunks);
    let mapped = pool.stats().mapped_bytes;
    let released = pool.trim();
    let stats = pool.stats();
    assert!(stats.purged_bytes > 0 && stats.madvise_calls > 0, "{stats}");
    assert!(released >= stats.purged_bytes);
    assert!(stats.mapped_bytes < mapped, "unused top chunks went");
    let held = stats.top_chunk_stats.iter().find(|t| t.in_use_bytes > 0).expect("one in use");
    assert_eq!(held.purged_bytes, held.free_bytes - held.free_bytes % 4096, "{stats}");
    check(&pool);
    // Purged memory is reused without a system call, and reads back what is written.
    let mmaps = pool.stats().mmap_calls;
    let again = spike(&pool, held.free_bytes / 2, 64 * KIB);
    assert_eq!(pool.stats().mmap_calls, mmaps);
    assert!(pool.stats().purged_bytes < stats.purged_bytes);
    check(&pool);
    drop((keeper, again));
}

#[test]
fn zero_decay_gives_memory_back_as_soon_as_it_is_free() {
    let pool = pool(0, Duration::ZERO);
    let chunks = spike(&pool, 16 * MIB, MIB);
    assert!(pool.stats().mapped_bytes >= 16 * MIB);
    drop(chunks);
    let stats = pool.stats();
    assert_eq!(stats.mapped_bytes - stats.purged_bytes, 0, "{stats}");
    assert!(stats.released_bytes >= 16 * MIB as u64);
    check(&pool);
}

#[test]
fn memory_above_retain_goes_back_after_decay_under_steady_traffic() {
    let decay = decay();
    let pool = pool(2 * MIB, decay);
    let chunks = spike(&pool, 64 * MIB, big(MIB));
    // The spike's blocks are freed after this instant.
    let freed = Instant::now();
    drop(chunks);
    let mut n = 0;
    // Within decay the spike's memory stays: it may be needed again.
    while freed.elapsed() < decay / 2 {
        small_request(&pool, n);
        n += 1;
    }
    let mapped = pool.stats().mapped_bytes;
    // Unless the test thread was stalled past `decay` (under ASan, beside the 64-thread
    // tests, it can be), after which giving the memory back is right.
    if freed.elapsed() < decay {
        assert!(mapped >= 64 * MIB, "{}", pool.stats());
    }
    // Then for a decay and a half, and for 256 requests more (64 under Miri, where they
    // are slow) once the spike's memory has been free for `decay` and a quarter: the
    // policy runs at most once per `decay / 4`, on one release in 64 of a thread while the
    // pool has memory to give back, so it runs among those requests or has run since the
    // memory was free for `decay`, however long the thread was stalled on the way.
    let mut late = 0;
    while freed.elapsed() < decay + decay / 2 || late < scaled(256, 64) {
        if freed.elapsed() >= decay + decay / 4 {
            late += 1;
        }
        small_request(&pool, n);
        n += 1;
    }
    let stats = pool.stats();
    // Demand is a few KiB: what stays ready is retain plus at most a quarter of slack.
    assert!(stats.mapped_bytes - stats.purged_bytes <= 2 * MIB + MIB, "{stats}");
    assert!(stats.munmap_calls > 0);
    check(&pool);
}

#[test]
fn steady_traffic_after_a_spike_does_not_map_and_unmap_in_a_loop() {
    // Natively the steady traffic below runs for a few `decay`s of some 20,000 cycles each.
    // Under Miri a cycle takes some 50 ms of its clock (a few hundred cycles in all), so a
    // longer decay keeps the ratio of a request's lifetime to `decay` small there too.
    let decay = scaled(Duration::from_millis(200), Duration::from_secs(20));
    let pool = pool(MIB, decay);
    drop(spike(&pool, 64 * MIB, big(MIB)));
    // Recovery: steady traffic until the spike's memory is gone (under Miri, where three
    // such decays would take millions of steps, `trim` does it).
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < 3 * decay && !cfg!(miri) {
        small_request(&pool, n);
        n += 1;
    }
    if cfg!(miri) {
        small_request(&pool, n);
        pool.trim();
    }
    assert!(pool.stats().mapped_bytes < 8 * MIB, "{}", pool.stats());
    // The steady traffic's request sizes: up to 600 KiB, in a pattern that repeats every 64
    // requests, so every block the traffic takes is taken again within a few milliseconds
    // however slow the machine. (With a pattern that recurs more seldom than `decay`, as a
    // test thread starved of CPU under ASan sees one, the policy rightly purges the blocks
    // of its rare peaks: that is memory unused for `decay`, not a loop.)
    let size = |n: usize| 1000 + (n % 64 * 104_729) % 600_000;
    // Warm-up of the steady traffic below, for two `decay`s (a few cycles under Miri): what
    // that traffic leaves unused (the spike's top chunk, say) is given back during it, once,
    // not during the measured run.
    let warm_up = Instant::now();
    let mut ring = std::collections::VecDeque::new();
    let mut n = 0;
    while n < scaled(1000, 50) || (!cfg!(miri) && warm_up.elapsed() < 2 * decay) {
        n += 1;
        let chunk = pool.chunk();
        chunk.alloc_layout(std::alloc::Layout::from_size_align(size(n), 8).unwrap());
        ring.push_back(chunk);
        if ring.len() > 16 {
            ring.pop_front();
        }
    }
    drop(ring);
    let before = pool.stats();
    let steady = Instant::now();
    // Steady traffic whose working set (16 live requests of up to 600 KiB, ~5 MiB) is
    // larger than `retain`: each cycle the oldest request ends and a new one starts.
    let mut ring = std::collections::VecDeque::new();
    for n in 0..scaled(100_000, 200) {
        let chunk = pool.chunk();
        let layout = std::alloc::Layout::from_size_align(size(n), 8).unwrap();
        let ptr = chunk.alloc_layout(layout);
        // SAFETY: a fresh allocation of `layout.size()` bytes.
        unsafe {
            ptr.as_ptr().write(1);
            ptr.as_ptr().add(layout.size() - 1).write(2);
        }
        ring.push_back(chunk);
        if ring.len() > 16 {
            ring.pop_front();
        }
    }
    drop(ring);
    let took = steady.elapsed();
    let after = pool.stats();
    let calls = |s: &perfloc::PoolStats| s.mmap_calls + s.munmap_calls;
    assert!(calls(&after) - calls(&before) <= 4, "{took:?}\n{before}\n{after}");
    // A purge loop purges at every run of the policy, each `decay / 4`, and the traffic
    // faults the same pages back in: with the policy made to ignore `decay`, the loop gave
    // back 76 MB, five times what the pool maps, in 607 `madvise` calls in 1.2 s natively.
    // Rightful purges give each byte back once: memory the traffic left unused for
    // `decay` (the spike's leftovers, piece by piece as the traffic moves between top
    // chunks, when the warm-up did not see them all free for a whole `decay`). A slow run
    // sees more of those: under ASan one loop took 11.3 s (56 decays) and gave back
    // 10 MiB in 55 calls. So the bytes given back are bounded by what the pool maps, and
    // the calls by 8 and two more for every `decay` the loop takes.
    let given_back = after.released_bytes - before.released_bytes;
    assert!(
        given_back <= before.mapped_bytes as u64,
        "{given_back} B given back: {took:?}\n{before}\n{after}"
    );
    let allowed = 8 + 2 * (took.as_millis() / decay.as_millis()) as u64;
    let madvise = after.madvise_calls - before.madvise_calls;
    assert!(madvise <= allowed, "{madvise} > {allowed}: {took:?}\n{before}\n{after}");
    check(&pool);
}

#[test]
fn reports_show_a_line_per_top_chunk() {
    let pool = pool(0, Duration::MAX);
    let hold = spike(&pool, 2 * MIB, 256 * KIB);
    let report = pool.stats().to_string();
    assert!(
        report.contains("top chunk        size      in use        free      purged"),
        "{report}"
    );
    assert!(report.contains("#0   256.0 KiB"), "{report}");
    assert_eq!(
        report.lines().filter(|l| l.trim_start().starts_with('#')).count(),
        pool.top_chunk_sizes().len()
    );
    drop(hold);
    pool.trim();
    assert!(pool.stats().to_string().contains("given back to the OS"));
}
