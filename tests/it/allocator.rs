//! `&Chunk` as an allocator-api2 allocator: collections, in-place grow and shrink,
//! deallocation, alignment, zero-size layouts, foreign frees.

use crate::util::{KIB, MIB, check, fill, intact, scaled, small_pool};
use allocator_api2::alloc::Allocator;
use allocator_api2::{boxed::Box, vec::Vec};
use hashbrown::{DefaultHashBuilder, HashMap};
use std::alloc::Layout;
use std::ptr::NonNull;

#[test]
fn vec_box_and_hashmap_live_in_a_chunk() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let (n_ids, n_keys) = scaled((10_000, 5_000u64), (1_000, 300));
    let mut ids: Vec<u32, &perfloc::Chunk> = Vec::new_in(&chunk);
    ids.extend(0..n_ids);
    let mut map: HashMap<u64, String, DefaultHashBuilder, &perfloc::Chunk> =
        HashMap::new_in(&chunk);
    for i in 0..n_keys {
        map.insert(i, i.to_string());
    }
    let body = Box::new_in([7u8; 256], &chunk);
    assert!(ids.iter().copied().eq(0..n_ids));
    assert!((0..n_keys).all(|i| map[&i] == i.to_string()));
    assert!(body.iter().all(|&b| b == 7));
    assert!(pool.stats().in_use_bytes > scaled(100 * KIB, 16 * KIB));
    drop((ids, map, body));
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
}

#[test]
fn values_in_collections_are_dropped_by_the_collections() {
    use std::rc::Rc;
    let counter = Rc::new(());
    let chunk = perfloc::chunk();
    {
        let mut v: Vec<Rc<()>, _> = Vec::new_in(&chunk);
        v.extend((0..10).map(|_| Rc::clone(&counter)));
        let _b = Box::new_in(Rc::clone(&counter), &chunk);
        assert_eq!(Rc::strong_count(&counter), 12);
    }
    assert_eq!(Rc::strong_count(&counter), 1);
}

#[test]
fn reserve_exact_one_and_push_grows_in_place_until_the_block_is_full() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut v: Vec<u64, _> = Vec::new_in(&chunk);
    let mut moves = 0;
    let mut last = None;
    // Under Miri 8 KB: still a first block and successors, so moves.
    let n = scaled(100_000u64, 1_000);
    for i in 0..n {
        v.reserve_exact(1);
        v.push(i);
        let ptr = v.as_ptr();
        if last.is_some_and(|p| p != ptr) {
            moves += 1;
            // A move happens only when the block has no room for one more element.
            let stats = chunk.stats();
            assert!(stats.blocks > 1);
        }
        last = Some(ptr);
    }
    // 800 KB in blocks that double from 4 KiB: one move per block, not per push.
    assert!((1..=10).contains(&moves), "{moves} moves");
    assert!(v.iter().copied().eq(0..n));
    // In the first block (4 KiB, 24-byte header), the Vec does not move before 509 elements.
    let chunk = pool.chunk();
    let mut v: Vec<u64, _> = Vec::new_in(&chunk);
    v.push(0);
    let first = v.as_ptr();
    for i in 1..509 {
        v.reserve_exact(1);
        v.push(i);
    }
    assert_eq!(v.as_ptr(), first, "no copy while the first block has room");
    v.reserve_exact(1);
    v.push(509);
    assert_ne!(v.as_ptr(), first, "the 510th element does not fit in the first block");
}

#[test]
fn growing_the_newest_allocation_copies_nothing() {
    let chunk = perfloc::chunk();
    let a = (&chunk).allocate(Layout::new::<[u8; 16]>()).unwrap().cast::<u8>();
    // SAFETY: `a` is a live allocation of 16 bytes in `chunk`; each call passes its layout.
    unsafe {
        a.as_ptr().write_bytes(0xAB, 16);
        let grown = (&chunk).grow(a, Layout::new::<[u8; 16]>(), Layout::new::<[u8; 64]>()).unwrap();
        assert_eq!(grown.cast::<u8>(), a, "in place");
        assert_eq!(grown.len(), 64);
        let zeroed = (&chunk)
            .grow_zeroed(a, Layout::new::<[u8; 64]>(), Layout::new::<[u8; 128]>())
            .unwrap()
            .cast::<u8>();
        assert_eq!(zeroed, a);
        let bytes = std::slice::from_raw_parts(a.as_ptr(), 128);
        assert!(bytes[..16].iter().all(|&b| b == 0xAB));
        assert!(bytes[64..].iter().all(|&b| b == 0));
    }
}

