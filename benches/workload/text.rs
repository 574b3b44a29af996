//! The text workload shared by `benches/text.rs` and `examples/text_instructions.rs`:
//! `STRINGS` strings formatted from four arguments, or `STRINGS` short pieces pushed onto
//! one string, in a chunk, a bumpalo `Bump` or the global heap.

use std::hint::black_box;

pub const STRINGS: usize = 1_000;

/// Short pieces to push, of a few lengths.
pub const PIECES: [&str; 4] = ["Content-Type", ": ", "text/html; charset=utf-8", "\r\n"];

pub fn perfloc_format(chunk: &perfloc::Chunk<'_>) -> usize {
    let mut total = 0;
    for i in 0..STRINGS {
        let s = perfloc::format_in!(
            chunk,
            "{} {} {}: {}",
            black_box("GET"),
            i,
            black_box('/'),
            black_box(i as i64 * -31)
        );
        total += s.into_str().len();
    }
    total
}

pub fn perfloc_alloc_fmt(chunk: &perfloc::Chunk<'_>) -> usize {
    let mut total = 0;
    for i in 0..STRINGS {
        let s = chunk.alloc_fmt(format_args!(
            "{} {} {}: {}",
            black_box("GET"),
            i,
            black_box('/'),
            black_box(i as i64 * -31)
        ));
        total += s.len();
    }
    total
}

pub fn bumpalo_format(bump: &bumpalo::Bump) -> usize {
    let mut total = 0;
    for i in 0..STRINGS {
        let s = bumpalo::format!(
            in bump,
            "{} {} {}: {}",
            black_box("GET"),
            i,
            black_box('/'),
            black_box(i as i64 * -31)
        );
        total += s.into_bump_str().len();
    }
    total
}

pub fn global_format() -> usize {
    let mut kept = Vec::with_capacity(STRINGS);
    for i in 0..STRINGS {
        kept.push(format!(
            "{} {} {}: {}",
            black_box("GET"),
            i,
            black_box('/'),
            black_box(i as i64 * -31)
        ));
    }
    kept.iter().map(String::len).sum()
}

pub fn perfloc_push(chunk: &perfloc::Chunk<'_>) -> usize {
    let mut s = perfloc::String::new_in(chunk);
    for i in 0..STRINGS {
        s.push_str(black_box(PIECES[i % PIECES.len()]));
    }
    s.len()
}

pub fn bumpalo_push(bump: &bumpalo::Bump) -> usize {
    let mut s = bumpalo::collections::String::new_in(bump);
    for i in 0..STRINGS {
        s.push_str(black_box(PIECES[i % PIECES.len()]));
    }
    s.len()
}

pub fn global_push() -> usize {
    let mut s = String::new();
    for i in 0..STRINGS {
        s.push_str(black_box(PIECES[i % PIECES.len()]));
    }
    s.len()
}
