//! Process chunks: first block, successor doubling, contents, return of blocks on drop.

use crate::util::{KIB, MIB, check, fill, intact, scaled, small_pool};
use std::alloc::Layout;

#[test]
fn a_chunk_starts_with_one_block_of_the_first_block_size() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.capacity_bytes, stats.used_bytes), (1, 4 * KIB, 0));
    assert_eq!(pool.stats().in_use_bytes, 4 * KIB);
    assert_eq!(pool.stats().live_chunks, 1);
}

#[test]
fn successors_double_so_a_mebibyte_takes_a_logarithmic_number_of_blocks() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut total = 0;
    while total < MIB {
        chunk.alloc([0u8; 1024]);
        total += 1024;
    }
    let stats = chunk.stats();
    // Successors double up to `max_block_size` (64 KiB), then stay there: 4 + 4 + 8 + 16 +
    // 32 KiB, then 64 KiB blocks: 1 MiB takes 20 blocks and leaves less than one empty.
    assert!(stats.blocks <= 21, "{stats}");
    assert_eq!(stats.dedicated_blocks, 0);
    assert!(stats.capacity_bytes < MIB + 64 * KIB + 21 * 1024, "{stats}");
    assert!(stats.used_bytes >= MIB);

    // Without a cap: 4 + 4 + 8 + ... + 1024 KiB = 2044 KiB holds 1 MiB: 10 blocks.
    let pool = perfloc::Pool::builder()
        .first_top_chunk_size(64 * KIB)
        .first_block_size(4 * KIB)
        .max_block_size(usize::MAX)
        .build()
        .unwrap();
    let chunk = pool.chunk();
    for _ in 0..1024 {
        chunk.alloc([0u8; 1024]);
    }
    let stats = chunk.stats();
    assert!(stats.blocks <= 10, "{stats}");
    assert!(stats.capacity_bytes < 4 * MIB, "{stats}");
}

#[test]
fn one_huge_allocation_does_not_inflate_the_next_successor() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc_slice_copy(&[1u8; 4000]); // fills the 4 KiB first block
    chunk.alloc_slice_copy(&vec![2u8; 2 * MIB]); // a large block of its own
    let before = chunk.stats();
    assert_eq!((before.blocks, before.dedicated_blocks), (2, 1));
    chunk.alloc_slice_copy(&[3u8; 100]); // needs a regular successor
    let after = chunk.stats();
    assert_eq!(after.blocks, 3);
    assert_eq!(after.capacity_bytes - before.capacity_bytes, 4 * KIB, "the first successor's size");
}

#[test]
fn contents_of_every_allocation_stay_intact_until_drop() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut allocations = Vec::new();
    for id in 0..scaled(3000usize, 400) {
        let size = (id * 37) % 3000 + 1;
        let align = 1 << (id % 8);
        let layout = Layout::from_size_align(size, align).unwrap();
        let ptr = chunk.alloc_layout(layout);
        assert_eq!(ptr.as_ptr() as usize % align, 0);
        // SAFETY: a fresh allocation of `size` bytes that nothing else uses.
        let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), size) };
        fill(bytes, id);
        allocations.push(bytes);
    }
    for (id, bytes) in allocations.iter().enumerate() {
        assert!(intact(bytes, id), "allocation {id} was overwritten");
    }
    let mut ranges: Vec<(usize, usize)> =
        allocations.iter().map(|b| (b.as_ptr() as usize, b.len())).collect();
    ranges.sort_unstable();
    assert!(ranges.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0), "allocations overlap");
}

#[test]
fn dropping_a_chunk_returns_all_its_blocks() {
    let pool = small_pool();
    {
        let chunk = pool.chunk();
        // Under Miri 80 KB: still five regular blocks.
        for i in 0..scaled(100_000u64, 10_000) {
            chunk.alloc(i);
        }
        chunk.alloc_slice_copy(&vec![0u8; 300 * KIB]);
        assert!(chunk.stats().blocks > 5);
        let data = 300 * KIB + scaled(800_000, 80_000);
        assert!(pool.stats().in_use_bytes > data, "{}", pool.stats());
    }
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0));
    assert_eq!(stats.free_bytes, stats.mapped_bytes);
    check(&pool);
}
