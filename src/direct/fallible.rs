//! Direct allocation whose initialiser may fail, in bumpalo's names (`alloc_try_with`,
//! `alloc_slice_try_fill_with`, `alloc_slice_try_fill_iter`, and `try_` forms that fail
//! for want of memory too), and uninitialised or zeroed slices for reading request bodies
//! without an `unsafe` layout call (`alloc_uninit_slice`, `alloc_zeroed_slice`).
//!
//! When an initialiser returns an error, the values it made so far are dropped and the
//! memory goes back to the chunk (at once if nothing was allocated since, as for any
//! deallocation); nothing is left half-built.

use core::alloc::Layout;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use allocator_api2::alloc::AllocError;

use super::{array_layout, out_of_memory, too_few_elements};
use crate::{BumpState, ProcessChunk};

/// Why a `try_` method with a fallible initialiser failed: the chunk had no memory, or the
/// initialiser returned an error (bumpalo's type of the same name).
///
/// ```
/// use perfloc::AllocOrInitError;
///
/// let chunk = perfloc::chunk();
/// let parsed = chunk.try_alloc_try_with(|| "42x".parse::<u32>());
/// assert!(matches!(parsed, Err(AllocOrInitError::Init(_))));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocOrInitError<E> {
    /// The chunk could not provide the memory (its limit, the pool's, the OS).
    Alloc(AllocError),
    /// The initialiser returned this error.
    Init(E),
}

impl<E> From<AllocError> for AllocOrInitError<E> {
    fn from(err: AllocError) -> Self {
        AllocOrInitError::Alloc(err)
    }
}

impl<E: fmt::Display> fmt::Display for AllocOrInitError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocOrInitError::Alloc(err) => write!(f, "perfloc: {err}"),
            AllocOrInitError::Init(err) => err.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AllocOrInitError<E> {}

