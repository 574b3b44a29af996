//! Request cycles: per request, make a scope, parse a synthetic HTTP request into
//! collections (32 headers in a `HashMap<&str, &str>`, a `Vec` of items, a few `Box`es,
//! the body copied), use them, and drop everything. All contenders in the same run:
//!
//! - `perfloc`: a chunk from the global pool per request;
//! - `perfloc-sync`: a `SyncChunk` from the global pool per request;
//! - `blink-sync-new`: a new blink-alloc `SyncBlinkAlloc` per request;
//! - `blink-sync-reset`: one `SyncBlinkAlloc`, reset after each request;
//! - `bumpalo-new`: a new `bumpalo::Bump` per request;
//! - `bumpalo-reset`: one `Bump`, reset after each request;
//! - `bump-scope`: one `bump_scope::Bump`, a `scoped` scope per request;
//! - `global`: the same collections on the global allocator.
//!
//! `scope_cycle` makes a scope for three tiny allocations (`workload::tiny_scope`): a
//! new chunk, `SyncChunk`, bumpalo `Bump`, bump-scope `Bump` each time, or the global
//! allocator.
//!
//! `nested_scope` opens a scope inside a long-lived arena for the same three allocations:
//! perfloc's `scoped` and a `child` chunk, and bump-scope's `scoped`.
//!
//! `parse_request` parses a 4 KB JSON body into a chunk (`#[derive(DeserializeIn)]`)
//! against serde's derive into std types on the global allocator.
//!
//! `request_cycle_small` is about 16 KiB per request, `request_cycle_large` about 1 MiB;
//! `threads` runs the small cycle on 1 and on 2 threads sharing perfloc's global pool.
//!
//! `cargo bench --bench request`

use std::hint::black_box;
use std::sync::OnceLock;

use allocator_api2::alloc::Global;
use blink_alloc::SyncBlinkAlloc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod workload;
use workload::blink::Blink;
use workload::{handle, request_text, tiny_scope};

fn texts() -> &'static [String; 2] {
    static TEXTS: OnceLock<[String; 2]> = OnceLock::new();
    TEXTS.get_or_init(|| [request_text(1), request_text(64)])
}

fn request_cycle(c: &mut Criterion, name: &str, text: &'static str, scale: usize) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function("perfloc", |b| {
        b.iter(|| {
            let chunk = perfloc::chunk();
            black_box(handle(text, scale, &chunk))
        })
    });
    group.bench_function("perfloc-sync", |b| {
        b.iter(|| {
            let chunk = perfloc::sync_chunk();
            black_box(handle(text, scale, &chunk))
        })
    });
    group.bench_function("blink-sync-new", |b| {
        b.iter(|| {
            let blink = SyncBlinkAlloc::new();
            black_box(handle(text, scale, Blink(&blink)))
        })
    });
    let mut blink = SyncBlinkAlloc::new();
    group.bench_function("blink-sync-reset", |b| {
        b.iter(|| {
            let sum = handle(text, scale, Blink(&blink));
            blink.reset();
            black_box(sum)
        })
    });
    group.bench_function("bumpalo-new", |b| {
        b.iter(|| {
            let bump = bumpalo::Bump::new();
            black_box(handle(text, scale, &bump))
        })
    });
    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo-reset", |b| {
        b.iter(|| {
            let sum = handle(text, scale, &bump);
            bump.reset();
            black_box(sum)
        })
    });
    let mut scope: bump_scope::Bump = bump_scope::Bump::new();
    group.bench_function("bump-scope", |b| {
        b.iter(|| black_box(scope.scoped(|s| handle(text, scale, &*s))))
    });
    group.bench_function("global", |b| b.iter(|| black_box(handle(text, scale, Global))));
    group.finish();
}

fn request_cycle_small(c: &mut Criterion) {
    request_cycle(c, "request_cycle_small", &texts()[0], 1);
}

