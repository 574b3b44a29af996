//! Helpers shared by the integration tests.

use perfloc::Pool;

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

/// The byte the pattern of allocation `id` has at `index`.
pub fn pattern(id: usize, index: usize) -> u8 {
    (id.wrapping_mul(31) ^ index.wrapping_mul(7)) as u8
}

/// Fills `bytes` with the pattern of allocation `id`.
pub fn fill(bytes: &mut [u8], id: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = pattern(id, i);
    }
}

/// True when `bytes` still hold the pattern of allocation `id`.
pub fn intact(bytes: &[u8], id: usize) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| b == pattern(id, i))
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
