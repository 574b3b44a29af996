//! The request workload shared by `benches/request.rs` and `examples/instructions.rs`:
//! a synthetic HTTP request and the handler that parses it into collections.

use std::fmt::Write as _;
use std::hint::black_box;

use allocator_api2::alloc::Allocator;
use allocator_api2::{boxed::Box, vec::Vec};
use hashbrown::{DefaultHashBuilder, HashMap};

pub mod blink;
pub mod parse;

/// One item of the request body: its line, a slice of the request text as a zero-copy
/// parser produces it, and a normalised (upper-case) copy of its name in the arena.
struct Item<'a, A: Allocator> {
    line: &'a [u8],
    name: Vec<u8, A>,
}

/// The synthetic request text for a scale: 32 headers, `100 * scale` item lines.
pub fn request_text(scale: usize) -> String {
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
///
/// The parse is a single byte scan, as HTTP parsers do. Per small request (`scale` 1): a
/// 32-header `HashMap<&str, &str>` (~2 KiB), a `Vec` of 100 items grown by pushes (~10 KiB
/// with the copies of growth) each with its name copied (100 small allocations), a copy of
/// the body (~2.5 KiB), three boxed 512-byte arrays and a 256-entry scratch `Vec<u64>`
/// (2 KiB): about 16 KiB in all.
pub fn handle<A: Allocator + Clone>(text: &str, scale: usize, alloc: A) -> u64 {
    let bytes = text.as_bytes();
    let mut headers: HashMap<&str, &str, DefaultHashBuilder, A> =
        HashMap::with_capacity_and_hasher_in(32, DefaultHashBuilder::default(), alloc.clone());
    // Head: skip the request line, then `name: value\r\n` until an empty line.
    let mut at = bytes.iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| i + 1);
    while at + 1 < bytes.len() && bytes[at] != b'\r' {
        let line_end =
            at + bytes[at..].iter().position(|&b| b == b'\n').unwrap_or(bytes.len() - at);
        let line = &text[at..line_end.saturating_sub(1).max(at)];
        if let Some(colon) = line.bytes().position(|b| b == b':') {
            headers.insert(&line[..colon], line[colon + 1..].trim_start());
        }
        at = line_end + 1;
    }
    let body = &bytes[(at + 2).min(bytes.len())..];
    // Body: one item per line, four comma-separated fields, in one pass.
    let mut items: Vec<Item<'_, A>, A> = Vec::new_in(alloc.clone());
    let (mut start, mut commas, mut n) = (0, [0usize; 3], 0);
    for (i, &b) in body.iter().enumerate() {
        if b == b',' && n < 3 {
            commas[n] = i;
            n += 1;
        } else if b == b'\n' {
            if n == 3 {
                let raw = &body[commas[0] + 1..commas[1]];
                let mut name = Vec::with_capacity_in(raw.len(), alloc.clone());
                name.extend(raw.iter().map(u8::to_ascii_uppercase));
                items.push(Item { line: &body[start..i], name });
            }
            (start, n) = (i + 1, 0);
        }
    }
    let mut copy: Vec<u8, A> = Vec::with_capacity_in(body.len(), alloc.clone());
    copy.extend_from_slice(body);
    let boxes: [Box<[u64; 64], A>; 3] =
        core::array::from_fn(|i| Box::new_in([i as u64; 64], alloc.clone()));
    let mut scratch: Vec<u64, A> = Vec::with_capacity_in(256 * scale, alloc.clone());
    scratch.extend(items.iter().map(|i| (i.line.len() + i.name.len()) as u64));
    let total: u64 = scratch.iter().sum();
    let named = items.iter().filter(|i| i.name.ends_with(b"7")).count() as u64;
    total
        + named
        + headers.get("x-header-07").map_or(0, |v| v.len() as u64)
        + copy.len() as u64
        + boxes[2][0]
}

/// The work of the smallest scope, for `scope_cycle`: a boxed `u64`, a boxed 32-byte array
/// and a 16-byte `Vec`, all in `alloc`; returns a checksum.
pub fn tiny_scope<A: Allocator + Clone>(alloc: A) -> u64 {
    let a = Box::new_in(black_box(7u64), alloc.clone());
    let b = Box::new_in(black_box([1u8; 32]), alloc.clone());
    let mut c: Vec<u8, A> = Vec::with_capacity_in(16, alloc);
    c.extend_from_slice(&b[..16]);
    *a + u64::from(b[31]) + c.len() as u64
}
