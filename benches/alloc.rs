//! Allocation micro-benchmarks, perfloc against bumpalo and bump-scope (and the global
//! allocator where it applies), all in the same run:
//!
//! - `alloc_u64`: 10,007 `u64`s into a warmed arena, reset between iterations (bumpalo's
//!   method), `Chunk` and `SyncChunk` (`perfloc-sync`) on one thread;
//! - `alloc_u64_two_threads`: 10,007 `u64`s on each of two threads, into one shared
//!   `SyncChunk` or into a `Chunk` each;
//! - `vec_push`: 100,000 pushes into an `allocator_api2::vec::Vec` in the arena;
//! - `vec_reserve_exact_1`: 10,007 × (`reserve_exact(1)`, push): in-place growth shows;
//! - `hashmap_insert`: 100,000 `(u64, u64)` inserts into a hashbrown `HashMap`;
//! - `large_growth`: 2 MiB pushed byte by byte into a `Vec` in a fresh arena.
//!
//! `cargo bench --bench alloc`

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;
use blink_alloc::SyncBlinkAlloc;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hashbrown::{DefaultHashBuilder, HashMap};

const ALLOCS: usize = 10_007;
const PUSHES: u64 = 100_000;

/// A typed allocation in blink-alloc's `SyncBlinkAlloc`, as its `put` would do it (a
/// layout, then a write), without the drop list `put` keeps.
#[inline(always)]
fn blink_u64(blink: &SyncBlinkAlloc, value: u64) -> NonNull<u64> {
    let ptr = blink.allocate(Layout::new::<u64>()).expect("blink-alloc allocates").cast::<u64>();
    // SAFETY: a fresh, aligned allocation for one `u64`.
    unsafe { ptr.write(value) };
    ptr
}

fn alloc_u64(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_u64");
    group.throughput(Throughput::Elements(ALLOCS as u64));
    let mut chunk = perfloc::chunk();
    group.bench_function("perfloc", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(chunk.alloc(black_box(i as u64)));
            }
            chunk.reset();
        })
    });
    let mut sync_chunk = perfloc::sync_chunk();
    group.bench_function("perfloc-sync", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(sync_chunk.alloc(black_box(i as u64)));
            }
            sync_chunk.reset();
        })
    });
    let mut blink = SyncBlinkAlloc::new();
    group.bench_function("blink-sync", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(blink_u64(&blink, black_box(i as u64)));
            }
            blink.reset();
        })
    });
    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(bump.alloc(black_box(i as u64)));
            }
            bump.reset();
        })
    });
    let mut scope: bump_scope::Bump = bump_scope::Bump::new();
    group.bench_function("bump-scope", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(scope.alloc(black_box(i as u64)).into_mut());
            }
            scope.reset();
        })
    });
    group.finish();
}

fn vec_push(c: &mut Criterion) {
    let mut group = c.benchmark_group("vec_push");
    group.throughput(Throughput::Elements(PUSHES));
    fn push<A: Allocator>(alloc: A) {
        let mut v: Vec<u64, A> = Vec::new_in(alloc);
        for i in 0..PUSHES {
            v.push(black_box(i));
        }
        black_box(&v);
    }
    arenas(&mut group, push_perfloc, push_bumpalo, push_bump_scope);
    fn push_perfloc(c: &perfloc::Chunk) {
        push(c)
    }
    fn push_bumpalo(b: &bumpalo::Bump) {
        push(b)
    }
    fn push_bump_scope(b: &bump_scope::Bump) {
        push(b)
    }
    group.finish();
}

fn vec_reserve_exact_1(c: &mut Criterion) {
    let mut group = c.benchmark_group("vec_reserve_exact_1");
    group.throughput(Throughput::Elements(ALLOCS as u64));
    fn grow<A: Allocator>(alloc: A) {
        let mut v: Vec<u64, A> = Vec::new_in(alloc);
        for i in 0..ALLOCS as u64 {
            v.reserve_exact(1);
            v.push(black_box(i));
        }
        black_box(&v);
    }
    fn grow_perfloc(c: &perfloc::Chunk) {
        grow(c)
    }
    fn grow_bumpalo(b: &bumpalo::Bump) {
        grow(b)
    }
    fn grow_bump_scope(b: &bump_scope::Bump) {
        grow(b)
    }
    arenas(&mut group, grow_perfloc, grow_bumpalo, grow_bump_scope);
    group.finish();
}

