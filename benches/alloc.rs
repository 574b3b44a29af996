//! Allocation fast path: 10,007 `u64`s into a warmed arena, reset between iterations
//! (bumpalo's method), for perfloc and bumpalo in the same run.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ALLOCS: usize = 10_007;

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

    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo", |b| {
        b.iter(|| {
            for i in 0..ALLOCS {
                black_box(bump.alloc(black_box(i as u64)));
            }
            bump.reset();
        })
    });
    group.finish();
}

criterion_group!(benches, alloc_u64);
criterion_main!(benches);
