//! Simulated request handling: each request's parsed headers (a `HashMap`), body (`Box`)
//! and items (`Vec`) live in a per-request process chunk from the global pool. After a
//! short warm-up the pool serves every request from memory it already has: the report at
//! the end shows no system call after warm-up.
//!
//! Run with `cargo run --release --example request_scope`; an optional argument sets the
//! number of requests after warm-up (default 100,000), which lets `strace` confirm that
//! they make no system call:
//!
//! ```sh
//! strace -f -c -e trace=mmap,munmap,madvise target/release/examples/request_scope 0
//! strace -f -c -e trace=mmap,munmap,madvise target/release/examples/request_scope 100000
//! ```

use std::fmt::Write as _;
use std::time::Instant;

use allocator_api2::{boxed::Box, vec::Vec};
use hashbrown::{DefaultHashBuilder, HashMap};
use perfloc::{Chunk, Pool};

const WARM_UP: usize = 1_000;
const DEFAULT_REQUESTS: usize = 100_000;

/// A parsed request; every part lives in the request's chunk.
struct Request<'c> {
    method: &'c str,
    path: &'c str,
    headers: HashMap<&'c str, &'c str, DefaultHashBuilder, &'c Chunk<'static>>,
    items: Vec<Item<'c>, &'c Chunk<'static>>,
    body: Box<[u8], &'c Chunk<'static>>,
}

struct Item<'c> {
    id: u64,
    name: &'c str,
    quantity: u32,
}

/// Builds the text of request number `n`: a few headers and a body of items.
fn synthetic_request(n: usize) -> String {
    let mut text = format!("POST /orders/{n} HTTP/1.1\r\n");
    for h in 0..16 + n % 16 {
        let _ = write!(text, "x-header-{h}: value-{}-{h}\r\n", n % 97);
    }
    text.push_str("\r\n");
    for i in 0..20 + n % 80 {
        let _ = writeln!(text, "{},item-{},{}", n * 1000 + i, i % 13, i % 7 + 1);
    }
    text
}

/// Parses `text` into collections that live in `chunk`.
fn parse<'c>(text: &str, chunk: &'c Chunk<'static>) -> Request<'c> {
    let text = chunk.alloc_str(text);
    let (head, body) = text.split_once("\r\n\r\n").expect("a blank line ends the head");
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().expect("a request line").split(' ');
    let method = request_line.next().unwrap_or("GET");
    let path = request_line.next().unwrap_or("/");
    let mut headers =
        HashMap::with_capacity_and_hasher_in(32, DefaultHashBuilder::default(), chunk);
    for line in lines {
        if let Some((name, value)) = line.split_once(": ") {
            headers.insert(name, value);
        }
    }
    let mut items = Vec::new_in(chunk);
    for line in body.lines() {
        let mut fields = line.split(',');
        let (Some(id), Some(name), Some(quantity)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        items.push(Item {
            id: id.parse().unwrap_or(0),
            name,
            quantity: quantity.parse().unwrap_or(0),
        });
    }
    let mut bytes = Vec::with_capacity_in(body.len(), chunk);
    bytes.extend_from_slice(body.as_bytes());
    let body = bytes.into_boxed_slice();
    Request { method, path, headers, items, body }
}

/// Handles one request in its own chunk and returns a small summary.
fn handle(text: &str) -> (usize, u64) {
    let chunk = perfloc::chunk();
    let request = parse(text, &chunk);
    debug_assert_eq!(request.method, "POST");
    let total: u64 = request.items.iter().map(|i| i.id % 10 + u64::from(i.quantity)).sum();
    let named = request.items.iter().filter(|i| i.name.ends_with('3')).count();
    (request.headers.len() + named + request.path.len() + request.body.len() % 2, total)
    // `request` drops here, then `chunk`: every block goes back to the pool at once.
}

fn main() {
    let requests: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .unwrap_or_else(|_| panic!("the argument is a number of requests, not {arg:?}")),
        None => DEFAULT_REQUESTS,
    };
    let texts: std::vec::Vec<String> = (0..256).map(synthetic_request).collect();
    let pool = Pool::global();

    for n in 0..WARM_UP {
        handle(&texts[n % texts.len()]);
    }
    let warm = pool.stats();

    let start = Instant::now();
    let mut checksum = 0u64;
    for n in 0..requests {
        let (count, total) = handle(&texts[n % texts.len()]);
        checksum = checksum.wrapping_add(count as u64 + total);
    }
    let elapsed = start.elapsed();
    let after = pool.stats();

    println!(
        "handled {requests} requests in {elapsed:.2?} ({:.0} ns each), checksum {checksum}",
        elapsed.as_nanos() as f64 / requests.max(1) as f64
    );
    println!("\n{after}\n");
    let calls = (after.mmap_calls - warm.mmap_calls) + (after.munmap_calls - warm.munmap_calls);
    println!("system calls after warm-up ({WARM_UP} requests): {calls}");
    assert_eq!(calls, 0, "steady state makes no system call");
    assert_eq!(after.in_use_bytes, 0, "every chunk gave its blocks back");
}
