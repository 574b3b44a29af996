//! Instructions and conditional branches per allocation on the fast path, counted by
//! callgrind (exact and repeatable, unlike wall-clock time on a shared machine), for
//! perfloc (`Chunk` and `SyncChunk`), bumpalo and bump-scope, through the typed `alloc` and through
//! `Allocator::allocate` with the layout hidden from the optimiser.
//!
//! ```sh
//! cargo run --release --example instructions      # needs valgrind
//! cargo run --release --example instructions -- --check benches/instructions.baseline
//! cargo run --release --example instructions -- --save benches/instructions.baseline
//! ```
//!
//! `--check` is CI's regression gate: it fails when one of perfloc's counts (the fast
//! paths, `Chunk` and `SyncChunk`, and every whole case) rises more than 5% above the
//! checked-in baseline; `--save` writes a new baseline after an intended change.
//!
//! The program runs itself under `valgrind --tool=callgrind --branch-sim=yes
//! --cache-sim=yes`; each contender's function makes `N` allocations into a warmed arena,
//! and the cost of the same loop without allocating (`baseline_*`) is subtracted. It also
//! reports the data writes per allocation, loop included, which bound a store-limited loop.

use std::alloc::Layout;
use std::hint::black_box;
use std::process::Command;

use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::vec::Vec;
use hashbrown::HashMap;

#[path = "../benches/workload/mod.rs"]
mod workload;

const N: usize = 100_000;
const CHILD: &str = "PERFLOC_INSTRUCTIONS_CHILD";

#[inline(never)]
fn baseline_typed(n: usize) {
    for i in 0..n {
        black_box(black_box(i as u64));
    }
}

#[inline(never)]
fn perfloc_typed(chunk: &perfloc::Chunk, n: usize) {
    for i in 0..n {
        black_box(chunk.alloc(black_box(i as u64)));
    }
}

#[inline(never)]
fn perfloc_sync_typed(chunk: &perfloc::SyncChunk, n: usize) {
    for i in 0..n {
        black_box(chunk.alloc(black_box(i as u64)));
    }
}

#[inline(never)]
fn bumpalo_typed(bump: &bumpalo::Bump, n: usize) {
    for i in 0..n {
        black_box(bump.alloc(black_box(i as u64)));
    }
}

#[inline(never)]
fn bump_scope_typed(bump: &bump_scope::Bump, n: usize) {
    for i in 0..n {
        black_box(bump.alloc(black_box(i as u64)).into_mut());
    }
}

#[inline(never)]
fn baseline_allocate(n: usize) {
    for _ in 0..n {
        black_box(black_box(Layout::new::<u64>()));
    }
}

#[inline(never)]
fn perfloc_allocate(chunk: &perfloc::Chunk, n: usize) {
    for _ in 0..n {
        let _ = black_box((&chunk).allocate(black_box(Layout::new::<u64>())));
    }
}

#[inline(never)]
fn perfloc_sync_allocate(chunk: &perfloc::SyncChunk, n: usize) {
    for _ in 0..n {
        let _ = black_box((&chunk).allocate(black_box(Layout::new::<u64>())));
    }
}

#[inline(never)]
fn bumpalo_allocate(bump: &bumpalo::Bump, n: usize) {
    for _ in 0..n {
        let _ = black_box((&bump).allocate(black_box(Layout::new::<u64>())));
    }
}

#[inline(never)]
fn bump_scope_allocate(bump: &bump_scope::Bump, n: usize) {
    for _ in 0..n {
        let _ = black_box((&bump).allocate(black_box(Layout::new::<u64>())));
    }
}

/// One run of each benchmark case per contender, as in `benches/`: the whole-case
/// instruction counts are a noise-free cross-check of the wall-clock medians.
mod cases {
    use super::*;

    pub const PUSHES: u64 = 100_000;
    pub const GROWS: u64 = 10_007;
    pub const REQUESTS: usize = 1_000;
    /// Large requests (`request_text(64)`, about 1 MiB each) per `request_cycle_large` case.
    pub const LARGE_REQUESTS: usize = 20;

