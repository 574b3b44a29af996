//! Direct allocation in a chunk, in bumpalo's vocabulary: `alloc`, `alloc_with`,
//! `alloc_slice_copy`, `alloc_slice_clone`, `alloc_slice_fill_with`, `alloc_slice_fill_copy`,
//! `alloc_slice_fill_clone`, `alloc_slice_fill_default`, `alloc_slice_fill_iter`,
//! `alloc_iter`, `alloc_str`, `alloc_fmt`, `alloc_layout`, and a `try_` form of each one
//! that can fail for want of memory alone.
//!
//! Written once for both kinds of chunk: every method works the same on a [`Chunk`] and on a
//! [`SyncChunk`] (where several threads may call them at once).
//!
//! [`Chunk`]: crate::Chunk
//! [`SyncChunk`]: crate::SyncChunk
//!
//! Values placed this way live until the chunk is reset or dropped, and **their destructors
//! never run** (as with bumpalo). Put values that own resources in an
//! `allocator_api2::boxed::Box` in the chunk instead, which drops them as usual.
//!
//! # Panics in user code
//!
//! A closure, `clone`, iterator or `Display` implementation that panics unwinds cleanly and
//! leaves the chunk usable:
//!
//! - the `fill` methods (`alloc_slice_fill_with`, `_clone`, `_default`, `_iter`) and
//!   `alloc_with` leak the elements written before the panic (their destructors never run,
//!   as for every value placed directly); their memory stays allocated until the chunk is
//!   reset or dropped;
//! - `alloc_iter` and `alloc_fmt` build in a chunk `Vec`/`String` first: on a panic it
//!   drops the elements produced so far exactly once and gives its memory back.
//!
//! An `ExactSizeIterator` that lies about its length cannot cause undefined behaviour:
//! `alloc_slice_fill_iter` panics if it yields fewer elements and ignores extra ones.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

use allocator_api2::alloc::AllocError;
use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;

use crate::string::{String, TextWriter};

mod fallible;

use crate::{BumpState, ProcessChunk};
pub use fallible::AllocOrInitError;

/// Reports an allocation `chunk` could not satisfy, for the panicking methods: which limit
/// was hit (the chunk's, the pool's) or that the OS refused, with the figures.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_memory<K: BumpState>(chunk: &ProcessChunk<'_, K>, layout: Layout) -> ! {
    let what = format!("allocating {} bytes (align {})", layout.size(), layout.align());
    panic!("{}", chunk.refusal_message(&what))
}

/// The layout of `[T; len]`, or a panic naming the overflow.
#[track_caller]
fn array_layout<T>(len: usize) -> Layout {
    Layout::array::<T>(len)
        .unwrap_or_else(|_| panic!("perfloc: a slice of {len} elements overflows isize::MAX bytes"))
}

