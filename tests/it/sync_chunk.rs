//! `SyncChunk`: a process chunk shared between threads and held across `.await` in tasks
//! of a multi-thread runtime. Futures holding collections in it are `Send`; threads
//! allocating from one chunk at once get disjoint, intact memory, successors and large
//! blocks included; errors, in-place resizing, large blocks, reset and child scopes
//! behave as for `Chunk`.

use crate::util::{
    KIB, MIB, all_bytes, append_filled, check, fill, intact, limited, rng, small_pool,
};
use allocator_api2::alloc::Allocator;
use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashMap};
use perfloc::{Pool, SyncChunk};
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::{Barrier, Mutex};

/// Iterations, scaled down under Miri.
const fn scaled(normal: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { normal }
}

fn assert_send<T: Send>(_: &T) {}
fn assert_sync<T: Sync>() {}

#[test]
fn sync_chunk_and_its_collections_are_send_and_sync() {
    assert_sync::<SyncChunk<'static>>();
    assert_sync::<Vec<u32, &SyncChunk<'static>>>();
    assert_sync::<HashMap<u32, u32, DefaultHashBuilder, &SyncChunk<'static>>>();
    assert_sync::<Box<u32, &SyncChunk<'static>>>();
}

#[test]
fn a_future_holding_collections_in_a_sync_chunk_across_an_await_is_send() {
    let future = async {
        let chunk = perfloc::sync_chunk();
        let mut v: Vec<u32, &SyncChunk> = Vec::new_in(&chunk);
        let mut m: HashMap<u32, u32, DefaultHashBuilder, &SyncChunk> = HashMap::new_in(&chunk);
        let b = Box::new_in(7u64, &chunk);
        v.push(1);
        m.insert(1, 2);
        std::future::ready(()).await;
        v.push(2);
        m.insert(3, 4);
        (v.len(), m.len(), *b)
    };
    assert_send(&future);
}

#[cfg_attr(
    miri,
    ignore = "1,000 tasks on a multi-thread tokio runtime: far too slow under Miri (not tried)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tokio_tasks_keep_collections_in_their_chunks_across_awaits() {
    const TASKS: usize = 1000;
    // A static rather than a leaked box: LeakSanitizer sees no leak.
    static POOL: Pool = Pool::new();
    let pool = &POOL;
    let handles: std::vec::Vec<_> = (0..TASKS)
        .map(|t| {
            tokio::spawn(async move {
                let chunk = pool.sync_chunk();
                let mut v: Vec<u32, &SyncChunk> = Vec::new_in(&chunk);
                let mut m: HashMap<u32, u32, DefaultHashBuilder, &SyncChunk> =
                    HashMap::new_in(&chunk);
                for i in 0..50u32 {
                    v.push(t as u32 * 1000 + i);
                    m.insert(i, t as u32);
                    if i % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                let big = chunk.alloc_slice_fill_with(2000, |i| (t + i) as u32); // successors
                tokio::task::yield_now().await;
                let ok = v.iter().enumerate().all(|(i, &x)| x == t as u32 * 1000 + i as u32)
                    && m.len() == 50
                    && m.values().all(|&x| x == t as u32)
                    && big.iter().enumerate().all(|(i, &x)| x == (t + i) as u32);
                (t, ok)
            })
        })
        .collect();
    for (t, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap(), (t, true), "task {t}");
    }
    assert_eq!(pool.stats().live_chunks, 0);
    check(pool);
}

/// Bytes that surely need a large block in `shared_by` (successors stay smaller there).
const LARGE: usize = scaled(64 * KIB, 16 * KIB);

/// Each thread's first allocation: far above the first successors' size. All threads make
/// it between two barriers, before any thread's small allocations let successors double,
/// so the chunk makes that many large blocks concurrently.
const FIRST: usize = scaled(MIB, 64 * KIB);

