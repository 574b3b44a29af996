//! AddressSanitizer sees into the pool: in an ASan build (`cfg(perfloc_asan)`, set by the
//! build script), memory the pool does not lend out is poisoned, so a read through a
//! dangling pointer into a dropped chunk, or past an allocation into a chunk's unused tail,
//! is reported, in a `Chunk` and in a `SyncChunk`. Each case runs in a child process, since
//! ASan aborts on the first report.

#![cfg(perfloc_asan)]

use perfloc::{BumpState, Pool, ProcessChunk};
use std::process::Command;

const CHILD: &str = "PERFLOC_ASAN_CHILD";

/// In the child: performs the bad read named by `case`. In the parent: runs the child and
/// returns its standard error, asserting it failed.
fn run_child(test: &str, case: fn()) -> Option<String> {
    if std::env::var_os(CHILD).is_some() {
        case();
        return None;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .expect("the child runs");
    assert!(!out.status.success(), "the bad read went unnoticed");
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The bad read into a dropped chunk of either kind.
fn read_into_a_dropped_chunk<K: BumpState>(make: for<'p> fn(&'p Pool) -> ProcessChunk<'p, K>) {
    let pool = Pool::new();
    let chunk = make(&pool);
    let dangling: *const u64 = chunk.alloc(42u64);
    drop(chunk);
    // SAFETY: none; this is the use after free ASan must catch.
    let value = unsafe { std::ptr::read_volatile(dangling) };
    println!("read {value}");
}

/// The bad read past the newest allocation, into the unused tail of a chunk of either kind.
fn read_past_the_newest_allocation<K: BumpState>(
    make: for<'p> fn(&'p Pool) -> ProcessChunk<'p, K>,
) {
    let pool = Pool::new();
    let chunk = make(&pool);
    let bytes = chunk.alloc_slice_copy(&[1u8; 64]);
    let past = bytes.as_ptr().wrapping_add(64);
    // SAFETY: none; this reads the chunk's unused tail, which ASan must catch.
    let value = unsafe { std::ptr::read_volatile(past) };
    println!("read {value}");
}

/// Runs `case` in a child and checks ASan reported it as a read of poisoned memory.
fn reported(test: &str, case: fn()) {
    if let Some(report) = run_child(test, case) {
        assert!(report.contains("AddressSanitizer: use-after-poison"), "{report}");
    }
}

#[test]
fn a_read_into_a_dropped_chunk_is_reported() {
    reported("asan::a_read_into_a_dropped_chunk_is_reported", || {
        read_into_a_dropped_chunk(Pool::chunk)
    });
}

#[test]
fn a_read_into_a_dropped_sync_chunk_is_reported() {
    reported("asan::a_read_into_a_dropped_sync_chunk_is_reported", || {
        read_into_a_dropped_chunk(Pool::sync_chunk)
    });
}

#[test]
fn a_read_past_the_newest_allocation_is_reported() {
    reported("asan::a_read_past_the_newest_allocation_is_reported", || {
        read_past_the_newest_allocation(Pool::chunk)
    });
}

#[test]
fn a_read_past_the_newest_allocation_in_a_sync_chunk_is_reported() {
    reported("asan::a_read_past_the_newest_allocation_in_a_sync_chunk_is_reported", || {
        read_past_the_newest_allocation(Pool::sync_chunk)
    });
}