fn hashmap_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("hashmap_insert");
    group.throughput(Throughput::Elements(PUSHES));
    fn insert<A: Allocator + Clone>(alloc: A) {
        let mut map: HashMap<u64, u64, DefaultHashBuilder, A> = HashMap::new_in(alloc);
        for i in 0..PUSHES {
            map.insert(black_box(i), i);
        }
        black_box(&map);
    }
    fn insert_perfloc(c: &perfloc::Chunk) {
        insert(c)
    }
    fn insert_bumpalo(b: &bumpalo::Bump) {
        insert(b)
    }
    fn insert_bump_scope(b: &bump_scope::Bump) {
        insert(b)
    }
    arenas(&mut group, insert_perfloc, insert_bumpalo, insert_bump_scope);
    group.bench_function(BenchmarkId::new("global", ""), |b| {
        b.iter(|| insert(allocator_api2::alloc::Global))
    });
    group.finish();
}

/// Measures `work` in a warmed arena of each contender, reset after every iteration.
fn arenas(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    perfloc_work: fn(&perfloc::Chunk),
    bumpalo_work: fn(&bumpalo::Bump),
    bump_scope_work: fn(&bump_scope::Bump),
) {
    let mut chunk = perfloc::chunk();
    group.bench_function("perfloc", |b| {
        b.iter(|| {
            perfloc_work(&chunk);
            chunk.reset();
        })
    });
    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo", |b| {
        b.iter(|| {
            bumpalo_work(&bump);
            bump.reset();
        })
    });
    let mut scope: bump_scope::Bump = bump_scope::Bump::new();
    group.bench_function("bump-scope", |b| {
        b.iter(|| {
            bump_scope_work(&scope);
            scope.reset();
        })
    });
}

/// `ALLOCS` `u64`s on each of two threads: into one shared `SyncChunk`, and into a `Chunk`
/// of each thread's own (thread start-up included in both).
fn alloc_u64_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_u64_two_threads");
    group.throughput(Throughput::Elements(2 * ALLOCS as u64));
    let mut shared = perfloc::sync_chunk();
    group.bench_function("perfloc-sync-shared", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let shared = &shared;
                    s.spawn(move || {
                        for i in 0..ALLOCS {
                            black_box(shared.alloc(black_box(i as u64)));
                        }
                    });
                }
            });
            shared.reset();
        })
    });
    let mut blink = SyncBlinkAlloc::new();
    group.bench_function("blink-sync-shared", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    let blink = &blink;
                    s.spawn(move || {
                        for i in 0..ALLOCS {
                            black_box(blink_u64(blink, black_box(i as u64)));
                        }
                    });
                }
            });
            blink.reset();
        })
    });
    group.bench_function("perfloc-chunk-each", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        let chunk = perfloc::chunk();
                        for i in 0..ALLOCS {
                            black_box(chunk.alloc(black_box(i as u64)));
                        }
                    });
                }
            })
        })
    });
    group.finish();
}

/// 2 MiB pushed byte by byte into a `Vec` in a fresh arena (or on the global allocator):
/// how growth to megabytes copies. perfloc's vector moves to a large block that then grows
/// in place over its free buddies; a `Bump` copies at every chunk it outgrows.
fn large_growth(c: &mut Criterion) {
    const LEN: usize = 2 << 20;
    fn push<A: Allocator>(alloc: A) -> usize {
        let mut v: Vec<u8, A> = Vec::new_in(alloc);
        for i in 0..LEN {
            v.push(i as u8);
        }
        black_box(v.len())
    }
    let mut group = c.benchmark_group("large_growth");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.bench_function("perfloc", |b| b.iter(|| push(&perfloc::chunk())));
    group.bench_function("bumpalo-new", |b| b.iter(|| push(&bumpalo::Bump::new())));
    group.bench_function("global", |b| b.iter(|| push(allocator_api2::alloc::Global)));
    group.finish();
}

criterion_group!(
    benches,
    large_growth,
    alloc_u64,
    alloc_u64_two_threads,
    vec_push,
    vec_reserve_exact_1,
    hashmap_insert
);
criterion_main!(benches);