/// `threads` threads allocate from one chunk at once, with sizes from a word to large
/// blocks; every allocation is patterned, then checked intact and disjoint from the others.
fn shared_by(threads: usize) {
    let pool = small_pool();
    let chunk = pool.sync_chunk();
    let per_thread = scaled(2000, 96 / threads);
    let all = Mutex::new(std::vec::Vec::new());
    let (before_first, after_first) = (Barrier::new(threads), Barrier::new(threads));
    std::thread::scope(|s| {
        for t in 0..threads {
            let (chunk, all) = (&chunk, &all);
            let (before_first, after_first) = (&before_first, &after_first);
            s.spawn(move || {
                let mut next = rng(t as u64 + 1);
                let mut mine = std::vec::Vec::new();
                for i in 0..per_thread {
                    if i < 2 {
                        [before_first, after_first][i].wait();
                    }
                    let id = t * per_thread + i;
                    let len = match next() % 100 {
                        _ if i == 0 => FIRST,             // large: see `FIRST`
                        0 => LARGE + next() % LARGE,      // a large block
                        1..=10 => 1 + next() % (4 * KIB), // forces successors
                        _ => 1 + next() % 64,
                    };
                    let align = 1 << (next() % 5);
                    let layout = Layout::from_size_align(len, align).unwrap();
                    let ptr = chunk.alloc_layout(layout);
                    assert_eq!(ptr.as_ptr() as usize % align, 0);
                    // SAFETY: a fresh allocation of `len` bytes, ours until the chunk drops.
                    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) };
                    fill(bytes, id);
                    mine.push((&*bytes, id));
                }
                all.lock().unwrap().extend(mine);
            });
        }
    });
    let mut all = all.into_inner().unwrap();
    assert_eq!(all.len(), threads * per_thread);
    for &(bytes, id) in &all {
        assert!(intact(bytes, id), "allocation {id} was overwritten");
    }
    all.sort_unstable_by_key(|(bytes, _)| bytes.as_ptr());
    for pair in all.windows(2) {
        let ((a, a_id), (b, b_id)) = (pair[0], pair[1]);
        assert!(a.as_ptr_range().end <= b.as_ptr(), "allocations {a_id} and {b_id} overlap");
    }
    let stats = chunk.stats();
    assert!(stats.blocks > 1, "successors were linked");
    assert!(stats.dedicated_blocks >= threads, "large blocks were made: {stats:?}");
    let requested: usize = all.iter().map(|(bytes, _)| bytes.len()).sum();
    assert!(stats.used_bytes >= requested, "no bytes lost: {stats:?} < {requested}");
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0, "every block went back");
    check(&pool);
}

#[test]
fn one_sync_chunk_shared_by_two_threads_hands_out_disjoint_intact_memory() {
    shared_by(2);
}

#[test]
fn one_sync_chunk_shared_by_eight_threads_hands_out_disjoint_intact_memory() {
    shared_by(8);
}

#[test]
fn threads_growing_vectors_in_one_sync_chunk_keep_their_data() {
    let pool = small_pool();
    let chunk = pool.sync_chunk();
    let n = scaled(5000, 200) as u32;
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let chunk = &chunk;
            s.spawn(move || {
                let mut v: Vec<u32, &SyncChunk> = Vec::new_in(chunk);
                for i in 0..n {
                    v.push(t * n + i);
                    if i % 7 == 0 {
                        v.shrink_to_fit();
                    }
                }
                assert!(v.iter().enumerate().all(|(i, &x)| x == t * n + i as u32));
            });
        }
    });
    drop(chunk);
    check(&pool);
}

#[test]
fn a_map_in_a_sync_chunk_is_read_by_worker_threads() {
    let chunk = perfloc::sync_chunk();
    let mut map: HashMap<u32, Vec<u8, &SyncChunk>, DefaultHashBuilder, &SyncChunk> =
        HashMap::new_in(&chunk);
    let n = scaled(1000, 50) as u32;
    for k in 0..n {
        let mut v = Vec::new_in(&chunk);
        v.extend_from_slice(&k.to_le_bytes());
        map.insert(k, v);
    }
    let map = &map;
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for k in (t..n).step_by(4) {
                    assert_eq!(map[&k][..], k.to_le_bytes());
                }
            });
        }
    });
}

