//! Direct allocation in a chunk, in bumpalo's vocabulary: `alloc`, `try_alloc`,
//! `alloc_with`, `alloc_slice_copy`, `alloc_slice_clone`, `alloc_slice_fill_with`,
//! `alloc_str`, `alloc_layout`.
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

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::AllocError;

use crate::{BumpState, ProcessChunk};

/// Reports an allocation `chunk` could not satisfy, for the panicking methods: which limit
/// was hit (the chunk's, the pool's) or that the OS refused, with the figures.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_memory<K: BumpState>(chunk: &ProcessChunk<'_, K>, layout: Layout) -> ! {
    panic!("{}", chunk.refusal_message(layout))
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
    pub fn alloc_slice_fill_with<T, F: FnMut(usize) -> T>(&self, len: usize, mut f: F) -> &mut [T] {
        let ptr = self.alloc_layout(array_layout::<T>(len)).cast::<T>();
        for i in 0..len {
            // SAFETY: `i < len`, inside the fresh allocation for `len` values of `T`.
            unsafe { ptr.add(i).write(f(i)) };
        }
        // SAFETY: all `len` elements were initialised above.
        unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) }
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
