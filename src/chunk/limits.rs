//! The chunk's limit and the refusals it records.
//!
//! The slow-path state counts the bytes of every block the chunk holds, and their peak. A
//! block that would take the count past the chunk's limit is refused before the pool is
//! asked: the allocation fails with `AllocError` and nothing else changes. Only blocks
//! count, so the fast path (which takes none) costs nothing more. The refusal is recorded
//! (the chunk's limit, the pool's, or a request no block can hold), for
//! [`ProcessChunk::refused`] and the panic messages of the non-`try_` methods.
//!
//! Invariant kept: `held` never passes `limit` through an admission; a lowered limit may
//! leave it above, and then only refuses new blocks (5).

use allocator_api2::alloc::AllocError;

use super::state::Refusal;
use super::{BumpState, ProcessChunk};

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    /// Changes this chunk's limit on the bytes of blocks it holds (see
    /// [`PoolBuilder::chunk_limit`](crate::PoolBuilder::chunk_limit), which sets the limit
    /// new chunks start with); `None` lifts it. Blocks already held stay: a limit below
    /// what the chunk holds only refuses new blocks.
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let chunk = perfloc::chunk();
    /// let big = Layout::array::<u8>(100 << 10).unwrap();
    /// chunk.set_limit(Some(64 << 10));
    /// assert!(chunk.try_alloc_layout(big).is_err());
    /// chunk.set_limit(None);
    /// assert!(chunk.try_alloc_layout(big).is_ok());
    /// assert_eq!(chunk.stats().limit, None);
    /// ```
    pub fn set_limit(&self, limit: Option<usize>) {
        self.state.slow(|slow| slow.limit = limit.unwrap_or(usize::MAX));
    }

    /// This chunk's limit on the bytes of blocks it holds, if it has one.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(1 << 20).build()?;
    /// assert_eq!(pool.chunk().limit(), Some(1 << 20));
    /// assert_eq!(perfloc::chunk().limit(), None);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn limit(&self) -> Option<usize> {
        let limit = self.state.slow(|slow| slow.limit);
        (limit != usize::MAX).then_some(limit)
    }

    /// True if the chunk refused an allocation since it was made or last reset: its limit,
    /// the pool's, the OS, or a request no block can hold. A typed way to tell "the cap was
    /// reached" (answer 413) from any other failure of work done in the chunk (400): no
    /// error text to match, and it holds whatever code (a parser, a formatter) swallowed or
    /// converted the error on the way.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
    /// let mut chunk = pool.chunk();
    /// let mut body: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
    /// assert!(body.try_reserve(16 << 10).is_ok());
    /// assert!(!chunk.refused());
    /// assert!(body.try_reserve(1 << 20).is_err()); // past the chunk's limit
    /// drop(body);
    /// assert!(chunk.refused());
    /// chunk.reset();
    /// assert!(!chunk.refused(), "a reset starts the chunk anew");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn refused(&self) -> bool {
        self.state.slow(|slow| slow.refusal.ever())
    }

    /// Records a request that no block can hold (sizes past what the pool may hand out):
    /// refused, with no figures for the message.
    #[cold]
    pub(super) fn no_block_holds_it(&self) -> AllocError {
        self.state.slow(|slow| slow.refusal = slow.refusal.no_block());
        AllocError
    }

    /// Why the last allocation failed, with the figures, for the panic messages of the
    /// non-`try_` methods: the chunk's limit, the pool's limit, or the OS.
    #[cold]
    /// `what`: what was being done, such as "allocating 100 bytes (align 8)".
    pub(crate) fn refusal_message(&self, what: &str) -> String {
        let slow = self.state.slow(|slow| *slow);
        match slow.refusal.get() {
            Some(Refusal::ChunkLimit(block)) => format!(
                "perfloc: chunk limit reached {what}: a block of {block} bytes would take the \
                 chunk past its limit of {} bytes (it holds {}); use the try_ methods to \
                 handle this",
                slow.limit, slow.held
            ),
            Some(Refusal::Pool(block)) => format!(
                "perfloc: out of memory {what}: {}; use the try_ methods to handle this",
                self.pool.refusal(block)
            ),
            None => format!(
                "perfloc: out of memory {what}: no block can hold it; use the try_ methods to \
                 handle this"
            ),
        }
    }
}
