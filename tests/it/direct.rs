//! Direct allocation in bumpalo's vocabulary.

use crate::util::{KIB, check, limited, small_pool};
use allocator_api2::vec::Vec;
use perfloc::{BumpState, CollectIn, Pool, ProcessChunk, SyncChunk, vec_in};
use std::alloc::Layout;
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

#[test]
fn alloc_and_alloc_with_place_values() {
    let chunk = perfloc::chunk();
    let a = chunk.alloc(41u64);
    *a += 1;
    let b = chunk.alloc_with(|| [3u16; 100]);
    assert_eq!((*a, b.len(), b[99]), (42, 100, 3));
    let pair = chunk.alloc(("kept", Some(3.5f64)));
    pair.1 = None;
    assert_eq!(*pair, ("kept", None));
}

#[test]
fn alloc_never_runs_destructors() {
    struct CountsDrops<'a>(&'a Cell<u32>);
    impl Drop for CountsDrops<'_> {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Cell::new(0);
    {
        let chunk = perfloc::chunk();
        for _ in 0..10 {
            chunk.alloc(CountsDrops(&drops));
        }
        chunk.alloc_slice_fill_with(5, |_| CountsDrops(&drops));
    }
    assert_eq!(drops.get(), 0);
}

#[test]
fn slices_and_strings_are_copied() {
    let chunk = perfloc::chunk();
    let src = [1u32, 2, 3, 4];
    let copy = chunk.alloc_slice_copy(&src);
    copy[0] = 10;
    assert_eq!((copy as &[u32], src[0]), (&[10, 2, 3, 4][..], 1));
    let clones = chunk.alloc_slice_clone(&[Some("a"), None, Some("b")]);
    assert_eq!(clones, [Some("a"), None, Some("b")]);
    let filled = chunk.alloc_slice_fill_with(1000, |i| i as u64 * 3);
    assert!(filled.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    let s = chunk.alloc_str("Hello, chunk");
    s.make_ascii_uppercase();
    assert_eq!(s, "HELLO, CHUNK");
    assert_eq!(chunk.alloc_str(""), "");
    assert!(chunk.alloc_slice_copy::<u8>(&[]).is_empty());
}

#[test]
fn alloc_layout_and_try_alloc_layout_respect_the_layout() {
    let chunk = perfloc::chunk();
    for align in [1, 2, 64, 4096] {
        let layout = Layout::from_size_align(100, align).unwrap();
        let p = chunk.alloc_layout(layout);
        let q = chunk.try_alloc_layout(layout).unwrap();
        assert_eq!((p.as_ptr() as usize % align, q.as_ptr() as usize % align), (0, 0));
        assert!(q.as_ptr() as usize >= p.as_ptr() as usize + 100, "they do not overlap");
    }
}

#[test]
fn try_alloc_returns_the_error_instead_of_panicking() {
    let pool =
        perfloc::Pool::builder().first_top_chunk_size(64 << 10).limit(64 << 10).build().unwrap();
    let chunk = pool.chunk();
    assert_eq!(*chunk.try_alloc(5u8).unwrap(), 5);
    assert!(chunk.try_alloc([0u8; 128 << 10]).is_err());
    assert_eq!(*chunk.try_alloc(6u8).unwrap(), 6, "the chunk still works");
}

#[test]
#[should_panic(expected = "perfloc: out of memory")]
fn alloc_past_the_limit_panics_with_a_message() {
    let pool =
        perfloc::Pool::builder().first_top_chunk_size(64 << 10).limit(64 << 10).build().unwrap();
    let chunk = pool.chunk();
    chunk.alloc([0u8; 128 << 10]);
}

#[test]
#[should_panic(expected = "overflows isize::MAX")]
fn a_slice_too_large_for_a_layout_panics_with_a_message() {
    let pool = small_pool();
    let chunk = pool.chunk();
    chunk.alloc_slice_fill_with(usize::MAX / 2, |_| 0u64);
}

/// A value that counts its drops.
#[derive(Clone)]
struct Counted<'a>(u32, &'a Cell<u32>);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.1.set(self.1.get() + 1);
    }
}

