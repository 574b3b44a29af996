//! Formatting into a chunk takes nothing from the global heap: `alloc_fmt`, `try_alloc_fmt`
//! and `format_in!` write straight into the chunk, with no temporary `std::string::String`.
//! Nor does deserializing a request into a chunk with `#[derive(DeserializeIn)]`, escaped
//! text included, once the thread has its staging stack (taken on its first sequence of
//! unknown length, then kept).
//!
//! A binary of its own, for its counting `#[global_allocator]`: it counts the allocations
//! of the thread that switched counting on, so the test harness's other threads do not
//! disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt;

use perfloc::{Chunk, String, format_in};

/// `System`, counting the allocations (and reallocations) of threads that asked for it.
struct Counting;

thread_local! {
    /// Whether this thread's allocations are counted. `const`-initialised and without a
    /// destructor, so the allocator may read it at any time without allocating.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// How many allocations this thread made while counting.
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the slots may be gone while the thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches thread-locals
// that need no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Global allocations made by this thread while `f` runs.
fn global_allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    let r = f();
    COUNTING.with(|on| on.set(false));
    (r, COUNT.with(|n| n.get()))
}

/// A `Display` of its own, writing in several pieces.
struct Point(i32, i32);

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.0, self.1)
    }
}

/// Some formatting into `chunk`, with text of mixed types; returns the total length.
fn format_some(chunk: &Chunk<'_>) -> usize {
    let mut total = 0;
    for i in 0..200 {
        let a = chunk.alloc_fmt(format_args!(
            "{} {} {}: {:>8.3} {:?}",
            "GET",
            i,
            Point(i, -i),
            1.5,
            "dbg"
        ));
        let b = chunk.try_alloc_fmt(format_args!("{:x}-{}", i * 997, 'x')).expect("memory");
        let c = format_in!(chunk, "{}/{}/{}", "users", i, Point(1, 2));
        let d = format_in!(chunk, "{} {}", c, a.len()).into_str();
        total += a.len() + b.len() + c.len() + d.len();
    }
    total + chunk.alloc_fmt(format_args!("literal")).len()
}

#[test]
#[cfg_attr(miri, ignore = "under Miri the pool maps its blocks from the global allocator")]
fn formatting_into_a_chunk_does_not_touch_the_global_heap() {
    // Warm up: the global pool, this thread's block cache and its first top chunk, and
    // whatever the formatting machinery sets up once.
    let reference = {
        let chunk = perfloc::chunk();
        format_some(&chunk)
    };
    assert!(reference > 200 * 30, "{reference}");
    // Count a chunk's whole life: made from the warm pool, formatted into (well past its
    // first block), dropped.
    let (total, allocations) = global_allocations(|| {
        let chunk = perfloc::chunk();
        let total = format_some(&chunk);
        assert!(chunk.stats().blocks > 1, "the test must take successor blocks too");
        total
    });
    assert_eq!(total, reference);
    assert_eq!(allocations, 0, "global allocations while formatting into a chunk");
}

#[test]
fn the_counter_sees_global_formatting() {
    // The check above proves something only if the counter counts: `format!` allocates.
    let (s, allocations) = global_allocations(|| format!("{} {}", 1, Point(2, 3)));
    assert_eq!(s, "1 (2, 3)");
    assert!(allocations >= 1);
    let (s, allocations) =
        global_allocations(|| format_in!(allocator_api2::alloc::Global, "{}", Point(0, 0)));
    assert_eq!(s, "(0, 0)");
    assert!(allocations >= 1, "String<Global> allocates on the global heap");
    let _: String = s;
}

#[derive(perfloc::DeserializeIn)]
struct Request<'de, A: perfloc::allocator_api2::alloc::Allocator> {
    user: perfloc::serde::Text<'de, A>,
    items: perfloc::allocator_api2::vec::Vec<Item<'de, A>, A>,
}

#[derive(perfloc::DeserializeIn)]
#[allow(dead_code)] // parsed for what it costs
struct Item<'de, A: perfloc::allocator_api2::alloc::Allocator> {
    id: &'de str,
    tags: perfloc::allocator_api2::vec::Vec<perfloc::serde::Text<'de, A>, A>,
    scores: perfloc::allocator_api2::vec::Vec<f64, A>,
}

/// Parses a request of 500 items, with escaped text (`escape`) or not, into a fresh
/// `SyncChunk` of a warm pool; returns what it read and the global allocations made.
fn parse_request(escape: bool) -> ((usize, usize, usize), usize) {
    use perfloc::serde::DeserializeIn;
    let tag = if escape { r#""a\tb""# } else { r#""a b""# };
    let items: std::vec::Vec<std::string::String> = (0..500)
        .map(|i| format!(r#"{{"id":"i{i}","tags":[{tag},"plain"],"scores":[1.5,{i}],"x":[1]}}"#))
        .collect();
    let body = format!(r#"{{"user":"ada","items":[{}]}}"#, items.join(","));
    let parse = |chunk: &perfloc::SyncChunk<'_>| {
        let mut de = serde_json::Deserializer::from_str(&body);
        let request = Request::deserialize_in(chunk, &mut de).expect("well-formed");
        de.end().expect("nothing after");
        (request.user.len(), request.items.len(), request.items[499].tags[0].len())
    };
    let reference = parse(&perfloc::sync_chunk()); // warm up
    let (parsed, allocations) = global_allocations(|| {
        let chunk = perfloc::sync_chunk();
        let parsed = parse(&chunk);
        assert!(chunk.stats().blocks > 1, "the test must take successor blocks too");
        parsed
    });
    assert_eq!(parsed, reference);
    (parsed, allocations)
}

#[test]
#[cfg_attr(miri, ignore = "under Miri the pool maps its blocks from the global allocator")]
fn deserializing_into_a_chunk_does_not_touch_the_global_heap() {
    let (parsed, allocations) = parse_request(false);
    assert_eq!(parsed, (3, 500, 3));
    assert_eq!(allocations, 0, "global allocations while deserializing into a chunk");
    // With escapes, serde_json decodes each escaped string in a scratch buffer of its
    // deserializer, on the global heap, before `Text` copies it into the chunk: that
    // buffer's growth is all (a few allocations per deserializer, not per string).
    let (parsed, allocations) = parse_request(true);
    assert_eq!(parsed, (3, 500, 3));
    assert!((1..=4).contains(&allocations), "{allocations}");
}

#[test]
#[cfg_attr(miri, ignore = "under Miri the pool maps its blocks from the global allocator")]
fn a_threads_first_sequence_takes_its_staging_stack_once() {
    use perfloc::allocator_api2::vec::Vec;
    use perfloc::serde::DeserializeIn;
    // A fresh thread: its staging stack is taken on the first sequence, then kept.
    std::thread::spawn(|| {
        let pool = perfloc::Pool::new();
        let warm = pool.chunk(); // the pool's first top chunk, mapped outside the count
        drop(warm);
        let parse = || {
            let chunk = pool.chunk();
            let mut de = serde_json::Deserializer::from_str("[1,2,3]");
            Vec::<u32, _>::deserialize_in(&chunk, &mut de).expect("well-formed").capacity()
        };
        assert_eq!(global_allocations(parse), (3, 1), "the stack, once");
        assert_eq!(global_allocations(parse), (3, 0), "then kept");
    })
    .join()
    .unwrap();
}