#[test]
fn deallocating_the_newest_allocation_gives_its_bytes_back() {
    let chunk = perfloc::chunk();
    let layout = Layout::new::<[u64; 8]>();
    let a = chunk.alloc_layout(layout);
    let used = chunk.stats().used_bytes;
    // SAFETY: `a` is the live allocation of `layout` made just above.
    unsafe { (&chunk).deallocate(a, layout) };
    assert_eq!(chunk.stats().used_bytes, used - 64);
    assert_eq!(chunk.alloc_layout(layout), a, "the bytes are reused");
}

#[test]
fn deallocating_an_older_allocation_waits_for_the_scope() {
    let chunk = perfloc::chunk();
    let layout = Layout::new::<[u8; 32]>();
    let a = chunk.alloc_layout(layout);
    let b = chunk.alloc_layout(layout);
    // SAFETY: both are live allocations of `layout`; `b` is not touched after the write.
    unsafe {
        b.as_ptr().write_bytes(0x5A, 32);
        (&chunk).deallocate(a, layout);
    }
    let c = chunk.alloc_layout(layout);
    assert_ne!(c, a, "an older allocation is not rewound");
    assert_ne!(c, b);
    // SAFETY: `b` is still live.
    let bytes = unsafe { std::slice::from_raw_parts(b.as_ptr(), 32) };
    assert!(bytes.iter().all(|&x| x == 0x5A));
}

#[test]
fn shrinking_the_newest_allocation_gives_bytes_back_in_place() {
    let chunk = perfloc::chunk();
    let mut v: Vec<u8, _> = Vec::with_capacity_in(1000, &chunk);
    v.extend(0..100);
    let before = (v.as_ptr(), chunk.stats().used_bytes);
    v.shrink_to_fit();
    assert_eq!(v.as_ptr(), before.0);
    // Footprints are rounded up to a word: 1000 bytes, then 104.
    assert_eq!(chunk.stats().used_bytes, before.1 - (1000 - 104));
    assert!(v.iter().copied().eq(0..100));
}

#[test]
fn foreign_grow_shrink_and_free_never_clobber_other_allocations() {
    // grow/shrink/deallocate on allocations that are not the newest must not rewind the
    // bump pointer over live data (the bug class of bump-scope's GHSA-xhx6-q96x-pf9c).
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut live: std::vec::Vec<(NonNull<u8>, Layout, usize)> = std::vec::Vec::new();
    for id in 0..scaled(2000usize, 200) {
        let layout = Layout::from_size_align(8 + id % 200, 1 << (id % 5)).unwrap();
        let ptr = chunk.alloc_layout(layout);
        // SAFETY: fresh allocation of `layout`.
        fill(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), layout.size()) }, id);
        live.push((ptr, layout, id));
        let victim = (id * 7919) % live.len();
        let (p, old, vid) = live[victim];
        // SAFETY: `p` is a live allocation of `old` in `chunk`; after each call only the
        // returned pointer and layout are used.
        unsafe {
            match id % 3 {
                0 => {
                    let new = Layout::from_size_align(old.size() * 2, old.align()).unwrap();
                    let q = (&chunk).grow(p, old, new).unwrap().cast::<u8>();
                    let bytes = std::slice::from_raw_parts_mut(q.as_ptr(), new.size());
                    assert!(intact(&bytes[..old.size()], vid));
                    fill(bytes, vid);
                    live[victim] = (q, new, vid);
                }
                1 => {
                    let new = Layout::from_size_align(old.size() / 2, old.align()).unwrap();
                    let q = (&chunk).shrink(p, old, new).unwrap().cast::<u8>();
                    assert!(intact(std::slice::from_raw_parts(q.as_ptr(), new.size()), vid));
                    live[victim] = (q, new, vid);
                }
                _ => {
                    (&chunk).deallocate(p, old);
                    live.swap_remove(victim);
                }
            }
        }
        if id % 100 == 0 {
            for &(p, l, i) in &live {
                // SAFETY: live allocations of their layouts.
                let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), l.size()) };
                assert!(intact(bytes, i));
            }
        }
    }
    for &(p, l, i) in &live {
        // SAFETY: live allocations of their layouts.
        let bytes = unsafe { std::slice::from_raw_parts(p.as_ptr(), l.size()) };
        assert!(intact(bytes, i));
    }
}

