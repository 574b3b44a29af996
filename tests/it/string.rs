//! `perfloc::String`, `format_in!` and `alloc_fmt`: the same behaviour in a `Chunk`, a
//! `SyncChunk` and the global heap; in-place growth; bad input (invalid UTF-8, capacity
//! overflow, out of memory, formatting implementations that panic or fail).

use crate::util::{KIB, MIB, check, limited, scaled, small_pool};
use allocator_api2::alloc::{Allocator, Global};
use allocator_api2::collections::TryReserveErrorKind;
use allocator_api2::vec::Vec;
use core::fmt::{self, Write};
use hashbrown::{DefaultHashBuilder, HashMap};
use perfloc::{BumpState, Chunk, CollectIn, FromIteratorIn, ProcessChunk, String, format_in};
use std::hash::BuildHasher;
use std::hint::black_box;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Every method of `String` on one allocator, checked against `std::string::String`.
fn exercise<A: Allocator + Clone>(alloc: A) {
    let mut s = String::new_in(alloc.clone());
    let mut model = std::string::String::new();
    assert!(s.is_empty() && s.capacity() == 0);
    for (i, piece) in ["GET", " ", "/caf\u{e9}", "?q=\u{1f980}", ""].iter().enumerate() {
        s.push_str(piece);
        model.push_str(piece);
        s.push(char::from(b'0' + i as u8));
        model.push(char::from(b'0' + i as u8));
    }
    s.push('\u{e9}');
    model.push('\u{e9}');
    assert_eq!(s, model.as_str());
    assert_eq!((s.len(), s.as_bytes()), (model.len(), model.as_bytes()));
    s.insert(0, '\u{2192}');
    model.insert(0, '\u{2192}');
    s.insert_str(3, "[in]");
    model.insert_str(3, "[in]");
    let end = s.len();
    s.insert_str(end, "!?");
    model.insert_str(end, "!?");
    assert_eq!(s, model.as_str());
    while let Some(c) = model.pop() {
        assert_eq!(s.pop(), Some(c));
        assert_eq!(s, model.as_str());
    }
    assert_eq!(s.pop(), None);
    s.push_str("hello, world");
    s.truncate(100);
    s.truncate(5);
    assert_eq!(s, "hello");
    s.as_mut_str().make_ascii_uppercase();
    assert_eq!(&*s, "HELLO");
    s.reserve(100);
    assert!(s.capacity() >= 105);
    s.try_reserve(10).expect("a small reserve");
    let copy = s.clone();
    s.clear();
    assert!(s.is_empty() && s.capacity() >= 105);
    assert_eq!(copy, "HELLO");
    let from = String::from_str_in("from_str_in", alloc.clone());
    assert_eq!(from, "from_str_in");
    let bytes = from.into_bytes();
    assert_eq!(bytes, b"from_str_in");
    let back = String::from_utf8_in(bytes).expect("valid UTF-8");
    assert_eq!(back.as_str(), "from_str_in");
    let formatted = format_in!(alloc.clone(), "{}-{:03}-{:?}-{:.2}", "a", 7, 'c', 1.0f64 / 3.0);
    assert_eq!(formatted, "a-007-'c'-0.33");
    let mut written = String::new_in(alloc);
    write!(written, "{}{}", 1, black_box('2')).unwrap();
    written.write_char('3').unwrap();
    assert_eq!(written, "123");
    assert_eq!(format!("{written}|{written:?}|{written:>5}"), "123|\"123\"|  123");
}

#[test]
fn strings_work_in_a_chunk_a_sync_chunk_and_the_global_heap() {
    let pool = small_pool();
    let chunk = pool.chunk();
    exercise(&chunk);
    let sync = perfloc::sync_chunk();
    exercise(&sync);
    exercise(Global);
    let mut global: String = String::default();
    global.push_str("default");
    assert_eq!(global, "default");
}

#[test]
fn a_sync_chunk_string_is_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    let chunk = perfloc::sync_chunk();
    let s = format_in!(&chunk, "{}", 1);
    send_sync(&s);
    std::thread::scope(|scope| {
        let t = scope.spawn(|| s.len());
        assert_eq!(t.join().unwrap(), 1);
    });
}

