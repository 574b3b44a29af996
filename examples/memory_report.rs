//! How much memory a request's arena takes for what it keeps: each workload runs once in
//! a fresh perfloc `Chunk` and `SyncChunk`, bumpalo `Bump` and bump-scope `Bump`, and on
//! the global allocator through a counting wrapper, whose peak of live requested bytes is
//! what glibc's malloc is asked for at the worst moment (the floor any allocator works
//! from). An arena's footprint is the peak of the bytes of its blocks (perfloc's
//! `peak_bytes`; bumpalo's and bump-scope's chunks, which only grow until a reset).
//!
//! ```sh
//! cargo run --release --example memory_report
//! ```
//!
//! The measure of issue 24 ("a request's chunk holds little more than its data").

use std::alloc::Layout;
use std::cell::Cell;
use std::hint::black_box;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator, Global};
use allocator_api2::vec::Vec;
use hashbrown::{DefaultHashBuilder, HashMap};

#[path = "../benches/workload/mod.rs"]
#[allow(dead_code)]
mod workload;

/// The global allocator, counting the bytes live and their peak.
#[derive(Default)]
struct Counting {
    live: Cell<usize>,
    peak: Cell<usize>,
}

impl Counting {
    fn add(&self, bytes: usize) {
        self.live.set(self.live.get() + bytes);
        self.peak.set(self.peak.get().max(self.live.get()));
    }

    fn sub(&self, bytes: usize) {
        self.live.set(self.live.get() - bytes);
    }
}

// SAFETY: every call is forwarded to `Global` unchanged; only the counters change.
unsafe impl Allocator for &Counting {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.add(layout.size());
        Global.allocate(layout)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        self.sub(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { Global.deallocate(ptr, layout) }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // malloc's realloc holds both only when it moves; count the new size at once.
        self.add(new.size() - old.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { Global.grow(ptr, old, new) }
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        self.sub(old.size() - new.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { Global.shrink(ptr, old, new) }
    }
}

/// The workloads, each generic over the allocator it runs in.
mod workloads {
    use super::*;

    /// The server's calm body: 20 items, about 4 KB of JSON, parsed into the arena.
    pub fn calm_body<A: Allocator + Copy>(alloc: A) {
        black_box(workload::parse::perfloc(&bodies().0, alloc));
    }

    /// A spike body: 1,250 items, about 260 KB of JSON.
    pub fn spike_body<A: Allocator + Copy>(alloc: A) {
        black_box(workload::parse::perfloc(&bodies().1, alloc));
    }

    /// A `HashMap` of 100,000 inserts.
    pub fn map_growth<A: Allocator + Copy>(alloc: A) {
        let mut map = HashMap::with_hasher_in(DefaultHashBuilder::default(), alloc);
        for i in 0..100_000u64 {
            map.insert(i, i);
        }
        black_box(&map);
    }

    /// A body read in 4 KiB pieces, with no size known, to 1 MiB.
    pub fn body_in_pieces<A: Allocator + Copy>(alloc: A) {
        let piece = [7u8; 4096];
        let mut body: Vec<u8, A> = Vec::new_in(alloc);
        for _ in 0..256 {
            body.reserve(piece.len());
            body.extend_from_slice(&piece);
        }
        black_box(&body);
    }

    /// A `Vec<u64>` pushed to 1 MiB.
    pub fn vec_push_1mib<A: Allocator + Copy>(alloc: A) {
        let mut v: Vec<u64, A> = Vec::new_in(alloc);
        for i in 0..(1u64 << 17) {
            v.push(i);
        }
        black_box(&v);
    }

    /// 1,000 small vectors growing in turn, 100 `u32`s each (hostile to any arena).
    pub fn vectors_in_turn<A: Allocator + Copy>(alloc: A) {
        let mut vectors: Vec<Vec<u32, A>, A> = Vec::new_in(alloc);
        for _ in 0..1000 {
            vectors.push(Vec::new_in(alloc));
        }
        for round in 0..100 {
            for v in vectors.iter_mut() {
                v.push(round);
            }
        }
        black_box(&vectors);
    }

    /// The two JSON bodies, made once.
    fn bodies() -> &'static (String, String) {
        static BODIES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
        BODIES.get_or_init(|| (workload::parse::body(20), workload::parse::body(1250)))
    }
}

/// One workload run in every contender: (requested peak, perfloc Chunk, SyncChunk,
/// bumpalo, bump-scope), in bytes.
fn measure(
    run: fn(&Counting),
    chunk: fn(&perfloc::Chunk<'_>),
    sync: fn(&perfloc::SyncChunk<'_>),
    bump: fn(&bumpalo::Bump),
    scope: fn(&bump_scope::Bump),
) -> [usize; 5] {
    let counting = Counting::default();
    run(&counting);
    let pool = perfloc::Pool::new();
    let c = pool.chunk();
    chunk(&c);
    let s = pool.sync_chunk();
    sync(&s);
    let b = bumpalo::Bump::new();
    bump(&b);
    let bs: bump_scope::Bump = bump_scope::Bump::new();
    scope(&bs);
    [
        counting.peak.get(),
        c.stats().peak_bytes,
        s.stats().peak_bytes,
        b.allocated_bytes_including_metadata(),
        bs.stats().size(),
    ]
}

macro_rules! report {
    ($($name:ident),* $(,)?) => {
        [$((
            stringify!($name),
            measure(
                |a| workloads::$name(a),
                |c| workloads::$name(c),
                |s| workloads::$name(s),
                |b| workloads::$name(b),
                |s| workloads::$name(s),
            ),
        )),*]
    };
}

fn main() {
    let rows =
        report!(calm_body, spike_body, map_growth, body_in_pieces, vec_push_1mib, vectors_in_turn);
    println!(
        "footprint of one request's arena, KiB (and times the peak of live requested bytes)\n"
    );
    println!(
        "| workload | requested peak | perfloc Chunk | perfloc SyncChunk | bumpalo | bump-scope |"
    );
    println!("|---|---|---|---|---|---|");
    let mut logs = [0.0f64; 4];
    for (name, [requested, rest @ ..]) in &rows {
        let cells: std::vec::Vec<String> = rest
            .iter()
            .map(|&bytes| format!("{} ({:.2}×)", bytes / 1024, bytes as f64 / *requested as f64))
            .collect();
        for (log, &bytes) in logs.iter_mut().zip(rest) {
            *log += (bytes as f64 / *requested as f64).ln();
        }
        println!("| {name} | {} | {} |", requested / 1024, cells.join(" | "));
    }
    let means: std::vec::Vec<String> =
        logs.iter().map(|log| format!("{:.2}×", (log / rows.len() as f64).exp())).collect();
    println!("| geometric mean | | {} |", means.join(" | "));
}
