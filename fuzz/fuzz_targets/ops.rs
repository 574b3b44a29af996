//! Fuzzes the operation model of `tests/it/model.rs`: bytes decide a sequence of
//! allocations (random layouts, some large), grow/shrink/deallocate of live allocations,
//! child scopes, resets, chunks dropped in any order, trims and injected map failures,
//! over two pools. After every step: live allocations are aligned, disjoint and keep their
//! pattern; at the end the pools' figures balance and `Pool::check` passes.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run ops` (from the crate's root).

#![no_main]

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::Allocator;
use libfuzzer_sys::fuzz_target;
use perfloc::{Chunk, Pool, fault_injection};

struct Live {
    chunk: u64,
    ptr: NonNull<u8>,
    layout: Layout,
    seed: u8,
}

impl Live {
    fn bytes(&self) -> &mut [u8] {
        // SAFETY: a live allocation of `layout` in a live chunk.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
    fn fill(&self) {
        for (i, b) in self.bytes().iter_mut().enumerate() {
            *b = self.seed ^ (i as u8);
        }
    }
    fn intact(&self) -> bool {
        self.bytes().iter().enumerate().all(|(i, &b)| b == self.seed ^ (i as u8))
    }
}

/// Reads the fuzzer's bytes as small numbers.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn size(&mut self) -> Option<usize> {
        let (lo, hi, kind) = (self.byte()?, self.byte()?, self.byte()?);
        let n = usize::from(lo) | usize::from(hi) << 8;
        Some(match kind % 16 {
            0 => n << 5, // up to 2 MiB: large blocks
            1..=4 => n,  // up to 64 KiB
            _ => n % 512,
        })
    }
}

fuzz_target!(|data: &[u8]| {
    let pools = [
        Pool::builder().first_top_chunk_size(64 << 10).first_block_size(4 << 10).build().unwrap(),
        Pool::builder()
            .first_top_chunk_size(1 << 20)
            .first_block_size(perfloc::MIN_BLOCK_SIZE)
            .retain(0)
            .decay(std::time::Duration::ZERO)
            .build()
            .unwrap(),
    ];
    let mut input = Input(data);
    let mut chunks: Vec<(u64, Chunk<'_>)> = Vec::new();
    let mut live: Vec<Live> = Vec::new();
    let mut next_key = 0u64;
    while let Some(op) = input.byte() {
        let pick = usize::from(input.byte().unwrap_or(0));
        match op % 10 {
            0 => {
                if let Ok(chunk) = pools[pick % 2].try_chunk() {
                    chunks.push((next_key, chunk));
                    next_key += 1;
                }
            }
            1..=3 if !chunks.is_empty() => {
                let Some(size) = input.size() else { break };
                let align = 1usize << (input.byte().unwrap_or(0) % 13);
                let (key, chunk) = &chunks[pick % chunks.len()];
                let layout = Layout::from_size_align(size, align).unwrap();
                if let Ok(p) = chunk.try_alloc_layout(layout) {
                    let l = Live { chunk: *key, ptr: p, layout, seed: op };
                    l.fill();
                    live.push(l);
                }
            }
            4 if !live.is_empty() => {
                let Some(extra) = input.size() else { break };
                let k = pick % live.len();
                let l = &live[k];
                let chunk = &chunks.iter().find(|c| c.0 == l.chunk).unwrap().1;
                let new =
                    Layout::from_size_align(l.layout.size() + extra, l.layout.align()).unwrap();
                // SAFETY: a live allocation of `l.layout` in `chunk`.
                if let Ok(p) = unsafe { (&chunk).grow(l.ptr, l.layout, new) } {
                    let old = l.layout.size();
                    let grown = Live { chunk: l.chunk, ptr: p.cast(), layout: new, seed: l.seed };
                    assert!(
                        grown.bytes()[..old]
                            .iter()
                            .enumerate()
                            .all(|(i, &b)| b == grown.seed ^ (i as u8))
                    );
                    grown.fill();
                    live[k] = grown;
                }
            }
            5 if !live.is_empty() => {
                let k = pick % live.len();
                let l = &live[k];
                let chunk = &chunks.iter().find(|c| c.0 == l.chunk).unwrap().1;
                let new = Layout::from_size_align(l.layout.size() / 2, l.layout.align()).unwrap();
                // SAFETY: a live allocation of `l.layout` in `chunk`.
                let p = unsafe { (&chunk).shrink(l.ptr, l.layout, new) }.unwrap();
                live[k] = Live { chunk: l.chunk, ptr: p.cast(), layout: new, seed: l.seed };
                assert!(live[k].intact());
            }
            6 if !live.is_empty() => {
                let l = live.swap_remove(pick % live.len());
                let chunk = &chunks.iter().find(|c| c.0 == l.chunk).unwrap().1;
                // SAFETY: a live allocation of `l.layout` in `chunk`, given up.
                unsafe { (&chunk).deallocate(l.ptr, l.layout) };
            }
            7 if !chunks.is_empty() => {
                let k = pick % chunks.len();
                let key = chunks[k].0;
                live.retain(|l| l.chunk != key);
                if pick % 2 == 0 {
                    chunks.swap_remove(k);
                } else {
                    chunks[k].1.reset();
                }
            }
            8 if !chunks.is_empty() => {
                let Ok(child) = chunks[pick % chunks.len()].1.try_child() else { continue };
                let size = input.size().unwrap_or(0);
                if let Ok(p) = child.try_alloc_layout(Layout::from_size_align(size, 8).unwrap()) {
                    // SAFETY: a fresh allocation of `size` bytes.
                    unsafe { p.as_ptr().write_bytes(0xEE, size) };
                }
            }
            9 => match pick % 3 {
                0 => fault_injection::fail_next_maps(u32::from(input.byte().unwrap_or(1) % 4)),
                1 => fault_injection::fail_next_purges(1),
                _ => {
                    pools[pick % 2].trim();
                }
            },
            _ => {}
        }
        let mut ranges: Vec<(usize, usize)> = live
            .iter()
            .filter(|l| l.layout.size() > 0)
            .map(|l| {
                assert_eq!(l.ptr.as_ptr() as usize % l.layout.align(), 0);
                (l.ptr.as_ptr() as usize, l.layout.size())
            })
            .collect();
        ranges.sort_unstable();
        assert!(ranges.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0), "overlap");
    }
    fault_injection::clear();
    assert!(live.iter().all(Live::intact), "a pattern was overwritten");
    drop(live);
    drop(chunks);
    for pool in &pools {
        let stats = pool.stats();
        assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0));
        pool.check().unwrap();
    }
});