#[test]
fn past_the_limit_a_sync_chunk_fails_and_the_pool_recovers() {
    let pool = limited(MIB);
    let chunk = pool.try_sync_chunk().expect("within the limit");
    let mut v: Vec<u8, _> = Vec::new_in(&chunk);
    assert!(v.try_reserve(2 * MIB).is_err(), "Vec::try_reserve reports the limit");
    assert!(chunk.try_alloc([0u8; 64 * KIB]).is_ok());
    for (size, align) in [
        (isize::MAX as usize - 7, 8),
        (isize::MAX as usize - (1 << 20), 1 << 20),
        (1, 1 << 62),
        (0, 1 << 62),
    ] {
        let layout = Layout::from_size_align(size, align).unwrap();
        let result = chunk.try_alloc_layout(layout);
        assert_eq!(result.is_ok(), size == 0, "{size} bytes, align {align}");
    }
    v.try_reserve(256 * KIB).expect("within the limit it works");
    // What `v.extend(repeat_n(1, 256 * KIB))` does (no allocator call: the room is
    // reserved), copied in one go: `extend` writes a byte at a time (most of the 107 s this
    // test took under Miri).
    append_filled(&mut v, 1, 256 * KIB);
    assert!(all_bytes(&v, 1));
    let many: std::vec::Vec<_> =
        std::iter::from_fn(|| pool.try_sync_chunk().ok()).take(10_000).collect();
    assert!(pool.try_sync_chunk().is_err());
    drop(many);
    drop(v);
    drop(chunk);
    let chunk = pool.try_sync_chunk().expect("memory given back is usable again");
    assert_eq!(*chunk.alloc(5u8), 5);
    check(&pool);
}

#[test]
fn the_newest_allocation_grows_and_shrinks_in_place() {
    let pool = small_pool();
    let chunk = pool.sync_chunk();
    let mut v: Vec<u8, &SyncChunk> = Vec::new_in(&chunk);
    v.push(0);
    let first = v.as_ptr();
    // Under Miri 600 grows in place instead of 3,000 (the test took it 11 s).
    for i in 1..scaled(3000, 600) {
        v.reserve_exact(1);
        v.push(i as u8);
        if chunk.stats().blocks == 1 {
            assert_eq!(v.as_ptr(), first, "grown in place at {i}");
        }
    }
    let base = v.as_ptr();
    v.truncate(10);
    v.shrink_to_fit();
    assert_eq!(v.as_ptr(), base, "shrunk in place");
    let used = chunk.stats().used_bytes;
    drop(v);
    assert!(chunk.stats().used_bytes < used, "the newest allocation is given back");

    // A raw allocation: grow in place, then a newer one prevents it.
    let a = &chunk;
    let small = Layout::from_size_align(16, 8).unwrap();
    let big = Layout::from_size_align(64, 8).unwrap();
    let p = a.allocate(small).unwrap().cast::<u8>();
    // SAFETY: `p` is a live allocation of `small` from this chunk.
    let q = unsafe { a.grow(p, small, big) }.unwrap().cast::<u8>();
    assert_eq!(p, q);
    let r = a.allocate(small).unwrap().cast::<u8>();
    // SAFETY: `q` is a live allocation of `big`; `r` of `small`.
    unsafe {
        let moved = a.grow(q, big, Layout::from_size_align(128, 8).unwrap()).unwrap();
        assert_ne!(moved.cast::<u8>(), q, "not the newest: moved");
        a.deallocate(r, small);
    }
}

#[test]
fn a_growing_newest_vector_takes_room_to_double_then_a_dedicated_block() {
    // A `SyncChunk`'s blocks never grow: the vector that outgrows the 16 KiB first block
    // moves to a successor of whole pages with room for its next doubling, so it moves
    // once on the way from 16 to 32 KiB (into a 36 KiB block), not twice (into 32 and
    // 64 KiB blocks). Doubling past the dedicated threshold, it takes a dedicated block
    // (64 KiB, whole pages), which grows in place from then on.
    let pool = Pool::new();
    let chunk = pool.sync_chunk();
    let mut v: Vec<u8, &SyncChunk> = Vec::with_capacity_in(8 * KIB, &chunk);
    append_filled(&mut v, 5, 8 * KIB);
    let mut moves = 0;
    for _ in 0..3 {
        let at = v.as_ptr();
        v.reserve(v.capacity()); // doubles: 16, 32, then 64 KiB
        let room = v.capacity() - v.len();
        append_filled(&mut v, 5, room);
        moves += usize::from(v.as_ptr() != at);
    }
    assert_eq!(v.capacity(), 64 * KIB);
    let stats = chunk.stats();
    assert_eq!(moves, 2, "{stats}");
    assert_eq!((stats.dedicated_blocks, stats.dedicated_bytes), (1, 64 * KIB), "{stats}");
    assert_eq!(stats.capacity_bytes, (16 + 36 + 64) * KIB, "{stats}");
    // Growth by small steps keeps to successors below `GROWABLE_NEWEST` (128 KiB): a
    // dedicated block would take the chunk's mutex at every step.
    let other = pool.sync_chunk();
    let mut w: Vec<u8, &SyncChunk> = Vec::with_capacity_in(12 * KIB, &other);
    append_filled(&mut w, 7, 12 * KIB);
    while w.len() < 100 * KIB {
        w.reserve_exact(KIB);
        append_filled(&mut w, 7, KIB);
    }
    assert_eq!(other.stats().dedicated_blocks, 0, "{}", other.stats());
    assert!(all_bytes(&v, 5));
    assert!(all_bytes(&w, 7));
    drop((v, w));
    drop((chunk, other));
    check(&pool);
}