/// The vocabulary methods on one kind of chunk.
fn vocabulary<K: BumpState>(chunk: &ProcessChunk<'_, K>) {
    assert_eq!(*chunk.try_alloc_with(|| 7u16).unwrap(), 7);
    assert_eq!(chunk.try_alloc_slice_copy(&[1u8, 2]).unwrap(), &[1, 2]);
    assert_eq!(chunk.try_alloc_slice_clone(&[Some(1), None]).unwrap(), &[Some(1), None]);
    assert_eq!(chunk.try_alloc_slice_fill_with(4, |i| i as u8).unwrap(), &[0, 1, 2, 3]);
    assert_eq!(chunk.try_alloc_str("abc").unwrap(), "abc");
    assert!(chunk.try_alloc_slice_copy::<u8>(&[]).unwrap().is_empty());
    assert_eq!(chunk.alloc_slice_fill_copy(3, 'x'), &['x'; 3]);
    let drops = Cell::new(0);
    let clones = chunk.alloc_slice_fill_clone(3, &Counted(5, &drops));
    assert_eq!(clones.iter().map(|c| c.0).collect::<std::vec::Vec<_>>(), [5, 5, 5]);
    assert_eq!(drops.get(), 1, "only the original dropped, never the clones");
    assert_eq!(chunk.alloc_slice_fill_default::<(u8, bool)>(2), &[(0, false); 2]);
    assert_eq!(chunk.alloc_slice_fill_iter((1..5).map(|i| i * i)), &[1, 4, 9, 16]);
    assert_eq!(chunk.alloc_slice_fill_iter(Vec::<u8>::new()), &[] as &[u8]);
    assert_eq!(chunk.alloc_iter("a,bb,,ccc".split(',').map(str::len)), &[1, 2, 0, 3]);
    assert_eq!(chunk.alloc_iter(core::iter::empty::<u64>()), &[] as &[u64]);
    let big = chunk.alloc_iter((0..5000u32).filter(|i| i % 3 == 0)); // past the first block
    assert_eq!((big.len(), big[1666]), (1667, 4998));
}

#[test]
fn the_vocabulary_works_on_both_kinds_of_chunk() {
    let pool = small_pool();
    vocabulary(&pool.chunk());
    vocabulary(&pool.sync_chunk());
}

#[test]
fn try_forms_return_errors_and_call_nothing() {
    let pool = limited(64 * KIB);
    let chunk = pool.chunk();
    let calls = Cell::new(0);
    let huge = 128 * KIB;
    assert!(
        chunk
            .try_alloc_with(|| {
                calls.set(calls.get() + 1);
                [0u8; 128 << 10]
            })
            .is_err()
    );
    assert!(chunk.try_alloc_slice_copy(&vec![0u8; huge]).is_err());
    // `vec![Some(0u8); huge]`, built by doubling copies: the macro clones element by
    // element, which Miri interprets slowly (most of this test's 23 s).
    let mut somes = vec![Some(0u8)];
    while somes.len() < huge {
        somes.extend_from_within(..somes.len().min(huge - somes.len()));
    }
    assert_eq!(somes.len(), huge);
    assert!(chunk.try_alloc_slice_clone(&somes).is_err());
    let fill = |_| {
        calls.set(calls.get() + 1);
        0u64
    };
    assert!(chunk.try_alloc_slice_fill_with(huge, fill).is_err());
    assert!(chunk.try_alloc_slice_fill_with(usize::MAX, fill).is_err(), "overflow is an error");
    assert!(chunk.try_alloc_str(&"x".repeat(huge)).is_err());
    assert_eq!(calls.get(), 0, "nothing is built before the memory is there");
    assert_eq!(chunk.try_alloc_str("usable").unwrap(), "usable");
    check(&pool);
}