fn request_cycle_large(c: &mut Criterion) {
    request_cycle(c, "request_cycle_large", &texts()[1], 64);
}

/// `REQUESTS` small request cycles on each of `threads` threads, all on the global pool.
fn threads(c: &mut Criterion) {
    const REQUESTS: usize = 2_000;
    let text: &'static str = &texts()[0];
    let mut group = c.benchmark_group("threads");
    for threads in [1, 2] {
        group.throughput(Throughput::Elements((REQUESTS * threads) as u64));
        group.bench_function(format!("perfloc/{threads}"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..REQUESTS {
                                let chunk = perfloc::chunk();
                                black_box(handle(text, 1, &chunk));
                            }
                        });
                    }
                })
            })
        });
    }
    group.finish();
}

/// A whole scope for almost nothing: make it, three tiny allocations (`tiny_scope`), drop
/// it. What a request that needs little memory pays for having a scope at all.
fn scope_cycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("scope_cycle");
    group.throughput(Throughput::Elements(1));
    group.bench_function("perfloc", |b| b.iter(|| black_box(tiny_scope(&perfloc::chunk()))));
    group.bench_function("perfloc-sync", |b| {
        b.iter(|| black_box(tiny_scope(&perfloc::sync_chunk())))
    });
    group
        .bench_function("bumpalo-new", |b| b.iter(|| black_box(tiny_scope(&bumpalo::Bump::new()))));
    group.bench_function("bump-scope-new", |b| {
        b.iter(|| {
            let bump: bump_scope::Bump = bump_scope::Bump::new();
            black_box(tiny_scope(&bump))
        })
    });
    group.bench_function("global", |b| b.iter(|| black_box(tiny_scope(Global))));
    group.finish();
}

/// A nested scope in a long-lived arena, for the same three tiny allocations: perfloc's
/// `scoped` (a rewind, no block from the pool) against a `child` chunk (a block from the
/// pool and back), and bump-scope's `scoped`.
fn nested_scope(c: &mut Criterion) {
    let mut group = c.benchmark_group("nested_scope");
    group.throughput(Throughput::Elements(1));
    let mut chunk = perfloc::chunk();
    group.bench_function("perfloc-scoped", |b| {
        b.iter(|| black_box(chunk.scoped(|c| tiny_scope(&*c))))
    });
    group.bench_function("perfloc-child", |b| b.iter(|| black_box(tiny_scope(&chunk.child()))));
    let mut sync = perfloc::sync_chunk();
    group.bench_function("perfloc-sync-scoped", |b| {
        b.iter(|| black_box(sync.scoped(|c| tiny_scope(&*c))))
    });
    let mut bump: bump_scope::Bump = bump_scope::Bump::new();
    group.bench_function("bump-scope-scoped", |b| {
        b.iter(|| black_box(bump.scoped(|s| tiny_scope(&*s))))
    });
    group.finish();
}

/// A JSON body of 20 items (about 4 KB, the server's calm body) parsed into a chunk with
/// `#[derive(perfloc::DeserializeIn)]`, against serde's derive into std types on the
/// global allocator.
fn parse_request(c: &mut Criterion) {
    let body: &'static str = workload::parse::body(20).leak();
    let same = workload::parse::perfloc(body, &perfloc::chunk()) == workload::parse::std(body);
    assert!(same, "both parsers read the same request");
    let mut group = c.benchmark_group("parse_request");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("perfloc", |b| {
        b.iter(|| black_box(workload::parse::perfloc(body, &perfloc::chunk())))
    });
    group.bench_function("perfloc-sync", |b| {
        b.iter(|| black_box(workload::parse::perfloc(body, &perfloc::sync_chunk())))
    });
    group.bench_function("global", |b| b.iter(|| black_box(workload::parse::std(body))));
    group.finish();
}

criterion_group!(
    benches,
    request_cycle_small,
    request_cycle_large,
    threads,
    scope_cycle,
    nested_scope,
    parse_request
);
criterion_main!(benches);