impl<K: BumpState> ProcessChunk<'_, K> {
    /// Allocates memory for `layout`: the panicking form of [`ProcessChunk::try_alloc_layout`].
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let chunk = perfloc::chunk();
    /// let page = chunk.alloc_layout(Layout::from_size_align(4096, 4096).unwrap());
    /// assert_eq!(page.as_ptr() as usize % 4096, 0);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory.
    #[inline(always)]
    #[track_caller]
    pub fn alloc_layout(&self, layout: Layout) -> NonNull<u8> {
        match self.try_alloc_layout(layout) {
            Ok(ptr) => ptr,
            Err(AllocError) => out_of_memory(self, layout),
        }
    }

    /// Moves `val` into the chunk and returns a mutable reference to it. Its destructor
    /// will never run.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let x = chunk.alloc([1u64, 2, 3]);
    /// x[1] = 20;
    /// assert_eq!(x, &[1, 20, 3]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory; see [`ProcessChunk::try_alloc`].
    #[inline(always)]
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc<T>(&self, val: T) -> &mut T {
        self.alloc_with(|| val)
    }

    /// Moves `val` into the chunk, or returns `AllocError` (dropping `val`) if the pool
    /// cannot provide the memory.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().first_top_chunk_size(64 << 10).limit(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// assert!(chunk.try_alloc([0u8; 4096]).is_ok());
    /// assert!(chunk.try_alloc([0u8; 128 << 10]).is_err());
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc<T>(&self, val: T) -> Result<&mut T, AllocError> {
        let ptr = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: fresh memory of this chunk, sized and aligned for `T`, handed out once;
        // the reference is tied to `&self`, and reset or drop need the chunk by `&mut`/value.
        unsafe {
            ptr.write(val);
            Ok(&mut *ptr.as_ptr())
        }
    }

    /// Allocates space for a `T`, then writes `f()` into it; lets the compiler build large
    /// values in place. The destructor will never run.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let table = chunk.alloc_with(|| [7u32; 1024]);
    /// assert_eq!(table[1023], 7);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory.
    #[inline(always)]
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_with<T, F: FnOnce() -> T>(&self, f: F) -> &mut T {
        let ptr = self.alloc_layout(Layout::new::<T>()).cast::<T>();
        // SAFETY: as in `try_alloc`. If `f` panics, the memory stays unused until the chunk
        // goes away, which is harmless.
        unsafe {
            ptr.write(f());
            &mut *ptr.as_ptr()
        }
    }

    /// Copies a slice into the chunk.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = chunk.alloc_slice_copy(&[1, 2, 3]);
    /// s.reverse();
    /// assert_eq!(s, &[3, 2, 1]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_copy<T: Copy>(&self, src: &[T]) -> &mut [T] {
        let ptr = self.alloc_layout(Layout::for_value(src)).cast::<T>();
        // SAFETY: fresh memory for `src.len()` values of `T`, distinct from `src`; `T: Copy`
        // makes a bitwise copy a valid value.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), src.len());
            core::slice::from_raw_parts_mut(ptr.as_ptr(), src.len())
        }
    }

    /// Clones every element of a slice into the chunk. The clones are never dropped.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// let names = chunk.alloc_slice_clone(&["host", "accept"]);
    /// names[1] = "user-agent";
    /// assert_eq!(names, ["host", "user-agent"]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, or if `clone` panics.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_clone<T: Clone>(&self, src: &[T]) -> &mut [T] {
        self.alloc_slice_fill_with(src.len(), |i| src[i].clone())
    }

    /// Allocates a slice of `len` elements, the `i`-th being `f(i)`. The elements are never
    /// dropped.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let squares = chunk.alloc_slice_fill_with(5, |i| i * i);
    /// assert_eq!(squares, &[0, 1, 4, 9, 16]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, if the slice would exceed
    /// `isize::MAX` bytes, or if `f` panics (the elements written so far are leaked).
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_with<T, F: FnMut(usize) -> T>(&self, len: usize, f: F) -> &mut [T] {
        let ptr = self.alloc_layout(array_layout::<T>(len)).cast::<T>();
        // SAFETY: a fresh allocation of this chunk for `len` values of `T`, tied to `&self`.
        unsafe { fill(ptr, len, f) }
    }

    /// Copies a string into the chunk.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = chunk.alloc_str("Content-Type");
    /// s.make_ascii_lowercase();
    /// assert_eq!(s, "content-type");
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_str(&self, s: &str) -> &mut str {
        let bytes = self.alloc_slice_copy(s.as_bytes());
        // SAFETY: the bytes are a copy of a `str`, hence valid UTF-8.
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }
}

/// Reports an iterator that yielded fewer elements than its `ExactSizeIterator::len`.
#[cold]
#[inline(never)]
#[track_caller]
fn too_few_elements(len: usize, got: usize) -> ! {
    panic!(
        "perfloc: alloc_slice_fill_iter: the iterator yielded {got} elements, fewer than \
         the {len} its ExactSizeIterator::len promised"
    )
}

/// Reports a chunk `Vec` or `String` that could not grow, for the panicking methods.
#[cold]
#[inline(never)]
#[track_caller]
fn grow_failed<K: BumpState>(chunk: &ProcessChunk<'_, K>, what: &str) -> ! {
    panic!("{}", chunk.refusal_message(&format!("growing {what}")))
}

/// The capacity `alloc_fmt` starts with.
const FMT_START_CAPACITY: usize = 64;

