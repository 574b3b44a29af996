//! Downsizing measured in the resident set (`/proc/self/statm`): after a ~1 GiB spike the
//! resident set falls back to steady + retain + a few MiB within `decay` (plus a little),
//! and at once after `trim()`; the same for the global pool with its default settings.
//!
//! A binary of its own: other tests running in the same process would disturb the resident
//! set. Its tests take a lock so they run one at a time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use perfloc::{Chunk, Pool};

const MIB: usize = 1 << 20;
/// "A few MiB": allocator noise, test harness, page tables.
const SLACK: usize = 8 * MIB;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Resident bytes of this process.
fn resident() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize =
        statm.split_whitespace().nth(1).and_then(|f| f.parse().ok()).expect("resident pages");
    // SAFETY: sysconf only reads a system constant.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// `chunks` chunks of 4 MiB each (256 make about 1 GiB), every page written so it is
/// resident.
fn spike(pool: &Pool, chunks: usize) -> Vec<Chunk<'_>> {
    (0..chunks)
        .map(|i| {
            let chunk = pool.chunk();
            let layout = std::alloc::Layout::from_size_align(4 * MIB - 4096, 4096).unwrap();
            // SAFETY: a fresh allocation of `layout.size()` bytes, written whole.
            unsafe { chunk.alloc_layout(layout).as_ptr().write_bytes(i as u8, layout.size()) };
            chunk
        })
        .collect()
}

/// Steady small traffic: a request of about 16 KiB.
fn request(pool: &Pool) {
    let chunk = pool.chunk();
    let v = chunk.alloc_slice_fill_with(4096, |i| i as u32);
    assert_eq!(v[4095], 4095);
}

/// Runs steady traffic until the resident set is at most `bound` or `deadline` passes;
/// returns how long it took.
fn calm_until(pool: &Pool, bound: usize, deadline: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        for _ in 0..100 {
            request(pool);
        }
        if resident() <= bound {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            return Err(format!(
                "resident {} MiB > bound {} MiB after {:?}\n{}",
                resident() / MIB,
                bound / MIB,
                start.elapsed(),
                pool.stats()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
#[cfg_attr(
    miri,
    ignore = "measures the resident set in /proc/self/statm, which Miri does not model"
)]
fn the_resident_set_falls_back_within_decay_and_at_once_after_trim() {
    let _one = lock();
    let retain = 4 * MIB;
    let decay = Duration::from_millis(500);
    let pool = Pool::builder().retain(retain).decay(decay).build().unwrap();
    for _ in 0..100 {
        request(&pool);
    }
    let steady = resident();

    let chunks = spike(&pool, 256);
    assert!(resident() > steady + 900 * MIB, "the spike is resident");
    drop(chunks);
    let took =
        calm_until(&pool, steady + retain + SLACK, decay + Duration::from_millis(750)).unwrap();
    assert!(took >= decay / 2, "memory stayed for about `decay` first (went after {took:?})");
    let stats = pool.stats();
    assert!(stats.released_bytes >= 900 * MIB as u64, "{stats}");
    assert!(stats.peak_mapped_bytes >= 1024 * MIB, "{stats}");

    // Again, then trim() at once.
    drop(spike(&pool, 256));
    assert!(resident() > steady + 900 * MIB, "the spike is resident, decay has not passed");
    let released = pool.trim();
    assert!(released >= 900 * MIB, "{released}");
    assert!(
        resident() <= steady + retain + SLACK,
        "resident {} MiB right after trim",
        resident() / MIB
    );
    pool.check().unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "measures the resident set in /proc/self/statm, which Miri does not model"
)]
fn the_global_pool_gives_a_spike_back_by_itself_with_default_settings() {
    let _one = lock();
    let pool = Pool::global();
    for _ in 0..100 {
        request(pool);
    }
    let steady = resident();
    drop(spike(pool, 256));
    // Defaults: retain 4 MiB, decay 1 s; "a few seconds".
    calm_until(pool, steady + 4 * MIB + SLACK, Duration::from_secs(3)).unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "measures the resident set in /proc/self/statm, which Miri does not model"
)]
fn purging_lowers_the_resident_set_while_the_top_chunk_stays_mapped() {
    let _one = lock();
    let retain = 4 * MIB;
    // One 1 GiB top chunk holds everything, and a chunk kept alive keeps it in use: only
    // `madvise` can lower the resident set.
    let pool = Pool::builder()
        .first_top_chunk_size(1024 * MIB)
        .retain(retain)
        .decay(Duration::MAX)
        .build()
        .unwrap();
    let keeper = pool.chunk();
    keeper.alloc_slice_copy(&[1u8; 1000]);
    let steady = resident();
    let chunks = spike(&pool, 200); // 800 MiB written, all in the one top chunk
    assert_eq!(pool.stats().top_chunks, 1);
    assert!(resident() > steady + 700 * MIB);
    drop(chunks);
    pool.trim();
    let stats = pool.stats();
    assert_eq!((stats.top_chunks, stats.mapped_bytes), (1, 1024 * MIB), "the mapping stays");
    assert!(stats.purged_bytes >= 1000 * MIB && stats.madvise_calls > 0, "{stats}");
    assert!(
        resident() <= steady + retain + SLACK,
        "resident {} MiB after purging",
        resident() / MIB
    );
    assert!(keeper.alloc_slice_copy(&[2u8; 10]).iter().all(|&b| b == 2));
    drop(keeper);
    pool.check().unwrap();
}