#[test]
fn alloc_iter_gives_spare_capacity_back() {
    let pool = small_pool();
    let chunk = pool.chunk();
    // `filter` has a lower size hint of zero: the Vec grows by doubling, then shrinks.
    let evens = chunk.alloc_iter((0..100u64).filter(|i| i % 2 == 0));
    assert_eq!(evens.len(), 50);
    assert_eq!(chunk.stats().used_bytes, 50 * 8, "exactly the elements");
    let after = chunk.alloc(1u64) as *const u64 as usize;
    assert_eq!(after, evens.as_ptr() as usize + 400, "the next allocation follows at once");
}

/// An iterator that panics after `good` elements.
fn panics_after(good: u32, drops: &Cell<u32>) -> impl Iterator<Item = Counted<'_>> {
    (0..).map(move |i| if i < good { Counted(i, drops) } else { panic!("iterator panicked") })
}

/// An iterator that panics after `good` elements and claims an exact length.
fn exact_panics_after(
    good: u32,
    len: usize,
    drops: &Cell<u32>,
) -> impl ExactSizeIterator<Item = Counted<'_>> {
    (0..len).map(move |i| {
        if (i as u32) < good { Counted(i as u32, drops) } else { panic!("iterator panicked") }
    })
}

fn panics_unwind_cleanly<K: BumpState>(chunk: &ProcessChunk<'_, K>) {
    chunk.alloc(0u64);
    let used = chunk.stats().used_bytes;
    let drops = Cell::new(0);
    // `alloc_iter` collects in a `Vec`: the elements made so far are dropped exactly once
    // and the memory is given back.
    let r = catch_unwind(AssertUnwindSafe(|| chunk.alloc_iter(panics_after(100, &drops)).len()));
    assert!(r.is_err());
    assert_eq!(drops.get(), 100, "every element produced is dropped exactly once");
    assert_eq!(chunk.stats().used_bytes, used, "the Vec's memory is given back");
    // The fill methods write in place: the elements written are leaked, never dropped.
    drops.set(0);
    let r = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_slice_fill_iter(exact_panics_after(10, 50, &drops)).len()
    }));
    assert!(r.is_err());
    let r = catch_unwind(AssertUnwindSafe(|| {
        chunk
            .alloc_slice_fill_with(50, |i| if i < 10 { Counted(0, &drops) } else { panic!("f") })
            .len()
    }));
    assert!(r.is_err());
    let proto = Counted(0, &drops);
    let r = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_with(|| -> Counted<'_> { panic!("alloc_with") }).0
    }));
    assert!(r.is_err());
    drop(proto);
    assert_eq!(drops.get(), 1, "only the prototype dropped; leaked elements never are");
    // The chunk goes on, and what it held is intact.
    let kept = chunk.alloc_slice_fill_iter((0..1000u32).map(|i| i * 2));
    assert_eq!(kept[999], 1998);
    assert_eq!(chunk.alloc_iter([1u8, 2, 3].into_iter().filter(|_| true)), &[1, 2, 3]);
}

#[test]
fn panicking_iterators_and_closures_unwind_cleanly() {
    let pool = small_pool();
    panics_unwind_cleanly(&pool.chunk());
    panics_unwind_cleanly(&pool.sync_chunk());
    check(&pool);
}

/// An iterator whose `len()` is `claimed` whatever it really yields.
struct Liar<I> {
    inner: I,
    claimed: usize,
}

impl<I: Iterator> Iterator for Liar<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        self.inner.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed, Some(self.claimed))
    }
}

impl<I: Iterator> ExactSizeIterator for Liar<I> {}

