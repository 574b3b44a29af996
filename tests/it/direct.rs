//! Direct allocation in bumpalo's vocabulary.

use crate::util::small_pool;
use std::alloc::Layout;
use std::cell::Cell;

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