impl<K: BumpState> ProcessChunk<'_, K> {
    /// Allocates a `T` and fills it with `f()`, or returns `f`'s error (the memory goes
    /// back). The value's destructor never runs.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let port: &mut u16 = chunk.alloc_try_with(|| "8080".parse())?;
    /// assert_eq!(*port, 8080);
    /// assert!(chunk.alloc_try_with(|| "http".parse::<u16>()).is_err());
    /// # Ok::<(), std::num::ParseIntError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory; see [`ProcessChunk::try_alloc_try_with`].
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_try_with<T, E, F: FnOnce() -> Result<T, E>>(&self, f: F) -> Result<&mut T, E> {
        let mut f = Some(f);
        let slice = self.alloc_slice_try_fill_with(1, |_| f.take().expect("called once")())?;
        Ok(&mut slice[0])
    }

    /// [`ProcessChunk::alloc_try_with`], or `AllocOrInitError::Alloc` if the pool cannot
    /// provide the memory (then `f` is not called).
    ///
    /// ```
    /// use perfloc::AllocOrInitError;
    ///
    /// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// let big = chunk.try_alloc_try_with(|| Ok::<_, ()>([0u8; 1 << 20]));
    /// assert!(matches!(big, Err(AllocOrInitError::Alloc(_))));
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_try_with<T, E, F: FnOnce() -> Result<T, E>>(
        &self,
        f: F,
    ) -> Result<&mut T, AllocOrInitError<E>> {
        let mut f = Some(f);
        let slice = self.try_fill(Layout::new::<[T; 1]>(), 1, |_| f.take().expect("once")())?;
        Ok(&mut slice[0])
    }

    /// A slice of `len` elements, the `i`-th being `f(i)`, or the first error `f` returns
    /// (the elements made so far are dropped and the memory goes back). The elements are
    /// never dropped otherwise.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let fields = ["1", "2", "3"];
    /// let numbers = chunk.alloc_slice_try_fill_with(3, |i| fields[i].parse::<u8>())?;
    /// assert_eq!(numbers, &[1, 2, 3]);
    /// assert!(chunk.alloc_slice_try_fill_with(2, |i| ["1", "x"][i].parse::<u8>()).is_err());
    /// # Ok::<(), std::num::ParseIntError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, if the slice would exceed
    /// `isize::MAX` bytes, or if `f` panics (the elements written so far are leaked).
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_try_fill_with<T, E, F: FnMut(usize) -> Result<T, E>>(
        &self,
        len: usize,
        f: F,
    ) -> Result<&mut [T], E> {
        let layout = array_layout::<T>(len);
        match self.try_fill(layout, len, f) {
            Ok(slice) => Ok(slice),
            Err(AllocOrInitError::Init(err)) => Err(err),
            Err(AllocOrInitError::Alloc(AllocError)) => out_of_memory(self, layout),
        }
    }

    /// [`ProcessChunk::alloc_slice_try_fill_with`], or `AllocOrInitError::Alloc` (before any
    /// call of `f`) if the pool cannot provide the memory or the slice would exceed
    /// `isize::MAX` bytes.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let ok = chunk.try_alloc_slice_try_fill_with(2, |i| Ok::<_, ()>(i))?;
    /// assert_eq!(ok, &[0, 1]);
    /// # Ok::<(), perfloc::AllocOrInitError<()>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `f` panics (the elements written so far are leaked).
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_slice_try_fill_with<T, E, F: FnMut(usize) -> Result<T, E>>(
        &self,
        len: usize,
        f: F,
    ) -> Result<&mut [T], AllocOrInitError<E>> {
        let layout = Layout::array::<T>(len).map_err(|_| AllocError)?;
        self.try_fill(layout, len, f)
    }

    /// A slice of the `Ok` items of an iterator that knows its length, or its first `Err`
    /// (the elements taken so far are dropped and the memory goes back).
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let parsed = chunk.alloc_slice_try_fill_iter("1,2,3".split(',').map(str::parse::<u8>).collect::<Vec<_>>());
    /// assert_eq!(parsed?, &[1, 2, 3]);
    /// # Ok::<(), std::num::ParseIntError>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory, or if the iterator yields fewer items
    /// than its `len()` promised (extra ones are not taken).
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_slice_try_fill_iter<T, E, I>(&self, iter: I) -> Result<&mut [T], E>
    where
        I: IntoIterator<Item = Result<T, E>>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut iter = iter.into_iter();
        let len = iter.len();
        self.alloc_slice_try_fill_with(len, |i| match iter.next() {
            Some(item) => item,
            None => too_few_elements(len, i),
        })
    }

    /// A slice of `len` uninitialised elements: for a buffer that a read fills (a body
    /// read in pieces), with no `unsafe` layout call. Initialise before reading.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let buf = chunk.alloc_uninit_slice::<u8>(5);
    /// for (slot, byte) in buf.iter_mut().zip(b"hello") {
    ///     slot.write(*byte);
    /// }
    /// // SAFETY: every element was written just above.
    /// assert_eq!(unsafe { buf[4].assume_init() }, b'o');
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory or the slice would exceed `isize::MAX`
    /// bytes; see [`ProcessChunk::try_alloc_uninit_slice`].
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_uninit_slice<T>(&self, len: usize) -> &mut [MaybeUninit<T>] {
        let layout = array_layout::<T>(len);
        match self.try_alloc_uninit_slice(len) {
            Ok(slice) => slice,
            Err(AllocError) => out_of_memory(self, layout),
        }
    }

    /// [`ProcessChunk::alloc_uninit_slice`], or `AllocError`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// assert_eq!(chunk.try_alloc_uninit_slice::<u64>(8)?.len(), 8);
    /// assert!(chunk.try_alloc_uninit_slice::<u64>(usize::MAX).is_err());
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_uninit_slice<T>(
        &self,
        len: usize,
    ) -> Result<&mut [MaybeUninit<T>], AllocError> {
        let layout = Layout::array::<T>(len).map_err(|_| AllocError)?;
        let ptr = self.try_alloc_layout(layout)?.cast::<MaybeUninit<T>>();
        // SAFETY: a fresh allocation of this chunk for `len` values of `T`, tied to
        // `&self`; `MaybeUninit` needs no initialisation.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }

    /// A slice of `len` zero bytes: a buffer to read into with `Read::read`.
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// let chunk = perfloc::chunk();
    /// let buf = chunk.alloc_zeroed_slice(16);
    /// let n = (&b"POST /orders"[..]).read(buf)?;
    /// assert_eq!(&buf[..n], b"POST /orders");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the memory or the slice would exceed `isize::MAX`
    /// bytes; see [`ProcessChunk::try_alloc_zeroed_slice`].
    #[track_caller]
    #[allow(clippy::mut_from_ref)]
    pub fn alloc_zeroed_slice(&self, len: usize) -> &mut [u8] {
        match self.try_alloc_zeroed_slice(len) {
            Ok(slice) => slice,
            Err(AllocError) => out_of_memory(self, array_layout::<u8>(len)),
        }
    }

    /// [`ProcessChunk::alloc_zeroed_slice`], or `AllocError`.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(256 << 10).build()?;
    /// let chunk = pool.chunk();
    /// assert!(chunk.try_alloc_zeroed_slice(1 << 20).is_err()); // a hostile Content-Length
    /// assert!(chunk.refused());
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[allow(clippy::mut_from_ref)]
    pub fn try_alloc_zeroed_slice(&self, len: usize) -> Result<&mut [u8], AllocError> {
        let ptr = self.try_alloc_uninit_slice::<u8>(len)?.as_mut_ptr().cast::<u8>();
        // SAFETY: a fresh allocation of this chunk for `len` bytes, tied to `&self`, each
        // initialised to zero before the slice is made.
        unsafe {
            ptr.write_bytes(0, len);
            Ok(core::slice::from_raw_parts_mut(ptr, len))
        }
    }

    /// Allocates `layout` (`len` values of `T`) and fills it with `f(0)`, …; on `f`'s
    /// first error, drops what it made and gives the memory back.
    #[allow(clippy::mut_from_ref)]
    fn try_fill<T, E>(
        &self,
        layout: Layout,
        len: usize,
        mut f: impl FnMut(usize) -> Result<T, E>,
    ) -> Result<&mut [T], AllocOrInitError<E>> {
        let ptr: NonNull<T> = self.try_alloc_layout(layout)?.cast();
        for i in 0..len {
            match f(i) {
                // SAFETY: `i < len`, inside the fresh allocation for `len` values of `T`.
                Ok(value) => unsafe { ptr.add(i).write(value) },
                Err(err) => {
                    // SAFETY: the first `i` values were written above and nothing else
                    // refers to them; the allocation is this chunk's, of `layout`, and is
                    // given up here.
                    unsafe {
                        core::ptr::slice_from_raw_parts_mut(ptr.as_ptr(), i).drop_in_place();
                        self.dealloc(ptr.cast(), layout);
                    }
                    return Err(AllocOrInitError::Init(err));
                }
            }
        }
        // SAFETY: all `len` values were written, and the memory is ours for `&self`.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }
}
