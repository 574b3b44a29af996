//! Instructions per 1,000 strings for the cases of `benches/text.rs`, counted by callgrind
//! (exact and repeatable, unlike wall-clock time on a shared machine): perfloc's
//! `format_in!` and `alloc_fmt` against bumpalo's `format!(in &bump, …)` and `std::format!`,
//! and 1,000 `push_str`s onto one string, each in a warmed arena reset after every round
//! (`-reset`) and in a fresh one per round (`-new`).
//!
//! ```sh
//! cargo run --release --example text_instructions      # needs valgrind
//! ```
//!
//! The program runs itself under `valgrind --tool=callgrind`; each case's function runs
//! `ROUNDS` rounds, and its inclusive instruction count is divided by `ROUNDS`.

// The case functions are named `group__contender`, the shape callgrind's report is read in.
#![allow(non_snake_case)]

use std::hint::black_box;
use std::process::Command;

#[path = "../benches/workload/text.rs"]
mod text;
use text::*;

const ROUNDS: usize = 20;
const CHILD: &str = "PERFLOC_TEXT_INSTRUCTIONS_CHILD";

#[inline(never)]
fn format_in__perfloc_reset(chunk: &mut perfloc::Chunk<'_>) {
    for _ in 0..ROUNDS {
        black_box(perfloc_format(chunk));
        chunk.reset();
    }
}

#[inline(never)]
fn format_in__perfloc_alloc_fmt_reset(chunk: &mut perfloc::Chunk<'_>) {
    for _ in 0..ROUNDS {
        black_box(perfloc_alloc_fmt(chunk));
        chunk.reset();
    }
}

#[inline(never)]
fn format_in__bumpalo_reset(bump: &mut bumpalo::Bump) {
    for _ in 0..ROUNDS {
        black_box(bumpalo_format(bump));
        bump.reset();
    }
}

#[inline(never)]
fn format_in__perfloc_new() {
    for _ in 0..ROUNDS {
        black_box(perfloc_format(&perfloc::chunk()));
    }
}

#[inline(never)]
fn format_in__perfloc_alloc_fmt_new() {
    for _ in 0..ROUNDS {
        black_box(perfloc_alloc_fmt(&perfloc::chunk()));
    }
}

#[inline(never)]
fn format_in__bumpalo_new() {
    for _ in 0..ROUNDS {
        black_box(bumpalo_format(&bumpalo::Bump::new()));
    }
}

#[inline(never)]
fn format_in__global() {
    for _ in 0..ROUNDS {
        black_box(global_format());
    }
}

#[inline(never)]
fn string_push_str__perfloc_reset(chunk: &mut perfloc::Chunk<'_>) {
    for _ in 0..ROUNDS {
        black_box(perfloc_push(chunk));
        chunk.reset();
    }
}

#[inline(never)]
fn string_push_str__bumpalo_reset(bump: &mut bumpalo::Bump) {
    for _ in 0..ROUNDS {
        black_box(bumpalo_push(bump));
        bump.reset();
    }
}

#[inline(never)]
fn string_push_str__perfloc_new() {
    for _ in 0..ROUNDS {
        black_box(perfloc_push(&perfloc::chunk()));
    }
}

#[inline(never)]
fn string_push_str__bumpalo_new() {
    for _ in 0..ROUNDS {
        black_box(bumpalo_push(&bumpalo::Bump::new()));
    }
}

#[inline(never)]
fn string_push_str__global() {
    for _ in 0..ROUNDS {
        black_box(global_push());
    }
}

/// Every case, grouped; the first of each group is the one the others are compared with.
const CASES: [(&str, &[&str]); 2] = [
    (
        "format_in",
        &[
            "perfloc_reset",
            "perfloc_alloc_fmt_reset",
            "bumpalo_reset",
            "perfloc_new",
            "perfloc_alloc_fmt_new",
            "bumpalo_new",
            "global",
        ],
    ),
    (
        "string_push_str",
        &["perfloc_reset", "bumpalo_reset", "perfloc_new", "bumpalo_new", "global"],
    ),
];

fn child() {
    let mut chunk = perfloc::chunk();
    let mut bump = bumpalo::Bump::new();
    // Warm the pool, the arenas and the allocator.
    for _ in 0..3 {
        black_box(perfloc_format(&chunk));
        chunk.reset();
        black_box(bumpalo_format(&bump));
        bump.reset();
        black_box(perfloc_format(&perfloc::chunk()));
    }
    format_in__perfloc_reset(&mut chunk);
    format_in__perfloc_alloc_fmt_reset(&mut chunk);
    format_in__bumpalo_reset(&mut bump);
    format_in__perfloc_new();
    format_in__perfloc_alloc_fmt_new();
    format_in__bumpalo_new();
    format_in__global();
    string_push_str__perfloc_reset(&mut chunk);
    string_push_str__bumpalo_reset(&mut bump);
    string_push_str__perfloc_new();
    string_push_str__bumpalo_new();
    string_push_str__global();
}

/// Inclusive instructions of `function` in callgrind's output.
fn cost(annotated: &str, function: &str) -> f64 {
    let line = annotated
        .lines()
        .find(|l| l.contains(&format!("text_instructions::{function} ")))
        .unwrap_or_else(|| panic!("{function} not in callgrind's report"));
    line.split_whitespace()
        .next()
        .and_then(|w| w.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"))
}

fn main() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let me = std::env::current_exe().expect("own path");
    let out = std::env::temp_dir().join(format!("perfloc-text-{}.out", std::process::id()));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
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
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(&out)
        .output()
        .expect("callgrind_annotate");
    let _ = std::fs::remove_file(&out);
    let annotated = String::from_utf8_lossy(&annotated.stdout);

    println!("instructions per {STRINGS} strings (callgrind, mean of {ROUNDS} rounds)\n");
    println!(
        "{:<17} {:<25} {:>13} {:>22}",
        "group", "contender", "instructions", "vs bumpalo (same arena)"
    );
    for (group, contenders) in CASES {
        for contender in contenders {
            let ir = cost(&annotated, &format!("{group}__{contender}")) / ROUNDS as f64;
            let versus = match contender.rsplit_once('_') {
                Some((_, arena @ ("reset" | "new"))) if !contender.starts_with("bumpalo") => {
                    let bumpalo = cost(&annotated, &format!("{group}__bumpalo_{arena}"));
                    format!("{:.3}", ir / (bumpalo / ROUNDS as f64))
                }
                _ => std::string::String::new(),
            };
            println!("{group:<17} {:<25} {ir:>13.0} {versus:>22}", contender.replace('_', "-"));
        }
    }
}
