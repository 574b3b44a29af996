//! Interleaved medians: issue 11's speed cases timed contender after contender in rounds,
//! so that the slow and fast phases of a shared machine fall on every contender alike.
//!
//! criterion (`benches/alloc.rs`, `benches/request.rs`) measures one contender for a few
//! seconds, then the next; on this machine a median then moved by over 40% between runs.
//! Here each round times one batch of every contender (about 2 ms each, in an order
//! rotated from round to round) on the same thread. Per contender the figure is the
//! median over the rounds; the ratio is the median of the per-round ratios (perfloc's
//! batch over the contender's in the same round), with its quartiles. The work is that of
//! the criterion cases of the same names.
//!
//! ```sh
//! cargo bench --bench interleaved            # 200 rounds, about a minute
//! cargo bench --bench interleaved -- 50      # another round count
//! cargo bench --bench interleaved -- request # only the cases whose name has "request"
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashMap};

// The workload's `blink` module serves `benches/request.rs` only.
#[allow(dead_code)]
#[path = "workload/mod.rs"]
mod workload;

/// Runs one contender's work `n` times.
type Batch = Box<dyn FnMut(u64)>;
/// Contenders by name, perfloc first.
type Contenders = std::vec::Vec<(&'static str, Batch)>;

/// How long a batch should take, so that the timer's cost and the rotation vanish.
const BATCH: Duration = Duration::from_millis(2);
const ALLOCS: u64 = 10_007;
const PUSHES: u64 = 100_000;

fn vec_push<A: Allocator>(alloc: A) {
    let mut v: Vec<u64, A> = Vec::new_in(alloc);
    for i in 0..PUSHES {
        v.push(black_box(i));
    }
    black_box(&v);
}

fn vec_reserve_exact_1<A: Allocator>(alloc: A) {
    let mut v: Vec<u64, A> = Vec::new_in(alloc);
    for i in 0..ALLOCS {
        v.reserve_exact(1);
        v.push(black_box(i));
    }
    black_box(&v);
}

fn hashmap_insert<A: Allocator + Clone>(alloc: A) {
    let mut map: HashMap<u64, u64, DefaultHashBuilder, A> = HashMap::new_in(alloc);
    for i in 0..PUSHES {
        map.insert(black_box(i), i);
    }
    black_box(&map);
}

fn large_growth<A: Allocator>(alloc: A) {
    let mut v: Vec<u8, A> = Vec::new_in(alloc);
    for i in 0..2usize << 20 {
        v.push(i as u8);
    }
    black_box(v.len());
}

/// A batch of `work` in a warmed arena, reset after every run (as `benches/alloc.rs`).
macro_rules! in_arenas {
    ($work:ident) => {
        vec![
            ("perfloc", {
                let mut chunk = perfloc::chunk();
                Box::new(move |n: u64| {
                    for _ in 0..n {
                        $work(&chunk);
                        chunk.reset();
                    }
                }) as Batch
            }),
            ("bumpalo", {
                let mut bump = bumpalo::Bump::new();
                Box::new(move |n: u64| {
                    for _ in 0..n {
                        $work(&bump);
                        bump.reset();
                    }
                })
            }),
            ("bump-scope", {
                let mut scope: bump_scope::Bump = bump_scope::Bump::new();
                Box::new(move |n: u64| {
                    for _ in 0..n {
                        $work(&scope);
                        scope.reset();
                    }
                })
            }),
        ]
    };
}

/// `alloc_u64`: `ALLOCS` typed allocations of a `u64`, then a reset.
macro_rules! alloc_u64 {
    ($arena:expr, $alloc:expr) => {{
        let mut arena = $arena;
        Box::new(move |n: u64| {
            for _ in 0..n {
                for i in 0..ALLOCS {
                    black_box($alloc(&arena, black_box(i)));
                }
                arena.reset();
            }
        }) as Batch
    }};
}

/// A batch of runs of `work`, each result kept from the optimiser.
fn each<R>(mut work: impl FnMut() -> R + 'static) -> Batch {
    Box::new(move |n: u64| {
        for _ in 0..n {
            black_box(work());
        }
    })
}

/// A request per run: in a new `Chunk`, a new or a reset `Bump`, bump-scope's `scoped`, and
/// on the global allocator.
fn requests(text: &'static str, scale: usize) -> Contenders {
    use workload::handle;
    let mut reset = bumpalo::Bump::new();
    let mut scope: bump_scope::Bump = bump_scope::Bump::new();
    vec![
        ("perfloc", each(move || handle(text, scale, &perfloc::chunk()))),
        ("bumpalo-new", each(move || handle(text, scale, &bumpalo::Bump::new()))),
        (
            "bumpalo-reset",
            each(move || {
                let sum = handle(text, scale, &reset);
                reset.reset();
                sum
            }),
        ),
        ("bump-scope", each(move || scope.scoped(|s| handle(text, scale, &*s)))),
        ("global", each(move || handle(text, scale, Global))),
    ]
}

/// Every case, its contenders perfloc first.
fn cases() -> std::vec::Vec<(&'static str, Contenders)> {
    let texts: &'static [String; 2] =
        Box::leak(Box::new([workload::request_text(1), workload::request_text(64)]));
    vec![
        (
            "alloc_u64",
            vec![
                (
                    "perfloc",
                    alloc_u64!(perfloc::chunk(), |c: &perfloc::Chunk, i: u64| c.alloc(i)
                        as *mut u64),
                ),
                (
                    "bumpalo",
                    alloc_u64!(bumpalo::Bump::new(), |b: &bumpalo::Bump, i: u64| b.alloc(i)
                        as *mut u64),
                ),
                (
                    "bump-scope",
                    alloc_u64!(bump_scope::Bump::new(), |b: &bump_scope::Bump, i: u64| {
                        b.alloc(i).into_mut() as *mut u64
                    }),
                ),
            ],
        ),
        ("vec_push", in_arenas!(vec_push)),
        ("vec_reserve_exact_1", in_arenas!(vec_reserve_exact_1)),
        ("hashmap_insert", {
            let mut contenders = in_arenas!(hashmap_insert);
            contenders.push(("global", each(|| hashmap_insert(Global))));
            contenders
        }),
        ("request_cycle_small", requests(&texts[0], 1)),
        ("request_cycle_large", requests(&texts[1], 64)),
        (
            "scope_cycle",
            vec![
                ("perfloc", each(|| workload::tiny_scope(&perfloc::chunk()))),
                ("bumpalo-new", each(|| workload::tiny_scope(&bumpalo::Bump::new()))),
                (
                    "bump-scope-new",
                    each(|| {
                        let bump: bump_scope::Bump = bump_scope::Bump::new();
                        workload::tiny_scope(&bump)
                    }),
                ),
                ("global", each(|| workload::tiny_scope(Global))),
            ],
        ),
        (
            "large_growth",
            vec![
                ("perfloc", each(|| large_growth(&perfloc::chunk()))),
                ("bumpalo-new", each(|| large_growth(&bumpalo::Bump::new()))),
                ("global", each(|| large_growth(Global))),
            ],
        ),
    ]
}

/// Nanoseconds per run of `n` runs of `batch`.
fn time(batch: &mut Batch, n: u64) -> f64 {
    let start = Instant::now();
    batch(n);
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The `q`-quantile of `values` (sorted here), by the nearest rank.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// A time in the unit that suits it.
fn show(ns: f64) -> String {
    match ns {
        ns if ns < 1e3 => format!("{ns:.1} ns"),
        ns if ns < 1e6 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{:.2} ms", ns / 1e6),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the round count, a word filters cases.
    let args: std::vec::Vec<String> =
        std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(200);
    let filters: std::vec::Vec<&String> =
        args.iter().filter(|a| a.parse::<usize>().is_err()).collect();
    println!(
        "interleaved medians over {rounds} rounds (ratio: perfloc's time over the contender's,"
    );
    println!("the median of the per-round ratios, with its quartiles)\n");
    println!(
        "{:<20} {:<15} {:>12} {:>7} {:>16}",
        "case", "contender", "median", "ratio", "quartiles"
    );
    for (case, mut contenders) in cases() {
        if !filters.is_empty() && !filters.iter().any(|f| case.contains(f.as_str())) {
            continue;
        }
        // Runs per batch: enough for perfloc's batch to take `BATCH`. Warms everyone too.
        let mut n = 1;
        while time(&mut contenders[0].1, n) * (n as f64) < BATCH.as_nanos() as f64 {
            n *= 2;
        }
        for (_, batch) in &mut contenders {
            time(batch, n);
        }
        let mut times = vec![Vec::with_capacity(rounds); contenders.len()];
        for round in 0..rounds {
            for k in 0..contenders.len() {
                let i = (round + k) % contenders.len();
                times[i].push(time(&mut contenders[i].1, n));
            }
        }
        for (i, (name, _)) in contenders.iter().enumerate() {
            let mut ratios: Vec<f64> = (0..rounds).map(|r| times[0][r] / times[i][r]).collect();
            let median = quantile(&mut times[i].clone(), 0.5);
            if i == 0 {
                println!("{case:<20} {name:<15} {:>12}", show(median));
            } else {
                let (q1, q2, q3) = (
                    quantile(&mut ratios, 0.25),
                    quantile(&mut ratios, 0.5),
                    quantile(&mut ratios, 0.75),
                );
                println!(
                    "{:<20} {name:<15} {:>12} {q2:>7.2} {:>16}",
                    "",
                    show(median),
                    format!("{q1:.2}–{q3:.2}")
                );
            }
        }
    }
}
