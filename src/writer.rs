//! [`VecWriter`]: `std::io::Write` into a byte vector in any allocator, a chunk above all,
//! that reports a refused growth as [`io::ErrorKind::OutOfMemory`] instead of aborting.
//!
//! allocator-api2's `Vec<u8, A>` has no `io::Write` of its own, and one that grew with
//! `extend_from_slice` would call `handle_alloc_error` at a chunk's limit: the whole
//! process would abort. Serializers (`serde_json::to_writer`), `io::copy` and `write!` go
//! through this adapter instead.

use std::io;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// Writes into a `Vec<u8, A>`, growing it fallibly: when the allocator refuses (a chunk's
/// limit, the pool's, the OS), the write fails with [`io::ErrorKind::OutOfMemory`] and
/// the vector keeps what it had.
///
/// ```
/// use std::io::Write;
///
/// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
/// let chunk = pool.chunk();
/// let mut body: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
/// let mut out = perfloc::VecWriter::new(&mut body);
/// out.write_all(b"{\"ok\":true}")?;
/// let err = out.write_all(&vec![b' '; 1 << 20]).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
/// assert_eq!(body, b"{\"ok\":true}");
/// assert!(chunk.refused());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct VecWriter<'v, A: Allocator> {
    vec: &'v mut Vec<u8, A>,
}

impl<'v, A: Allocator> VecWriter<'v, A> {
    /// A writer that appends to `vec`.
    pub fn new(vec: &'v mut Vec<u8, A>) -> Self {
        VecWriter { vec }
    }
}

impl<A: Allocator> io::Write for VecWriter<'_, A> {
    /// Appends all of `buf`, or nothing: `OutOfMemory` when the vector cannot grow for it.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.vec.try_reserve(buf.len()).map_err(|err| {
            io::Error::new(io::ErrorKind::OutOfMemory, format!("perfloc: VecWriter: {err}"))
        })?;
        let len = self.vec.len();
        // SAFETY: `try_reserve` made room for `buf.len()` bytes past `len`; `buf` cannot
        // alias the vector's spare capacity (we hold `&mut` to the vector); the bytes are
        // initialised by the copy before `set_len` covers them. One copy, not allocator-
        // api2's `extend_from_slice`, which writes a byte at a time.
        unsafe {
            core::ptr::copy_nonoverlapping(buf.as_ptr(), self.vec.as_mut_ptr().add(len), buf.len());
            self.vec.set_len(len + buf.len());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
