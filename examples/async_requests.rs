//! Many concurrent simulated requests on tokio's multi-thread runtime, each in its own
//! [`SyncChunk`](perfloc::SyncChunk): the handler parses a small text body into a map and a
//! vector in the chunk, awaits in the middle (the task may resume on another worker
//! thread, which a `Chunk` would not allow), builds its response in the chunk, and drops
//! the chunk. After a warm-up the pool serves every request from memory it already has:
//! the program asserts that the `mmap`, `munmap` and `madvise` counts do not move.
//!
//! ```sh
//! cargo run --release --example async_requests            # 100,000 requests
//! cargo run --release --example async_requests -- 20000   # another count
//! ```

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use allocator_api2::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashMap};
use perfloc::{Pool, SyncChunk};

/// Requests in flight at once: each batch is spawned, then joined.
const CONCURRENCY: usize = 500;
const WARM_UP_BATCHES: usize = 4;
const DEFAULT_REQUESTS: usize = 100_000;

/// Builds the body of request `n`: `key=value` lines and a few items.
fn synthetic_body(n: usize) -> String {
    let mut text = String::new();
    for k in 0..8 + n % 8 {
        let _ = writeln!(text, "field-{k}={}", n * 31 + k);
    }
    for i in 0..10 + n % 40 {
        let _ = writeln!(text, "item={}", n * 1000 + i);
    }
    text
}

/// Handles one request in its own `SyncChunk`, awaiting between parsing and answering.
async fn handle(pool: &'static Pool, body: &str) -> usize {
    let chunk = pool.sync_chunk();
    let text = chunk.alloc_str(body);
    let mut fields: HashMap<&str, &str, DefaultHashBuilder, &SyncChunk> = HashMap::new_in(&chunk);
    let mut items: Vec<u64, &SyncChunk> = Vec::new_in(&chunk);
    for line in text.lines() {
        match line.split_once('=') {
            Some(("item", id)) => items.push(id.parse().unwrap_or(0)),
            Some((key, value)) => {
                fields.insert(key, value);
            }
            None => {}
        }
    }
    // A database call, say: the task may come back on another worker thread.
    tokio::task::yield_now().await;
    let mut response: Vec<u8, &SyncChunk> = Vec::with_capacity_in(256, &chunk);
    let total: u64 = items.iter().sum();
    let _ = write!(
        Writer(&mut response),
        "200 OK\n{} fields, {} items, total {total}\n",
        fields.len(),
        items.len()
    );
    tokio::task::yield_now().await;
    for (key, value) in fields.iter().take(4) {
        response.extend_from_slice(key.as_bytes());
        response.push(b':');
        response.extend_from_slice(value.as_bytes());
        response.push(b'\n');
    }
    response.len()
    // `response`, `items` and `fields` drop, then the chunk: its blocks go back at once.
}

/// `fmt::Write` into a `Vec` in a chunk.
struct Writer<'a, 'c>(&'a mut Vec<u8, &'c SyncChunk<'static>>);

impl std::fmt::Write for Writer<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Serves one batch of `CONCURRENCY` concurrent requests; returns the bytes answered.
async fn batch(pool: &'static Pool, bodies: &'static [String]) -> usize {
    let tasks: std::vec::Vec<_> =
        (0..CONCURRENCY).map(|i| tokio::spawn(handle(pool, &bodies[i % bodies.len()]))).collect();
    let mut bytes = 0;
    for task in tasks {
        bytes += task.await.expect("the handler does not panic");
    }
    bytes
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests: usize = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .unwrap_or_else(|_| panic!("the argument is a number of requests, not {arg:?}")),
        None => DEFAULT_REQUESTS,
    };
    // Keep what the peak needs: the traffic is steady, nothing should go back to the OS.
    let pool: &'static Pool = Box::leak(Box::new(
        Pool::builder().retain(64 << 20).decay(Duration::from_secs(60)).build().expect("valid"),
    ));
    let bodies: &'static [String] =
        (0..64).map(synthetic_body).collect::<std::vec::Vec<_>>().leak();

    for _ in 0..WARM_UP_BATCHES {
        batch(pool, bodies).await;
    }
    let warm = pool.stats();

    let start = Instant::now();
    let mut bytes = 0;
    let batches = requests.div_ceil(CONCURRENCY);
    for _ in 0..batches {
        bytes += batch(pool, bodies).await;
    }
    let elapsed = start.elapsed();
    let after = pool.stats();
    let served = batches * CONCURRENCY;

    println!(
        "served {served} requests ({CONCURRENCY} in flight) in {elapsed:.2?}: {:.0} requests/s, \
         {bytes} response bytes",
        served as f64 / elapsed.as_secs_f64()
    );
    println!("\n{after}\n");
    let calls = (after.mmap_calls - warm.mmap_calls)
        + (after.munmap_calls - warm.munmap_calls)
        + (after.madvise_calls - warm.madvise_calls);
    println!("system calls after warm-up ({WARM_UP_BATCHES} batches): {calls}");
    assert_eq!(calls, 0, "steady state makes no system call");
    assert_eq!(after.in_use_bytes, 0, "every chunk gave its blocks back");
}
