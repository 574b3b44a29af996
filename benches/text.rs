//! Text micro-benchmarks: perfloc's `String` and `format_in!` against bumpalo's
//! `collections::String` and `format!(in &bump, …)`, and `std::string::String` on the
//! global heap, all in the same run:
//!
//! - `format_in`: 1,000 strings formatted from four arguments of mixed types
//!   (`"{} {} {}: {}"`: a `&str`, a `usize`, a `char`, an `i64`), each kept (leaked into the
//!   arena with `into_str`/`into_bump_str`; a `Vec<String>` on the global heap);
//! - `string_push_str`: 1,000 short `&str`s pushed onto one string.
//!
//! Contenders: `perfloc` (a fresh chunk from the global pool per iteration),
//! `perfloc-reset` (one chunk, reset after each iteration), `perfloc-alloc-fmt`
//! (`format_in` only: `Chunk::alloc_fmt` in a fresh chunk), `bumpalo-new` (a fresh `Bump` per iteration), `bumpalo-reset` (one `Bump`, reset after
//! each iteration), `global` (`std::string::String`).
//!
//! `cargo bench --bench text`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "workload/text.rs"]
mod text;
use text::*;

fn format_in(c: &mut Criterion) {
    let mut group = c.benchmark_group("format_in");
    group.throughput(Throughput::Elements(STRINGS as u64));
    group.bench_function("perfloc", |b| {
        b.iter(|| {
            let chunk = perfloc::chunk();
            black_box(perfloc_format(&chunk))
        })
    });
    let mut chunk = perfloc::chunk();
    group.bench_function("perfloc-reset", |b| {
        b.iter(|| {
            let total = perfloc_format(&chunk);
            chunk.reset();
            black_box(total)
        })
    });
    group.bench_function("perfloc-alloc-fmt", |b| {
        b.iter(|| {
            let chunk = perfloc::chunk();
            black_box(perfloc_alloc_fmt(&chunk))
        })
    });
    group.bench_function("bumpalo-new", |b| {
        b.iter(|| {
            let bump = bumpalo::Bump::new();
            black_box(bumpalo_format(&bump))
        })
    });
    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo-reset", |b| {
        b.iter(|| {
            let total = bumpalo_format(&bump);
            bump.reset();
            black_box(total)
        })
    });
    group.bench_function("global", |b| b.iter(|| black_box(global_format())));
    group.finish();
}

fn string_push_str(c: &mut Criterion) {
    let mut group = c.benchmark_group("string_push_str");
    group.throughput(Throughput::Elements(STRINGS as u64));
    group.bench_function("perfloc", |b| {
        b.iter(|| {
            let chunk = perfloc::chunk();
            black_box(perfloc_push(&chunk))
        })
    });
    let mut chunk = perfloc::chunk();
    group.bench_function("perfloc-reset", |b| {
        b.iter(|| {
            let total = perfloc_push(&chunk);
            chunk.reset();
            black_box(total)
        })
    });
    group.bench_function("bumpalo-new", |b| {
        b.iter(|| {
            let bump = bumpalo::Bump::new();
            black_box(bumpalo_push(&bump))
        })
    });
    let mut bump = bumpalo::Bump::new();
    group.bench_function("bumpalo-reset", |b| {
        b.iter(|| {
            let total = bumpalo_push(&bump);
            bump.reset();
            black_box(total)
        })
    });
    group.bench_function("global", |b| b.iter(|| black_box(global_push())));
    group.finish();
}

criterion_group!(benches, format_in, string_push_str);
criterion_main!(benches);