    /// The JSON body of `parse_request` (20 items, about 4 KB), made once.
    pub fn json() -> &'static str {
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| workload::parse::body(20))
    }

    /// The large request's text, made once (before the cases run, so not counted in them).
    pub fn large_text() -> &'static str {
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| workload::request_text(64))
    }

    pub fn vec_push<A: Allocator>(alloc: A) {
        let mut v: Vec<u64, A> = Vec::new_in(alloc);
        for i in 0..PUSHES {
            v.push(black_box(i));
        }
        black_box(&v);
    }

    pub fn vec_reserve_exact_1<A: Allocator>(alloc: A) {
        let mut v: Vec<u64, A> = Vec::new_in(alloc);
        for i in 0..GROWS {
            v.reserve_exact(1);
            v.push(black_box(i));
        }
        black_box(&v);
    }

    pub fn hashmap_insert<A: Allocator + Clone>(alloc: A) {
        // hashbrown's default hasher (foldhash) with a fixed seed: the same work every run.
        let hasher = foldhash::fast::FixedState::with_seed(0x5eed);
        let mut map: HashMap<u64, u64, _, A> = HashMap::with_hasher_in(hasher, alloc);
        for i in 0..PUSHES {
            map.insert(black_box(i), i);
        }
        black_box(&map);
    }
}