#[test]
fn an_iterator_that_lies_about_its_length_cannot_break_the_chunk() {
    let pool = small_pool();
    let chunk = pool.chunk();
    // More than it claims: the slice has the claimed length; the rest is not taken.
    let mut inner = 0..10u32;
    let s = chunk.alloc_slice_fill_iter(Liar { inner: inner.by_ref(), claimed: 3 });
    assert_eq!(s, &[0, 1, 2]);
    assert_eq!(inner.next(), Some(3), "extra elements are left in the iterator");
    // Fewer than it claims: a clear panic, never uninitialised elements.
    let r = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_slice_fill_iter(Liar { inner: 0..2u32, claimed: 5 }).len()
    }));
    let payload = r.expect_err("too few elements panic");
    let msg = payload.downcast_ref::<std::string::String>().expect("a formatted message");
    assert!(msg.contains("yielded 2 elements, fewer than the 5"), "{msg}");
    // A claim far too big for memory: the size check panics before anything is written.
    let r = catch_unwind(AssertUnwindSafe(|| {
        chunk.alloc_slice_fill_iter(Liar { inner: 0..2u64, claimed: usize::MAX }).len()
    }));
    assert!(r.is_err());
    // `alloc_iter` trusts no hint: a lying lower bound only changes how much it reserves.
    let s = chunk.alloc_iter(Liar { inner: 0..4u8, claimed: 1000 });
    assert_eq!(s, &[0, 1, 2, 3]);
    let s = chunk.alloc_iter(Liar { inner: 0..300u16, claimed: 0 });
    assert_eq!((s.len(), s[299]), (300, 299));
    let s = chunk.alloc_iter(Liar { inner: 0..5u16, claimed: usize::MAX });
    assert_eq!(s, &[0, 1, 2, 3, 4], "a hint too big to reserve is not an error");
    assert_eq!(*chunk.alloc(9u8), 9);
    check(&pool);
}

#[test]
fn collect_in_and_vec_in_build_vectors_in_a_chunk() {
    let chunk = perfloc::chunk();
    let v = (1..=3).map(|i| i * 10).collect_in::<Vec<_, _>>(&chunk);
    assert_eq!(v, [10, 20, 30]);
    assert!(core::ptr::eq(*v.allocator(), &chunk));
    let sync = perfloc::sync_chunk();
    let w: Vec<&str, &SyncChunk> = "a b".split(' ').collect_in(&sync);
    assert_eq!(w, ["a", "b"]);
    let listed = vec_in![in &chunk; 1u8, 2, 3,];
    assert_eq!((listed.as_slice(), listed.capacity()), (&[1, 2, 3][..], 3));
    let drops = Cell::new(0);
    let filled = vec_in![in &chunk; Counted(7, &drops); 4];
    assert_eq!((filled.len(), filled[3].0), (4, 7));
    assert_eq!(drops.get(), 0, "clones of the element, the element itself moved in last");
    drop(filled);
    assert_eq!(drops.get(), 4);
    let none = vec_in![in &chunk; Counted(0, &drops); 0];
    assert!(none.is_empty());
    assert_eq!(drops.get(), 5, "with zero copies the element is dropped, as with vec!");
    let mut empty: Vec<u32, _> = vec_in![in &sync];
    empty.push(1);
    let global = vec_in![in allocator_api2::alloc::Global; "g"];
    assert_eq!((empty[0], global[0]), (1, "g"));
}

#[test]
fn a_failing_initialiser_drops_what_it_made_and_gives_the_memory_back() {
    use std::rc::Rc;
    let pool = Pool::new();
    let chunk = pool.chunk();
    chunk.alloc(1u64);
    let used = chunk.stats().used_bytes;
    let witness = Rc::new(());
    let made = chunk
        .alloc_slice_try_fill_with(10, |i| if i < 6 { Ok(Rc::clone(&witness)) } else { Err(i) });
    assert_eq!(made.unwrap_err(), 6);
    assert_eq!(Rc::strong_count(&witness), 1, "the six made were dropped");
    assert_eq!(chunk.stats().used_bytes, used, "the memory went back");
    let items = ["1", "2", "x"].map(str::parse::<u32>);
    assert!(chunk.alloc_slice_try_fill_iter(items).is_err());
    assert!(matches!(
        chunk.try_alloc_try_with(|| Err::<u8, _>("bad")),
        Err(perfloc::AllocOrInitError::Init("bad"))
    ));
    assert_eq!(chunk.stats().used_bytes, used);
    let ok = chunk.alloc_slice_try_fill_iter([Ok::<_, ()>(1u8), Ok(2)]).unwrap();
    assert_eq!(ok, [1, 2]);
    assert_eq!(chunk.alloc_zeroed_slice(3), [0, 0, 0]);
    assert_eq!(chunk.alloc_uninit_slice::<u32>(3).len(), 3);
}
