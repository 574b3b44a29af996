//! The chunk's out-of-line paths, `alloc_slow`, `grow`, `dealloc_large` and (where panics
//! unwind) a `Chunk`'s whole `dealloc`, are `extern "C"` functions, so that they cannot
//! unwind.
//!
//! The fast paths are inlined into the caller's code; the slow paths are calls. A call to
//! a function that may unwind is an `invoke`, which needs a landing pad that drops every
//! value the caller holds at that point: each `Vec` in a chunk then also has an address
//! the cleanup code takes, and LLVM keeps its pointer, capacity and length in memory
//! rather than in registers, in every loop of the function (a per-byte copy stored the
//! `Vec`'s length at every byte). A function that cannot unwind is a plain `call`. Calls
//! into bump-scope's slow path and into the global allocator are already plain calls; so
//! are perfloc's now.
//!
//! No code of the caller's runs in these paths (no closure, no `Drop`), and a want of
//! memory is an `AllocError`, never a panic. What could still panic there is a perfloc
//! bug caught by an assertion (or the invariant checker of the `check-invariants`
//! feature), or the global allocator failing inside the pool's bookkeeping, which aborts
//! by default anyway: such a panic now aborts the process (after the panic message),
//! rather than unwinding through a chunk left half-updated.
//!
//! The `extern "C"` functions take and return only FFI-safe values: an allocation result
//! travels as a pointer, null for `AllocError`.

use core::ptr::{self, NonNull};

use allocator_api2::alloc::AllocError;

/// An allocation result as an FFI-safe pointer: null for `AllocError`.
#[inline(always)]
pub(super) fn to_raw(result: Result<NonNull<u8>, AllocError>) -> *mut u8 {
    result.map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// The allocation result a [`to_raw`] pointer stands for.
#[inline(always)]
pub(super) fn from_raw(ptr: *mut u8) -> Result<NonNull<u8>, AllocError> {
    NonNull::new(ptr).ok_or(AllocError)
}