#[test]
fn strings_compare_order_and_hash_like_str() {
    let chunk = perfloc::chunk();
    let a = String::from_str_in("apple", &chunk);
    let b = String::from_str_in("banana", Global);
    assert!(a < String::from_str_in("apples", &chunk));
    assert!(a.partial_cmp(&b) == Some(std::cmp::Ordering::Less));
    assert_ne!(a, b);
    assert_eq!(a, String::from_str_in("apple", Global));
    // Each comparison below is a different impl: `String == &str`, `&str == String`,
    // `str == String`, `String == str`, and both ways with `std::string::String`.
    assert!(a == "apple");
    assert!("apple" == a);
    assert!(*"apple" == a);
    assert!(a == *"apple");
    let std_apple = std::string::String::from("apple");
    assert!(std_apple == a);
    assert!(a == std_apple);
    assert!(a != "apples" && "appl" != a);
    let mut sorted: Vec<String<&Chunk>, _> = Vec::new_in(&chunk);
    for w in ["pear", "fig", "apple"] {
        sorted.push(String::from_str_in(w, &chunk));
    }
    sorted.sort();
    assert_eq!(sorted, ["apple", "fig", "pear"]);
    let hasher = DefaultHashBuilder::default();
    assert_eq!(hasher.hash_one(&a), hasher.hash_one("apple"));
    let as_str: &str = a.as_ref();
    let as_bytes: &[u8] = a.as_ref();
    let borrowed: &str = std::borrow::Borrow::borrow(&a);
    assert_eq!((as_str, as_bytes, borrowed), ("apple", &b"apple"[..], "apple"));
}

#[test]
fn a_hash_map_keyed_by_chunk_strings_is_looked_up_with_str() {
    let chunk = perfloc::chunk();
    let mut map: HashMap<String<&Chunk>, usize, DefaultHashBuilder, &Chunk> =
        HashMap::new_in(&chunk);
    for i in 0..100 {
        map.insert(format_in!(&chunk, "key-{i}"), i);
    }
    assert_eq!(map.get("key-42"), Some(&42));
    assert_eq!(map.get("key-100"), None);
    assert_eq!(map.remove("key-7"), Some(7));
    assert_eq!(map.len(), 99);
}

#[test]
fn pushing_onto_the_newest_allocation_grows_in_place() {
    let pool = small_pool(); // first block 4 KiB
    let chunk = pool.chunk();
    chunk.alloc(1u64); // something older in the block
    let mut s = String::with_capacity_in(8, &chunk);
    s.push_str("12345678");
    let start = s.as_ptr();
    let before = chunk.stats();
    let mut grew = 0;
    for _ in 0..200 {
        let cap = s.capacity();
        s.push_str("0123456789"); // 2008 bytes at the end, within the 4 KiB block
        grew += usize::from(s.capacity() != cap);
        assert_eq!(s.as_ptr(), start, "the newest allocation moved while its block had room");
    }
    assert!(grew >= 5, "the capacity must have grown several times: {grew}");
    assert_eq!(chunk.stats().blocks, before.blocks);
    assert_eq!(chunk.stats().used_bytes, 8 + s.capacity(), "used: one u64 and the string");
    assert_eq!(&s[..18], "123456780123456789");
}

#[test]
fn a_string_that_is_not_the_newest_allocation_moves_intact_when_it_grows() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut s = String::from_str_in("abcdefgh", &chunk);
    let start = s.as_ptr();
    chunk.alloc(0u64); // now the string is no longer the newest
    s.push_str("ijklmnopq");
    assert_ne!(s.as_ptr(), start, "an older allocation cannot grow in place");
    assert_eq!(s, "abcdefghijklmnopq");
}

#[test]
fn into_str_keeps_the_text_and_gives_spare_capacity_back() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let mut s = String::with_capacity_in(1000, &chunk);
    s.push_str("kept for the chunk's lifetime");
    let used = chunk.stats().used_bytes;
    assert!(used >= 1000);
    let text: &mut str = s.into_str();
    assert_eq!(text, "kept for the chunk's lifetime");
    assert_eq!(chunk.stats().used_bytes, 32, "rounded to a word: 29 bytes of text");
    text.make_ascii_uppercase();
    let other = chunk.alloc_str("next");
    assert_eq!((&*text, &*other), ("KEPT FOR THE CHUNK'S LIFETIME", "next"));
    let empty = String::new_in(&chunk).into_str();
    assert_eq!(empty, "");
    let used = chunk.stats().used_bytes;
    let unused = String::with_capacity_in(100, &chunk).into_str();
    assert_eq!((&*unused, chunk.stats().used_bytes), ("", used), "an empty text keeps nothing");
}