#[test]
fn every_alignment_from_1_to_2_pow_20_works() {
    let pool = small_pool();
    let chunk = pool.chunk();
    for shift in 0..=20 {
        let align = 1usize << shift;
        for size in [1, 8, align, 3 * align / 2 + 1] {
            let layout = Layout::from_size_align(size, align).unwrap();
            let p = (&chunk).allocate(layout).unwrap();
            assert_eq!(p.cast::<u8>().as_ptr() as usize % align, 0, "align {align} size {size}");
            assert_eq!(p.len(), size);
            // SAFETY: fresh allocation of `size` bytes.
            let bytes = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>().as_ptr(), size) };
            fill(bytes, shift);
            assert!(intact(bytes, shift));
        }
        // A fresh chunk's first over-aligned request works too.
        let fresh = pool.chunk();
        let p = fresh.alloc_layout(Layout::from_size_align(1, align).unwrap());
        assert_eq!(p.as_ptr() as usize % align, 0);
    }
    check(&pool);
}

#[test]
fn changing_to_a_larger_alignment_moves_to_an_aligned_place() {
    let chunk = perfloc::chunk();
    let old = Layout::from_size_align(16, 1).unwrap();
    for new in [Layout::from_size_align(32, 4096).unwrap(), Layout::from_size_align(8, 64).unwrap()]
    {
        chunk.alloc(1u8); // leave the bump pointer unaligned
        let p = chunk.alloc_layout(old);
        // SAFETY: `p` is a live allocation of `old`; the result replaces it.
        let q = unsafe {
            p.as_ptr().write_bytes(9, 16);
            if new.size() > old.size() {
                (&chunk).grow(p, old, new)
            } else {
                (&chunk).shrink(p, old, new)
            }
        };
        let q = q.unwrap().cast::<u8>();
        assert_eq!(q.as_ptr() as usize % new.align(), 0, "{new:?}");
        // SAFETY: `q` holds at least 8 bytes copied from `p`.
        let bytes = unsafe { std::slice::from_raw_parts(q.as_ptr(), 8) };
        assert!(bytes.iter().all(|&b| b == 9));
    }
}

#[test]
fn zero_size_layouts_work_for_every_alignment_and_use_no_memory() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc(0u8);
    let used = chunk.stats().used_bytes;
    for i in 0..1000 {
        let layout = Layout::from_size_align(0, 1 << (i % 4)).unwrap();
        let p = (&chunk).allocate(layout).unwrap();
        assert_eq!(p.len(), 0);
        assert_eq!(p.cast::<u8>().as_ptr() as usize % layout.align(), 0);
    }
    assert!(chunk.stats().used_bytes - used < 8, "at most alignment padding");
    for shift in 13..=30 {
        // Alignments past the block: a dangling, aligned pointer, nothing mapped for it.
        let layout = Layout::from_size_align(0, 1 << shift).unwrap();
        let p = (&chunk).allocate(layout).unwrap().cast::<u8>();
        assert_eq!(p.as_ptr() as usize % (1 << shift), 0);
        let grown_layout = Layout::from_size_align(8, 8).unwrap();
        // SAFETY: `p` is a live zero-size allocation of `layout`; `grown` replaces it.
        unsafe {
            let grown = (&chunk).grow(p, layout, grown_layout).unwrap().cast::<u8>();
            grown.as_ptr().write_bytes(1, 8);
            (&chunk).deallocate(grown, grown_layout);
            (&chunk).deallocate(p, layout);
        }
    }
    zero_size_grows_at_the_bump_pointer(&chunk);
    zero_size_grows_at_the_bump_pointer(&pool.sync_chunk());
    // At most the padding of the first block was spent, and no 1 GiB-aligned block mapped.
    assert!(chunk.stats().capacity_bytes <= 12 * KIB, "{}", chunk.stats());
    assert_eq!(pool.stats().mapped_bytes, 64 * KIB);
    let v: Vec<(), _> = Vec::with_capacity_in(1000, &chunk);
    assert_eq!(v.capacity(), usize::MAX);
    check(&pool);
}

/// A zero-size allocation of a small alignment sits at the bump pointer: growing it takes
/// the room there, and the next allocation follows it.
fn zero_size_grows_at_the_bump_pointer<K: perfloc::BumpState>(
    chunk: &perfloc::ProcessChunk<'_, K>,
) {
    let layout = Layout::from_size_align(0, 8).unwrap();
    let p = chunk.allocate(layout).unwrap().cast::<u8>();
    assert_eq!(chunk.allocate(layout).unwrap().cast::<u8>(), p, "no room spent");
    let grown_layout = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: `p` is a live zero-size allocation of `layout`; `grown` replaces it.
    let grown = unsafe { chunk.grow(p, layout, grown_layout).unwrap().cast::<u8>() };
    assert_eq!(grown, p, "grown in place");
    // SAFETY: `grown` is a fresh allocation of 24 bytes.
    unsafe { grown.as_ptr().write_bytes(3, 24) };
    let next: *const u64 = chunk.alloc(5u64);
    assert_eq!(next.addr(), p.as_ptr().addr() + 24);
    // SAFETY: `grown` is live, 24 bytes, and `next` lies past it.
    assert!(unsafe { std::slice::from_raw_parts(grown.as_ptr(), 24) }.iter().all(|&b| b == 3));
}