#[test]
fn dedicated_blocks_go_back_on_dealloc_and_after_shrink() {
    let pool = limited(4 * MIB);
    let chunk = pool.sync_chunk();
    let base = pool.stats().in_use_bytes;
    for i in 0..scaled(100, 20) {
        let mut v: Vec<u8, _> = Vec::new_in(&chunk);
        v.try_reserve_exact(MIB).expect("within the limit");
        v.extend_from_slice(&[i as u8; 100]);
        chunk.alloc(0u64); // v is not the newest allocation
        if i % 2 == 0 {
            v.shrink_to_fit();
        }
        assert_eq!(v, [i as u8; 100]);
        drop(v);
        assert_eq!(chunk.stats().dedicated_blocks, 0, "cycle {i}");
        assert!(pool.stats().in_use_bytes <= base + 8 * KIB, "cycle {i}: {}", pool.stats());
    }
    let a = &chunk;
    let old = Layout::from_size_align(600 * KIB, 8).unwrap();
    let p: NonNull<u8> = a.allocate(old).unwrap().cast();
    chunk.alloc(0u64);
    assert_eq!(chunk.stats().dedicated_blocks, 1);
    // SAFETY: `p` is a live allocation of `old`; shrinking to zero gives it back.
    unsafe { a.shrink(p, old, Layout::from_size_align(0, 8).unwrap()) }.unwrap();
    assert_eq!(chunk.stats().dedicated_blocks, 0, "shrink to zero frees");
    check(&pool);
}

#[test]
fn reset_keeps_the_largest_block_and_children_give_theirs_back() {
    let pool = small_pool();
    let mut chunk = pool.sync_chunk();
    chunk.alloc_slice_copy(&[1u8; 300 * KIB]); // a large block
    for i in 0..1000u64 {
        chunk.alloc(i);
    }
    chunk.reset();
    let stats = chunk.stats();
    assert_eq!((stats.blocks, stats.dedicated_blocks, stats.used_bytes), (1, 0, 0));
    assert!(stats.capacity_bytes >= 300 * KIB, "the largest block is kept: {stats:?}");
    let in_use = pool.stats().in_use_bytes;
    chunk.alloc_slice_copy(&[2u8; 200 * KIB]);
    assert_eq!(pool.stats().in_use_bytes, in_use, "the same work fits again");

    let before = pool.stats().in_use_bytes;
    let kept = chunk.alloc(1u32);
    {
        let child = chunk.child();
        let scratch = child.alloc_slice_fill_with(10_000, |i| i as u32);
        assert_eq!(scratch[9999], 9999);
        assert!(pool.stats().in_use_bytes > before);
    }
    assert_eq!(*kept, 1);
    assert_eq!(pool.stats().in_use_bytes, before, "the child's blocks went back");
    drop(chunk);
    assert_eq!(pool.stats().in_use_bytes, 0);
    check(&pool);
}

#[test]
fn direct_allocation_methods_work_on_a_sync_chunk() {
    let chunk = perfloc::sync_chunk();
    assert_eq!(chunk.alloc([1u16, 2]), &[1, 2]);
    assert_eq!(*chunk.try_alloc(3u64).unwrap(), 3);
    assert_eq!(*chunk.alloc_with(|| 4i8), 4);
    assert_eq!(chunk.alloc_slice_copy(&[5, 6]), &[5, 6]);
    // Clones are never dropped: a `Cow::Borrowed` owns nothing to leak.
    assert_eq!(chunk.alloc_slice_clone(&[std::borrow::Cow::Borrowed("x")])[0], "x");
    assert_eq!(chunk.alloc_slice_fill_with(3, |i| i), &[0, 1, 2]);
    assert_eq!(chunk.alloc_str("seven"), "seven");
    let p = chunk.alloc_layout(Layout::from_size_align(8, 64).unwrap());
    assert_eq!(p.as_ptr() as usize % 64, 0);
    assert!(chunk.try_alloc_layout(Layout::from_size_align(8, 64).unwrap()).is_ok());
    assert!(format!("{chunk:?}").starts_with("SyncChunk"));
}