#[test]
fn extend_and_collect_build_strings() {
    let chunk = perfloc::sync_chunk();
    let mut s = String::new_in(&chunk);
    s.extend(['a', '\u{e9}']);
    s.extend([&'b']);
    s.extend(["cd", "", "ef"]);
    assert_eq!(s, "a\u{e9}bcdef");
    let upper = "shout".chars().map(|c| c.to_ascii_uppercase()).collect_in::<String<_>>(&chunk);
    assert_eq!(upper, "SHOUT");
    let joined = ["a", "b"].into_iter().collect_in::<String<_>>(&chunk);
    assert_eq!(joined, "ab");
    let refs = String::from_iter_in(['x', 'y'].iter(), &chunk);
    assert_eq!(refs, "xy");
}

#[test]
fn invalid_utf8_is_an_error_that_keeps_every_byte() {
    let chunk = perfloc::chunk();
    let cases: [(&[u8], usize, Option<usize>); 6] = [
        (b"ok\xff", 2, Some(1)),           // a byte never valid
        (b"\xc3", 0, None),                // a truncated two-byte sequence
        (b"abc\xed\xa0\x80", 3, Some(1)),  // a surrogate
        (b"\xf4\x90\x80\x80", 0, Some(1)), // above U+10FFFF
        (b"x\xc0\xafy", 1, Some(1)),       // an overlong encoding
        (b"caf\xc3\xa9\x80", 5, Some(1)),  // a stray continuation byte after a valid one
    ];
    for (bytes, valid_up_to, error_len) in cases {
        let mut vec = Vec::new_in(&chunk);
        vec.extend_from_slice(bytes);
        let ptr = vec.as_ptr();
        let err = String::from_utf8_in(vec).expect_err("invalid UTF-8");
        assert_eq!(err.utf8_error().valid_up_to(), valid_up_to, "{bytes:?}");
        assert_eq!(err.utf8_error().error_len(), error_len, "{bytes:?}");
        assert_eq!(err.as_bytes(), bytes);
        assert_eq!(err.to_string(), err.utf8_error().to_string());
        assert!(format!("{err:?}").contains("FromUtf8Error"));
        let back = err.into_bytes();
        assert_eq!((back.as_slice(), back.as_ptr()), (bytes, ptr), "same bytes, same place");
    }
    let boxed: Box<dyn std::error::Error> =
        Box::new(String::from_utf8_in(perfloc::vec_in![in Global; 0xffu8]).expect_err("invalid"));
    assert!(boxed.to_string().contains("invalid utf-8"));
}

#[test]
#[should_panic(expected = "not a char boundary")]
fn truncating_inside_a_character_panics() {
    let chunk = perfloc::chunk();
    String::from_str_in("\u{e9}", &chunk).truncate(1);
}

#[test]
#[should_panic(expected = "not a char boundary")]
fn inserting_inside_a_character_panics() {
    let chunk = perfloc::chunk();
    String::from_str_in("\u{e9}", &chunk).insert(1, 'x');
}

#[test]
fn capacity_overflow_and_exhaustion_are_errors_and_the_chunk_goes_on() {
    let pool = limited(4 * MIB);
    let chunk = pool.chunk();
    let mut s = String::from_str_in("intact", &chunk);
    for additional in [usize::MAX, isize::MAX as usize, usize::MAX - 3] {
        let err = s.try_reserve(additional).expect_err("cannot reserve that much");
        assert_eq!(err.kind(), TryReserveErrorKind::CapacityOverflow, "{additional}");
    }
    let err = s.try_reserve(64 * MIB).expect_err("beyond the pool's limit");
    assert!(matches!(err.kind(), TryReserveErrorKind::AllocError { .. }), "{err:?}");
    assert_eq!(s, "intact");
    s.push_str(" and growing");
    assert_eq!(s, "intact and growing");
    s.try_reserve(scaled(512 * KIB, 32 * KIB)).expect("within the limit");
    assert_eq!(*chunk.alloc(5u32), 5);
    check(&pool);
}

/// A `Display` that panics once it has written a prefix.
struct Panics;

impl fmt::Display for Panics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("partial output that must not stay")?;
        panic!("Display panicked on purpose");
    }
}

/// A `Display` that returns an error of its own (a bug: only the writer may fail).
struct Fails;

impl fmt::Display for Fails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("partial")?;
        Err(fmt::Error)
    }
}

/// The message of a caught panic.
fn message(payload: Box<dyn std::any::Any + Send>) -> std::string::String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<std::string::String>().cloned())
        .unwrap_or_default()
}