/// Defines one `#[inline(never)]` function per `case__contender`, `CASES` (their names,
/// for callgrind's report) and `run_cases`, which calls each once.
macro_rules! case_fns {
    ($text:ident; $($name:ident: $body:expr;)*) => {
        $(#[inline(never)] #[allow(non_snake_case)] fn $name($text: &str) { let _ = $text; $body })*
        const CASES: &[&str] = &[$(stringify!($name)),*];
        fn run_cases($text: &str) { $($name($text);)* }
    };
}

case_fns! {
    text;
    vec_push__perfloc: { let c = perfloc::chunk(); cases::vec_push(&c) };
    vec_push__bumpalo: { let b = bumpalo::Bump::new(); cases::vec_push(&b) };
    vec_push__bump_scope: { let b: bump_scope::Bump = bump_scope::Bump::new(); cases::vec_push(&b) };
    vec_reserve_exact_1__perfloc: { let c = perfloc::chunk(); cases::vec_reserve_exact_1(&c) };
    vec_reserve_exact_1__bumpalo: { let b = bumpalo::Bump::new(); cases::vec_reserve_exact_1(&b) };
    vec_reserve_exact_1__bump_scope: { let b: bump_scope::Bump = bump_scope::Bump::new(); cases::vec_reserve_exact_1(&b) };
    hashmap_insert__perfloc: { let c = perfloc::chunk(); cases::hashmap_insert(&c) };
    hashmap_insert__bumpalo: { let b = bumpalo::Bump::new(); cases::hashmap_insert(&b) };
    hashmap_insert__bump_scope: { let b: bump_scope::Bump = bump_scope::Bump::new(); cases::hashmap_insert(&b) };
    hashmap_insert__global: cases::hashmap_insert(Global);
    request_cycle_small__perfloc: for _ in 0..cases::REQUESTS { let c = perfloc::chunk(); black_box(workload::handle(text, 1, &c)); };
    request_cycle_small__bumpalo_new: for _ in 0..cases::REQUESTS { let b = bumpalo::Bump::new(); black_box(workload::handle(text, 1, &b)); };
    request_cycle_small__bumpalo_reset: { let mut b = bumpalo::Bump::new(); for _ in 0..cases::REQUESTS { black_box(workload::handle(text, 1, &b)); b.reset(); } };
    request_cycle_small__bump_scope: { let mut b: bump_scope::Bump = bump_scope::Bump::new(); for _ in 0..cases::REQUESTS { black_box(b.scoped(|s| workload::handle(text, 1, &*s))); } };
    request_cycle_small__global: for _ in 0..cases::REQUESTS { black_box(workload::handle(text, 1, Global)); };
    vec_push__perfloc_sync: { let c = perfloc::sync_chunk(); cases::vec_push(&c) };
    vec_reserve_exact_1__perfloc_sync: { let c = perfloc::sync_chunk(); cases::vec_reserve_exact_1(&c) };
    hashmap_insert__perfloc_sync: { let c = perfloc::sync_chunk(); cases::hashmap_insert(&c) };
    request_cycle_small__perfloc_sync: for _ in 0..cases::REQUESTS { let c = perfloc::sync_chunk(); black_box(workload::handle(text, 1, &c)); };
    scope_cycle__perfloc: for _ in 0..cases::REQUESTS { black_box(workload::tiny_scope(&perfloc::chunk())); };
    scope_cycle__bumpalo_new: for _ in 0..cases::REQUESTS { black_box(workload::tiny_scope(&bumpalo::Bump::new())); };
    scope_cycle__bump_scope_new: for _ in 0..cases::REQUESTS { let b: bump_scope::Bump = bump_scope::Bump::new(); black_box(workload::tiny_scope(&b)); };
    scope_cycle__global: for _ in 0..cases::REQUESTS { black_box(workload::tiny_scope(Global)); };
    scope_cycle__perfloc_sync: for _ in 0..cases::REQUESTS { black_box(workload::tiny_scope(&perfloc::sync_chunk())); };
    nested_scope__perfloc: { let mut c = perfloc::chunk(); for _ in 0..cases::REQUESTS { black_box(c.scoped(|c| workload::tiny_scope(&*c))); } };
    nested_scope__perfloc_child: { let c = perfloc::chunk(); for _ in 0..cases::REQUESTS { black_box(workload::tiny_scope(&c.child())); } };
    nested_scope__bump_scope: { let mut b: bump_scope::Bump = bump_scope::Bump::new(); for _ in 0..cases::REQUESTS { black_box(b.scoped(|s| workload::tiny_scope(&*s))); } };
    request_cycle_small__blink_sync_new: for _ in 0..cases::REQUESTS { let b = blink_alloc::SyncBlinkAlloc::new(); black_box(workload::handle(text, 1, workload::blink::Blink(&b))); };
    request_cycle_large__perfloc: for _ in 0..cases::LARGE_REQUESTS { let c = perfloc::chunk(); black_box(workload::handle(cases::large_text(), 64, &c)); };
    request_cycle_large__bumpalo_new: for _ in 0..cases::LARGE_REQUESTS { let b = bumpalo::Bump::new(); black_box(workload::handle(cases::large_text(), 64, &b)); };
    request_cycle_large__bumpalo_reset: { let mut b = bumpalo::Bump::new(); for _ in 0..cases::LARGE_REQUESTS { black_box(workload::handle(cases::large_text(), 64, &b)); b.reset(); } };
    request_cycle_large__bump_scope: { let mut b: bump_scope::Bump = bump_scope::Bump::new(); for _ in 0..cases::LARGE_REQUESTS { black_box(b.scoped(|s| workload::handle(cases::large_text(), 64, &*s))); } };
    request_cycle_large__global: for _ in 0..cases::LARGE_REQUESTS { black_box(workload::handle(cases::large_text(), 64, Global)); };
    parse_request__perfloc: for _ in 0..cases::REQUESTS { let c = perfloc::chunk(); black_box(workload::parse::perfloc(cases::json(), &c)); };
    parse_request__global: for _ in 0..cases::REQUESTS { black_box(workload::parse::std(cases::json())); };
    parse_request__perfloc_sync: for _ in 0..cases::REQUESTS { let c = perfloc::sync_chunk(); black_box(workload::parse::perfloc(cases::json(), &c)); };
}

/// Runs every function once on warmed arenas (their chunk already holds `N` allocations).
fn child() {
    // Steady state, whatever the time: under callgrind a second passes in a few thousand
    // cycles, and after the warm-up's big blocks the pool would have memory to give back,
    // so every 64th scope would run the downsizing policy (and cost more) or not, by
    // timing. With `decay` never, counts do not depend on it.
    perfloc::configure_global(perfloc::Pool::builder().decay(std::time::Duration::MAX))
        .expect("configured before first use");
    // Warm arenas: each one's current chunk holds N u64s (warmed through other code, since
    // callgrind's inclusive costs add up every call of a function).
    let room = Layout::array::<u64>(N + 64).expect("small");
    let mut chunk = perfloc::chunk();
    chunk.alloc_layout(room);
    chunk.reset();
    let mut sync_chunk = perfloc::sync_chunk();
    sync_chunk.alloc_layout(room);
    sync_chunk.reset();
    let mut bump = bumpalo::Bump::with_capacity(room.size());
    let mut scope: bump_scope::Bump = bump_scope::Bump::with_capacity(room);
    baseline_typed(N);
    perfloc_typed(&chunk, N);
    perfloc_sync_typed(&sync_chunk, N);
    bumpalo_typed(&bump, N);
    bump_scope_typed(&scope, N);
    chunk.reset();
    bump.reset();
    scope.reset();
    baseline_allocate(N);
    sync_chunk.reset();
    perfloc_allocate(&chunk, N);
    perfloc_sync_allocate(&sync_chunk, N);
    bumpalo_allocate(&bump, N);
    bump_scope_allocate(&scope, N);
    // Warm perfloc's global pool and the allocator, then run each case once.
    let text = workload::request_text(1);
    for _ in 0..100 {
        black_box(workload::handle(&text, 1, &perfloc::chunk()));
    }
    // Made now, so that no case counts it.
    black_box(cases::large_text());
    black_box(cases::json());
    run_cases(&text);
}

/// Inclusive (instructions, conditional branches, data writes) of `function` in
/// callgrind's output.
fn cost(annotated: &str, function: &str) -> (f64, f64, f64) {
    let line = annotated
        .lines()
        .find(|l| {
            l.contains(&format!("instructions::{function} "))
                || l.ends_with(&format!("instructions::{function}"))
        })
        .unwrap_or_else(|| panic!("{function} not in callgrind's report"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .take_while(|w| !w.contains(':'))
        .filter_map(|w| w.trim_end_matches(['(', ')']).replace(',', "").parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let me = std::env::current_exe().expect("own path");
    let out = std::env::temp_dir().join(format!("perfloc-callgrind-{}.out", std::process::id()));
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--branch-sim=yes", "--cache-sim=yes"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&me)
        .env(CHILD, "1")
        .output();
    match status {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("valgrind failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("valgrind is needed (apt-get install valgrind): {e}"),
    }
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100", "--show=Ir,Bc,Dw"])
        .arg(&out)
        .output()
        .expect("callgrind_annotate");
    let _ = std::fs::remove_file(&out);
    let annotated = String::from_utf8_lossy(&annotated.stdout);

    // perfloc's own figures, for the regression gate.
    let mut gated: Vec<(String, f64)> = Vec::new();
    println!("per allocation of a u64 into a warmed arena (callgrind, N = {N})\n");
    println!(
        "{:<34} {:>13} {:>15} {:>17}",
        "", "instructions", "cond. branches", "writes (w/ loop)"
    );
    for (kind, baseline) in
        [("typed alloc", "baseline_typed"), ("Allocator::allocate", "baseline_allocate")]
    {
        let (base_ir, base_bc, _) = cost(&annotated, baseline);
        let suffix = if kind == "typed alloc" { "typed" } else { "allocate" };
        for name in ["perfloc", "perfloc_sync", "bumpalo", "bump_scope"] {
            let (ir, bc, dw) = cost(&annotated, &format!("{name}_{suffix}"));
            if name.starts_with("perfloc") {
                gated.push((format!("{name}_{suffix}"), (ir - base_ir) / N as f64));
            }
            println!(
                "{:<34} {:>13.2} {:>15.2} {:>17.2}",
                format!("{name}, {kind}"),
                (ir - base_ir) / N as f64,
                (bc - base_bc) / N as f64,
                dw / N as f64
            );
        }
    }
    println!("\ninstructions and branches: the loop's own cost (`baseline_*`) subtracted;");
    println!("writes: everything the loop stores per allocation, loop included.");

    println!("\nwhole benchmark cases, one run each (fresh arena; requests: per request)\n");
    println!("{:<22} {:<15} {:>14} {:>9}", "case", "contender", "instructions", "ratio");
    let mut perfloc_ir = std::collections::HashMap::new();
    for name in CASES {
        let (case, contender) = name.split_once("__").expect("case__contender");
        let (mut ir, _, mut dw) = cost(&annotated, name);
        if case == "request_cycle_large" {
            ir /= cases::LARGE_REQUESTS as f64;
        } else if case.starts_with("request")
            || case == "parse_request"
            || case.ends_with("scope_cycle")
            || case == "nested_scope"
        {
            ir /= cases::REQUESTS as f64;
            dw /= cases::REQUESTS as f64;
        }
        // The `SyncChunk` rows come after the others: their ratio is against `Chunk` too.
        if contender == "perfloc" {
            perfloc_ir.insert(case, ir);
        }
        if contender.starts_with("perfloc") {
            gated.push((name.to_string(), ir));
        }
        println!(
            "{case:<22} {:<15} {ir:>14.0} {:>9.2}",
            contender.replace('_', "-"),
            perfloc_ir[case] / ir
        );
        // The scope cycle's stores are gated too: a `Vec` pinned in memory (see perfloc's
        // `StateOps::DEALLOC_OUT_OF_LINE`) stores its length at every byte it copies; that
        // took the cycle from 78 stores to 92 and, on a fast machine, from 28-32 ns to
        // 37-42 ns, while its instruction count fell (docs/benchmarks.md).
        if *name == "scope_cycle__perfloc" {
            gated.push((format!("{name}__stores"), dw));
            println!("{:<22} {:<15} {dw:>14.0} {:>9}", "scope_cycle", "perfloc stores", "");
        }
    }
    println!("\nratio: perfloc's instructions over the contender's.");
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => {}
        (Some("--save"), Some(path)) => save(&gated, &path),
        (Some("--check"), Some(path)) => check(&gated, &path),
        _ => {
            eprintln!("usage: instructions [--save FILE | --check FILE]");
            std::process::exit(2);
        }
    }
}

/// How far above its baseline a count may rise before `--check` fails.
const TOLERANCE: f64 = 0.05;

/// Writes perfloc's counts as the new baseline: one `name count` line each.
fn save(gated: &[(String, f64)], path: &str) {
    let text: String = gated.iter().map(|(name, ir)| format!("{name} {ir:.2}\n")).collect();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    println!("\nbaseline written to {path}");
}

/// Compares perfloc's counts with the baseline; exits 1 if any rose more than
/// `TOLERANCE` above it, or is missing from it.
fn check(gated: &[(String, f64)], path: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let baseline: std::collections::HashMap<&str, f64> = text
        .lines()
        .filter_map(|line| {
            let (name, ir) = line.split_once(' ')?;
            Some((name, ir.trim().parse().ok()?))
        })
        .collect();
    println!("\nregression gate against {path} (fails above +{:.0}%)\n", TOLERANCE * 100.0);
    let mut failed = false;
    for (name, ir) in gated {
        let verdict = match baseline.get(name.as_str()) {
            None => {
                failed = true;
                "MISSING from the baseline".to_owned()
            }
            Some(&base) => {
                let change = ir / base - 1.0;
                failed |= change > TOLERANCE;
                let tag = if change > TOLERANCE { "REGRESSED" } else { "ok" };
                format!("{base:>12.2} -> {ir:>12.2} ({:+.1}%) {tag}", change * 100.0)
            }
        };
        println!("{name:<40} {verdict}");
    }
    if failed {
        eprintln!(
            "\ninstruction counts rose above the baseline; if intended, update it with \
             `cargo run --release --example instructions -- --save {path}`"
        );
        std::process::exit(1);
    }
}