#[test]
fn a_large_allocation_goes_back_to_the_pool_when_deallocated() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let base = pool.stats().in_use_bytes;
    let mut v: Vec<u8, _> = Vec::with_capacity_in(MIB, &chunk);
    v.push(1);
    chunk.alloc(2u64); // v is no longer the newest allocation
    assert!(pool.stats().in_use_bytes >= base + MIB);
    drop(v);
    assert_eq!(pool.stats().in_use_bytes, base, "the large block went back at once");
    assert_eq!(chunk.stats().dedicated_blocks, 0);
    check(&pool);
}

#[test]
fn a_large_allocation_grows_in_place_while_its_block_has_room() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let old = Layout::from_size_align(600 * KIB, 8).unwrap(); // in a 1 MiB block of its own
    let p = chunk.alloc_layout(old);
    chunk.alloc(0u64);
    // SAFETY: `p` is a live allocation of `old`; the grown one replaces it.
    unsafe {
        p.as_ptr().write_bytes(3, old.size());
        let q = (&chunk).grow(p, old, Layout::from_size_align(MIB, 8).unwrap()).unwrap();
        assert_eq!(q.cast::<u8>(), p);
        let r = (&chunk).grow(
            p,
            Layout::from_size_align(MIB, 8).unwrap(),
            Layout::from_size_align(2 * MIB, 8).unwrap(),
        );
        let r = r.unwrap().cast::<u8>();
        assert_ne!(r, p, "past its block it moves");
        // One comparison of the whole slice (not one per byte: slow under Miri).
        assert!(std::slice::from_raw_parts(r.as_ptr(), old.size()) == vec![3u8; old.size()]);
    }
    assert_eq!(chunk.stats().dedicated_blocks, 1, "the old large block went back");
    check(&pool);
}

/// A pointer taken from a reference to an allocation (here `alloc_str`'s `&mut str`) has
/// the provenance of that reference only. Growing the allocation in place returns a
/// pointer with the chunk's provenance, good for the whole new size, and giving it back
/// does not hand the narrow provenance to the next allocation (Miri checks both).
#[test]
fn growing_or_freeing_through_a_pointer_from_a_reference_keeps_the_chunks_provenance() {
    /// Grows the text's allocation through `narrow`, a pointer made from the `&mut str`
    /// (no longer used), fills all of it, and gives it back.
    fn exercise<A: Allocator>(alloc: A, narrow: NonNull<u8>, len: usize) {
        let old = Layout::array::<u8>(len).unwrap();
        let new = Layout::array::<u8>(len + 4 * KIB).unwrap();
        // SAFETY: `narrow` is the allocation of `old` the chunk made for the text.
        let grown = unsafe { alloc.grow(narrow, old, new) }.expect("grows").cast::<u8>();
        // SAFETY: the grown allocation holds `new.size()` bytes.
        let bytes = unsafe { std::slice::from_raw_parts_mut(grown.as_ptr(), new.size()) };
        assert_eq!(&bytes[..5], b"hello", "grow kept the data");
        bytes.fill(9);
        // SAFETY: given up here; its pointer came from the chunk.
        unsafe { alloc.deallocate(grown, new) };
    }
    let narrow = |text: &mut str| (NonNull::from(&mut *text).cast::<u8>(), text.len());
    let pool = small_pool();
    let chunk = pool.chunk();
    let (ptr, len) = narrow(chunk.alloc_str("hello"));
    exercise(&chunk, ptr, len);
    // Given back through the narrow pointer: the next allocation is still whole.
    let (ptr, len) = narrow(chunk.alloc_str("hello"));
    // SAFETY: the allocation of the text, given up here.
    unsafe { (&chunk).deallocate(ptr, Layout::array::<u8>(len).unwrap()) };
    let next = chunk.alloc_slice_fill_copy(KIB, 3u8);
    next.fill(4);
    assert!(next.iter().all(|&b| b == 4));
    // A large allocation grows in its own block.
    let (ptr, len) = narrow(chunk.alloc_str(&"hello".repeat(20 * KIB)));
    exercise(&chunk, ptr, len);
    let sync = pool.sync_chunk();
    let (ptr, len) = narrow(sync.alloc_str("hello"));
    exercise(&sync, ptr, len);
    check(&pool);
}