fn formatting_panics_and_errors_leave_the_chunk_as_it_was<K: BumpState>(
    chunk: &ProcessChunk<'_, K>,
) {
    chunk.alloc_str("before");
    let used = chunk.stats().used_bytes;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_fmt(format_args!("{} then {}", 1, Panics));
    }));
    assert_eq!(message(caught.expect_err("the panic propagates")), "Display panicked on purpose");
    assert_eq!(chunk.stats().used_bytes, used, "the partial text was given back");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _ = format_in!(chunk, "{}{}", "x", Panics);
    }));
    assert!(caught.is_err());
    assert_eq!(chunk.stats().used_bytes, used);
    for attempt in 0..3 {
        let caught = catch_unwind(AssertUnwindSafe(|| match attempt {
            0 => {
                let _ = chunk.alloc_fmt(format_args!("{}", Fails));
            }
            1 => {
                let _ = chunk.try_alloc_fmt(format_args!("{}", Fails));
            }
            _ => {
                let _ = format_in!(chunk, "{}", Fails);
            }
        }));
        let msg = message(caught.expect_err("a formatting error panics, as in format!"));
        assert!(msg.contains("a Display implementation returned an error"), "{msg}");
        assert_eq!(chunk.stats().used_bytes, used, "attempt {attempt}");
    }
    assert_eq!(chunk.alloc_fmt(format_args!("{}-{}", "still", 1)), "still-1");
}

#[test]
fn a_panicking_or_failing_display_unwinds_cleanly() {
    let pool = small_pool();
    formatting_panics_and_errors_leave_the_chunk_as_it_was(&pool.chunk());
    formatting_panics_and_errors_leave_the_chunk_as_it_was(&perfloc::sync_chunk());
}

#[test]
fn alloc_fmt_writes_into_the_chunk() {
    let pool = small_pool();
    let chunk = pool.chunk();
    let literal = chunk.alloc_fmt(format_args!("no arguments"));
    assert_eq!(literal, "no arguments");
    let used = chunk.stats().used_bytes;
    let line = chunk.alloc_fmt(format_args!("{:>6}|{:<4}|{:x}", "right", 7, 255));
    assert_eq!(line, " right|7   |ff");
    assert_eq!(chunk.stats().used_bytes - used, 16, "14 bytes, rounded to a word");
    let long = chunk.alloc_fmt(format_args!("{:=>1$}", "", 10 * KIB)); // past the 4 KiB block
    assert_eq!((long.len(), long.bytes().all(|b| b == b'=')), (10 * KIB, true));
    assert_eq!((&*literal, &*line), ("no arguments", " right|7   |ff"));
    let sync = perfloc::sync_chunk();
    assert_eq!(sync.try_alloc_fmt(format_args!("{}{}", 4, 2)).unwrap(), "42");
}

/// A `Display` that writes `self.0` `self.1` times: big text in few writes.
struct Repeat<'a>(&'a str, usize);

impl fmt::Display for Repeat<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (0..self.1).try_for_each(|_| f.write_str(self.0))
    }
}

#[test]
fn try_alloc_fmt_reports_exhaustion_and_gives_the_text_back() {
    let pool = limited(scaled(MIB, 256 * KIB));
    let chunk = pool.chunk();
    chunk.alloc_str("before");
    let used = chunk.stats().used_bytes;
    let kib = "=".repeat(KIB);
    let too_big = Repeat(&kib, scaled(4 * KIB, 1024)); // 4 (1) MiB > the pool's limit
    assert!(chunk.try_alloc_fmt(format_args!("{}{}", 1, too_big)).is_err());
    let after = chunk.stats();
    assert_eq!(after.dedicated_blocks, 0, "the text's block went back to the pool");
    // What stays in bump memory: the records of the large blocks the text passed through,
    // and the copy it left in a regular block when it moved to a block of its own (at
    // 128 KiB; an older allocation, the record, sits after it, so it cannot be rewound).
    let kept = after.used_bytes - used;
    assert!(kept <= 128 * KIB + KIB, "{kept} bytes kept");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_fmt(format_args!("{}{}", 1, too_big));
    }));
    assert!(message(caught.expect_err("out of memory panics")).contains("out of memory"));
    let stats = chunk.stats();
    assert_eq!(stats.dedicated_blocks, 0);
    assert!(stats.used_bytes - after.used_bytes <= 128 * KIB + KIB, "no more than the first time");
    assert_eq!(chunk.alloc_fmt(format_args!("{}", Repeat("ab", 3))), "ababab");
    check(&pool);
}
