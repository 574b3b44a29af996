//! Request cycles: per request, make a scope, parse a synthetic HTTP request into
//! collections (32 headers in a `HashMap<&str, &str>`, a `Vec` of items, a few `Box`es,
//! the body copied), use them, and drop everything. All contenders in the same run:
//!
//! - `perfloc`: a chunk from the global pool per request;
//! - `bumpalo-new`: a new `bumpalo::Bump` per request;
//! - `bumpalo-reset`: one `Bump`, reset after each request;
//! - `bump-scope`: one `bump_scope::Bump`, a `scoped` scope per request;
//! - `global`: the same collections on the global allocator.
//!
//! `request_cycle_small` is about 16 KiB per request, `request_cycle_large` about 1 MiB;
//! `threads` runs the small cycle on 1 and on 2 threads sharing perfloc's global pool.
//!
//! `cargo bench --bench request`

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::OnceLock;

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::{boxed::Box, vec::Vec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hashbrown::{DefaultHashBuilder, HashMap};

/// One item of the request body.
struct Item<'a> {
    id: u64,
    name: &'a str,
    quantity: u32,
    price: u64,
}

/// The synthetic request text for a scale: 32 headers, `100 * scale` item lines.
fn request_text(scale: usize) -> String {
    let mut text = String::from("POST /api/orders HTTP/1.1\r\n");
    for h in 0..32 {
        let _ = write!(text, "x-header-{h:02}: value-{h}-{}\r\n", "v".repeat(h % 7));
    }
    text.push_str("\r\n");
    for i in 0..100 * scale {
        let _ =
            writeln!(text, "{},item-{:04},{},{}", 1_000_000 + i, i % 1000, i % 9 + 1, i * 13 % 997);
    }
    text
}

/// Parses and handles one request with every allocation in `alloc`; returns a checksum.
fn handle<A: Allocator + Clone>(text: &str, scale: usize, alloc: A) -> u64 {
    let (head, body) = text.split_once("\r\n\r\n").expect("blank line");
    let mut headers: HashMap<&str, &str, DefaultHashBuilder, A> =
        HashMap::with_capacity_and_hasher_in(32, DefaultHashBuilder::default(), alloc.clone());
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(": ") {
            headers.insert(name, value);
        }
    }
    let mut items: Vec<Item<'_>, A> = Vec::new_in(alloc.clone());
    for line in body.lines() {
        let mut f = line.split(',');
        let (Some(id), Some(name), Some(q), Some(p)) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        items.push(Item {
            id: id.parse().unwrap_or(0),
            name,
            quantity: q.parse().unwrap_or(0),
            price: p.parse().unwrap_or(0),
        });
    }
    let mut copy: Vec<u8, A> = Vec::with_capacity_in(body.len(), alloc.clone());
    copy.extend_from_slice(body.as_bytes());
    let boxes: [Box<[u64; 128], A>; 4] =
        core::array::from_fn(|i| Box::new_in([i as u64; 128], alloc.clone()));
    let mut scratch: Vec<u64, A> = Vec::with_capacity_in(512 * scale, alloc);
    scratch.extend(items.iter().map(|i| i.price * u64::from(i.quantity)));
    let total: u64 = scratch.iter().sum::<u64>()
        + items.iter().filter(|i| i.name.ends_with('7')).map(|i| i.id).sum::<u64>();
    total + headers.len() as u64 + copy.len() as u64 + boxes.iter().map(|b| b[0]).sum::<u64>()
}

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

criterion_group!(benches, request_cycle_small, request_cycle_large, threads);
criterion_main!(benches);
