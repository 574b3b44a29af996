//! Helpers shared by the integration tests.

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;
use perfloc::{Chunk, Pool};
use std::alloc::Layout;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;

/// A pool with small sizes so tests see top chunks and successors quickly.
pub fn small_pool() -> Pool {
    Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .build()
        .expect("valid settings")
}

/// A pool like [`small_pool`] that maps at most `limit` bytes.
pub fn limited(limit: usize) -> Pool {
    Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .limit(limit)
        .build()
        .expect("valid settings")
}

/// `normal` in a native build, `miri` under Miri, which interprets every step some
/// thousand times slower: iteration counts and sizes that keep a test's code paths (and
/// its whole suite under Miri within minutes).
pub fn scaled<T>(normal: T, miri: T) -> T {
    if cfg!(miri) { miri } else { normal }
}

/// The byte the pattern of allocation `id` has at `index`.
pub fn pattern(id: usize, index: usize) -> u8 {
    (id.wrapping_mul(31) ^ index.wrapping_mul(7)) as u8
}

/// The pattern repeats every `PERIOD` bytes: `pattern(id, i)` depends on `id` only through
/// `(id * 31) as u8` and on `i` only through `i % 256`.
const PERIOD: usize = 256;

/// One period of every pattern, by `(id * 31) as u8` (computed at compile time).
static PERIODS: [[u8; PERIOD]; 256] = {
    let mut periods = [[0u8; PERIOD]; 256];
    let mut c = 0;
    while c < 256 {
        let mut i = 0;
        while i < PERIOD {
            periods[c][i] = (c as u8) ^ (i as u8).wrapping_mul(7);
            i += 1;
        }
        c += 1;
    }
    periods
};

/// Writes into `out` the pattern of allocation `id` from its index `start` on: one period
/// from the table, then doubling copies within `out`. A handful of `memcpy`s whatever the
/// length, so filling and checking a mebibyte costs Miri (which interprets each step, and
/// splits its borrow-tracking state at every per-byte reference) almost nothing.
fn pattern_into(out: &mut [u8], id: usize, start: usize) {
    let period = &PERIODS[usize::from(id.wrapping_mul(31) as u8)];
    let (n, s) = (out.len(), start % PERIOD);
    let first = n.min(PERIOD - s);
    out[..first].copy_from_slice(&period[s..s + first]);
    let second = (n - first).min(s);
    out[first..first + second].copy_from_slice(&period[..second]);
    // Past here `out[..filled]` is whole periods (first + second == PERIOD).
    let mut filled = first + second;
    while filled < n {
        let len = filled.min(n - filled);
        out.copy_within(..len, filled);
        filled += len;
    }
}

/// Fills `bytes` with the pattern of allocation `id`.
pub fn fill(bytes: &mut [u8], id: usize) {
    pattern_into(bytes, id, 0);
}

/// A fresh allocation of `len` bytes in `chunk`, filled with the pattern of allocation `id`
/// (cheaply, also under Miri, unlike `alloc_slice_fill_with` with a closure per byte).
// A chunk hands out `&mut` from `&self`, like `alloc_slice_fill_with`: the memory is fresh.
#[allow(clippy::mut_from_ref)]
pub fn patterned<'c>(chunk: &'c Chunk<'_>, len: usize, id: usize) -> &'c mut [u8] {
    let ptr = chunk.alloc_layout(Layout::array::<u8>(len).expect("a valid length"));
    // SAFETY: a fresh allocation of `len` bytes, initialised here before the slice is made,
    // and borrowed from `chunk` for as long as the slice lives.
    let bytes = unsafe {
        ptr.as_ptr().write_bytes(0, len);
        std::slice::from_raw_parts_mut(ptr.as_ptr(), len)
    };
    fill(bytes, id);
    bytes
}

/// True when `bytes` still hold the pattern of allocation `id`.
pub fn intact(bytes: &[u8], id: usize) -> bool {
    intact_from(bytes, id, 0)
}

/// True when `bytes` hold the pattern of allocation `id` from its index `start` on (as the
/// tail of an allocation does), compared a tile of up to 64 KiB at a time (one `memcmp`).
pub fn intact_from(bytes: &[u8], id: usize, start: usize) -> bool {
    const TILE: usize = 256 * PERIOD;
    if bytes.len() <= PERIOD {
        let mut expected = [0u8; PERIOD];
        pattern_into(&mut expected[..bytes.len()], id, start);
        return bytes == &expected[..bytes.len()];
    }
    let mut tile = vec![0u8; bytes.len().min(TILE)];
    pattern_into(&mut tile, id, start);
    // `TILE` is whole periods, so the same tile fits every part.
    bytes.chunks(TILE).all(|part| part == &tile[..part.len()])
}

/// Appends `bytes` to `v` with the allocator calls of `v.extend_from_slice(bytes)` (one
/// `reserve(bytes.len())` when `v` lacks room: the same capacity, the same `grow`), copied
/// in one go. allocator-api2 0.2's `extend_from_slice`, `resize` and `extend` write one
/// element at a time, which Miri interprets about 500 times slower (256 KiB: 117 s against
/// 0.26 s).
pub fn append<A: Allocator>(v: &mut Vec<u8, A>, bytes: &[u8]) {
    v.reserve(bytes.len());
    let len = v.len();
    // SAFETY: `reserve` made room for `bytes.len()` more bytes past `len`, and `bytes` is
    // not inside `v`'s spare capacity (which nothing else can reference).
    unsafe {
        v.as_mut_ptr().add(len).copy_from_nonoverlapping(bytes.as_ptr(), bytes.len());
        v.set_len(len + bytes.len());
    }
}

/// Appends `n` copies of `byte` to `v`, as [`append`] does.
pub fn append_filled<A: Allocator>(v: &mut Vec<u8, A>, byte: u8, n: usize) {
    append(v, &vec![byte; n]);
}

/// True when every byte of `bytes` is `byte`, compared 4 KiB at a time (`memcmp`; a loop
/// per byte takes Miri 35 s for 256 KiB).
pub fn all_bytes(bytes: &[u8], byte: u8) -> bool {
    const TILE: usize = 4 * KIB;
    bytes.chunks(TILE).all(|part| part == &[byte; TILE][..part.len()])
}

/// Asserts the pool's bookkeeping is consistent.
pub fn check(pool: &Pool) {
    pool.check().unwrap_or_else(|e| panic!("pool invariant broken: {e}"));
}

/// A small deterministic random number generator (xorshift64) for test workloads.
pub fn rng(mut seed: u64) -> impl FnMut() -> usize {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    }
}

#[test]
fn fill_and_intact_follow_the_pattern_byte_for_byte() {
    let long = scaled(70_000, 700); // natively past one 64 KiB tile of `intact_from`
    for (id, len) in [(0, 0), (1, 1), (7, 255), (8, 256), (9, 257), (1000, 3000), (3, long)] {
        let mut bytes = vec![0u8; len];
        fill(&mut bytes, id);
        assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(id, i)), "{id} {len}");
        assert!(intact(&bytes, id));
        for start in [0, 1, 255, 300, len / 2, len].into_iter().filter(|&s| s <= len) {
            assert!(intact_from(&bytes[start..], id, start), "{id} {len} {start}");
            let mut copy = bytes[start..].to_vec();
            pattern_into(&mut copy, id, start);
            assert_eq!(copy, bytes[start..], "{id} {len} {start}");
        }
        if len > 0 {
            bytes[len - 1] ^= 1;
            assert!(!intact(&bytes, id));
        }
    }
}