impl<K: BumpState> ProcessChunk<'_, K> {
    /// Moves `f()` into the chunk, or returns `AllocError` if the pool cannot provide the
    /// memory (then `f` is not called). The destructor will never run.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// let table = chunk.try_alloc_with(|| [7u32; 64])?;
    /// assert_eq!(table[63], 7);
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_with<T, F: FnOnce() -> T>(&self, f: F) -> Result<&mut T, AllocError> {
        let ptr = self.try_alloc_layout(Layout::new::<T>())?.cast::<T>();
        // SAFETY: as in `try_alloc`; if `f` panics, the memory stays unused until the
        // chunk goes away, which is harmless.
        unsafe {
            ptr.write(f());
            Ok(&mut *ptr.as_ptr())
        }
    }

    /// Copies a slice into the chunk, or returns `AllocError`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = chunk.try_alloc_slice_copy(&[1u16, 2, 3])?;
    /// assert_eq!(s, &[1, 2, 3]);
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_copy<T: Copy>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        let ptr = self.try_alloc_layout(Layout::for_value(src))?.cast::<T>();
        // SAFETY: as in `alloc_slice_copy`.
        unsafe {
            core::ptr::copy_nonoverlapping(src.as_ptr(), ptr.as_ptr(), src.len());
            Ok(core::slice::from_raw_parts_mut(ptr.as_ptr(), src.len()))
        }
    }

    /// Clones every element of a slice into the chunk, or returns `AllocError` (before
    /// any `clone`). The clones are never dropped.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = chunk.try_alloc_slice_clone(&[Some("a"), None])?;
    /// assert_eq!(s, &[Some("a"), None]);
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `clone` panics (the clones made so far are leaked).
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_clone<T: Clone>(&self, src: &[T]) -> Result<&mut [T], AllocError> {
        self.try_alloc_slice_fill_with(src.len(), |i| src[i].clone())
    }

    /// Allocates a slice of `len` elements, the `i`-th being `f(i)`, or returns
    /// `AllocError` (before any call of `f`) if the pool cannot provide the memory or the
    /// slice would exceed `isize::MAX` bytes. The elements are never dropped.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// assert_eq!(chunk.try_alloc_slice_fill_with(3, |i| i * 10)?, &[0, 10, 20]);
    /// assert!(chunk.try_alloc_slice_fill_with(usize::MAX, |i| i).is_err());
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `f` panics (the elements written so far are leaked).
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_fill_with<T, F: FnMut(usize) -> T>(
        &self,
        len: usize,
        f: F,
    ) -> Result<&mut [T], AllocError> {
        let layout = Layout::array::<T>(len).map_err(|_| AllocError)?;
        let ptr = self.try_alloc_layout(layout)?.cast::<T>();
        // SAFETY: a fresh allocation for `len` values of `T`.
        Ok(unsafe { fill(ptr, len, f) })
    }

    /// Copies a string into the chunk, or returns `AllocError`.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// assert_eq!(chunk.try_alloc_str("x-request-id")?, "x-request-id");
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_str(&self, s: &str) -> Result<&mut str, AllocError> {
        let bytes = self.try_alloc_slice_copy(s.as_bytes())?;
        // SAFETY: the bytes are a copy of a `str`, hence valid UTF-8.
        Ok(unsafe { core::str::from_utf8_unchecked_mut(bytes) })
    }

    /// A slice of `len` copies of `value`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// assert_eq!(chunk.alloc_slice_fill_copy(3, 9u8), &[9, 9, 9]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory or the slice would exceed `isize::MAX`
    /// bytes.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_copy<T: Copy>(&self, len: usize, value: T) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| value)
    }

    /// A slice of `len` clones of `value`. The clones are never dropped: a type that owns
    /// heap memory (a `std::string::String`) would leak it.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// let names = chunk.alloc_slice_fill_clone(2, &Some("n/a"));
    /// assert_eq!(names, &[Some("n/a"), Some("n/a")]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`ProcessChunk::alloc_slice_fill_copy`], and if `clone` panics (the clones made
    /// so far are leaked).
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_clone<T: Clone>(&self, len: usize, value: &T) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| value.clone())
    }

    /// A slice of `len` default values. They are never dropped.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let counts: &mut [u32] = chunk.alloc_slice_fill_default(4);
    /// counts[2] += 1;
    /// assert_eq!(counts, &[0, 0, 1, 0]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`ProcessChunk::alloc_slice_fill_copy`], and if `default` panics.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_default<T: Default>(&self, len: usize) -> &mut [T] {
        self.alloc_slice_fill_with(len, |_| T::default())
    }

    /// A slice of the elements of an iterator that knows its length: one allocation of
    /// exactly `len()` elements, filled in order. The elements are never dropped.
    ///
    /// An iterator that lies about its length cannot break the chunk: if it yields fewer
    /// elements than it promised, this panics; extra ones are not taken.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let words = chunk.alloc_slice_fill_iter(["a", "b", "c"].iter().map(|w| w.len()));
    /// assert_eq!(words, &[1, 1, 1]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`ProcessChunk::alloc_slice_fill_copy`], if the iterator panics, or if it yields
    /// fewer elements than its `len()` (the elements written so far are leaked).
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_fill_iter<T, I>(&self, iter: I) -> &mut [T]
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut iter = iter.into_iter();
        let len = iter.len();
        self.alloc_slice_fill_with(len, |i| match iter.next() {
            Some(value) => value,
            None => too_few_elements(len, i),
        })
    }

    /// A slice of the elements of any iterator. They are collected in a chunk `Vec`
    /// (which grows in place while it is the chunk's newest allocation), whose spare
    /// capacity is then given back. The elements are never dropped.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let evens = chunk.alloc_iter((0..10).filter(|n| n % 2 == 0));
    /// assert_eq!(evens, &[0, 2, 4, 6, 8]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, or if the iterator panics: then the
    /// elements it produced so far are dropped (once) and their memory is given back.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_iter<T, I: IntoIterator<Item = T>>(&self, iter: I) -> &mut [T] {
        let mut iter = iter.into_iter();
        let mut vec = Vec::new_in(self);
        while let Some(value) = iter.next() {
            // A lower size hint too big to reserve (a lying or unbounded iterator) only
            // costs the amortised growth of a single element.
            if vec.len() == vec.capacity()
                && vec.try_reserve(iter.size_hint().0.saturating_add(1)).is_err()
                && vec.try_reserve(1).is_err()
            {
                grow_failed(self, "the Vec of alloc_iter");
            }
            vec.push(value);
        }
        Box::leak(vec.into_boxed_slice())
    }

    /// Formats `args` straight into the chunk (no temporary on the global heap) and
    /// returns the text, bumpalo-style: `chunk.alloc_fmt(format_args!(…))`. See also
    /// [`format_in!`](crate::format_in) for a growable [`String`].
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let (method, path) = ("GET", "/");
    /// let line = chunk.alloc_fmt(format_args!("{method} {path} HTTP/1.1"));
    /// assert_eq!(line, "GET / HTTP/1.1");
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, or if a formatting-trait
    /// implementation returns an error (as `std::format!` does: a `Display` impl must
    /// only pass on the `Formatter`'s errors). What it wrote is given back as the panic
    /// unwinds.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_fmt(&self, args: fmt::Arguments<'_>) -> &mut str {
        match self.try_alloc_fmt(args) {
            Ok(s) => s,
            Err(AllocError) => grow_failed(self, "the String of alloc_fmt"),
        }
    }

    /// Formats `args` straight into the chunk, or returns `AllocError` if the pool cannot
    /// provide the memory (what was written so far is given back).
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// let s = chunk.try_alloc_fmt(format_args!("{}+{}={}", 1, 2, 1 + 2))?;
    /// assert_eq!(s, "1+2=3");
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if a formatting-trait implementation returns an error of its own (a bug in
    /// it, as for `std::format!`); only a want of memory is an `Err`.
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_fmt(&self, args: fmt::Arguments<'_>) -> Result<&mut str, AllocError> {
        if let Some(s) = args.as_str() {
            return self.try_alloc_str(s);
        }
        let mut string = String::new_in(self);
        // Room for short text at once, sparing the first growths: the text is the chunk's
        // newest allocation, so `into_str` gives back what it does not use. If even this
        // fails, the first write reports it.
        let _ = string.try_reserve(FMT_START_CAPACITY);
        Ok(TextWriter::format(string, args)?.into_str())
    }
}

/// Writes `f(0)`, …, `f(len - 1)` at `ptr` and returns them as a slice.
///
/// # Safety
///
/// `ptr` must be a fresh allocation for `len` values of `T` that lives for `'a` and that
/// nothing else uses.
unsafe fn fill<'a, T, F: FnMut(usize) -> T>(ptr: NonNull<T>, len: usize, mut f: F) -> &'a mut [T] {
    for i in 0..len {
        // SAFETY: `i < len`, inside the fresh allocation for `len` values of `T` (caller).
        unsafe { ptr.add(i).write(f(i)) };
    }
    // SAFETY: all `len` elements were initialised above, and the memory is ours for `'a`.
    unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) }
}
