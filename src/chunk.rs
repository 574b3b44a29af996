//! The process chunk: one scope's arena, a chain of blocks lent by the pool.
//!
//! # Layout
//!
//! - **Regular blocks** start with a [`BlockHeader`]. The chunk bumps upward in the newest
//!   one (the *current* block). When it is full, the chunk takes a *successor* block twice
//!   the size of the last and links it from the old block's header (`next`), so the chain
//!   runs `first → … → current` and has the chunk's lifetime. Successor sizes double, so a
//!   chunk holding `n` bytes has `O(log n)` blocks.
//! - **Large blocks** hold one allocation that would not fit in the next successor. They
//!   are sized for the request alone and do not advance the doubling (a single huge request
//!   must not inflate every later block), carry no header (their [`LargeNode`] lives in the
//!   chunk's own bump memory), and go back to the pool as soon as that allocation is
//!   deallocated, like Postgres' dedicated blocks for chunks above `allocChunkLimit`.
//!   Whether an allocation lives in a large block is decided by its address (the chunk
//!   knows every large block's range), never by the layout the caller passes: after a
//!   `shrink` a large allocation may have any size. Shrinking one to size zero gives its
//!   block back at once (a zero-size allocation owns nothing).
//! - **Reset** keeps the largest block, large or regular, as the only regular block.
//!
//! # Invariants (relied on by every `unsafe` block in this module)
//!
//! 1. `current` and every block reachable from `first` through `next` are live regular
//!    blocks lent to this chunk by `pool`, each starting with an initialised header whose
//!    `size` is the block's size; the chain ends at `current` (`current.next == None`).
//! 2. `data_start(current) <= ptr <= end == current + current.size < bump::MAX_ADDR`
//!    (blocks lie in top chunks, which end below it), both derived from the current
//!    block's pointer; `ptr` is a multiple of `bump::MIN_ALIGN`; bytes in `ptr..end` are
//!    not handed out.
//! 3. Every node reachable from `large` is initialised, lies in a regular block of this
//!    chunk, and describes a live large block lent to this chunk, linked exactly once.
//! 4. Nothing hands out a `&mut` to chunk state across user code: state is in `Cell`s,
//!    read and written by value, and the chunk is `!Sync`.

use core::alloc::Layout;
use core::cell::Cell;
use core::fmt;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::AllocError;

use crate::config::MAX_SIZE;
use crate::pool::{Block, Pool};
use crate::stats::ChunkStats;
use crate::{asan, bump, os};

/// Header at the start of every regular block.
#[repr(C)]
struct BlockHeader {
    /// The successor block; `None` for the current block.
    next: Option<NonNull<BlockHeader>>,
    /// Size of the block in bytes, header included.
    size: usize,
    /// Bytes bumped past the header, written when the block stops being current.
    used: usize,
}

const HEADER: usize = size_of::<BlockHeader>();

/// Where a large block is recorded; allocated in the chunk's regular blocks.
struct LargeNode {
    next: Option<NonNull<LargeNode>>,
    block: Block,
    /// Size of the allocation the block holds.
    used: usize,
}

/// A process chunk: an arena for one scope, whose blocks come from a [`Pool`].
///
/// Allocate with the methods below or through `&Chunk` as an
/// [`allocator_api2::alloc::Allocator`] for `Vec`, `Box` and `hashbrown::HashMap`. When the
/// chunk drops, all its blocks go back to the pool at once, with no system call, in time
/// proportional to the number of blocks, not allocations.
///
/// A `Chunk` is `Send` (it may be dropped on another thread) but not `Sync`: its bump
/// pointer is a plain `Cell`.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<perfloc::Chunk<'static>>();
/// ```
///
/// A collection in a chunk cannot outlive it:
///
/// ```compile_fail,E0597
/// use allocator_api2::vec::Vec;
///
/// let pool = perfloc::Pool::new();
/// let escaped = {
///     let chunk = pool.chunk();
///     let mut v: Vec<u8, &perfloc::Chunk> = Vec::new_in(&chunk);
///     v.push(1);
///     v
/// };
/// ```
///
/// and the chunk cannot be reset while one lives:
///
/// ```compile_fail,E0502
/// use allocator_api2::vec::Vec;
///
/// let mut chunk = perfloc::chunk();
/// let mut v: Vec<u8, &perfloc::Chunk> = Vec::new_in(&chunk);
/// v.push(1);
/// chunk.reset();
/// v.push(2);
/// ```
pub struct Chunk<'pool> {
    /// Bump pointer: the next free byte of the current block (invariant 2).
    ptr: Cell<NonNull<u8>>,
    /// End of the current block (invariant 2).
    end: Cell<NonNull<u8>>,
    /// The newest regular block (invariant 1).
    current: Cell<NonNull<BlockHeader>>,
    /// The oldest regular block, head of the successor chain (invariant 1).
    first: Cell<NonNull<BlockHeader>>,
    /// Large blocks, newest first (invariant 3).
    large: Cell<Option<NonNull<LargeNode>>>,
    /// Size of the next successor block.
    next_size: Cell<usize>,
    pool: &'pool Pool,
}

// SAFETY: a chunk exclusively owns its blocks (nothing else points into them except borrows
// of the chunk, which cannot cross threads because `Chunk` is not `Sync`), and the pool it
// returns them to is `Sync`. Moving the whole chunk to another thread moves that ownership.
unsafe impl Send for Chunk<'_> {}

impl<'pool> Chunk<'pool> {
    pub(crate) fn new(pool: &'pool Pool) -> Result<Self, AllocError> {
        let size = pool.first_block_size();
        let block = pool.acquire(size, true)?;
        let header = new_header(block);
        Ok(Chunk {
            ptr: Cell::new(data_start(header)),
            end: Cell::new(block_end(block)),
            current: Cell::new(header),
            first: Cell::new(header),
            large: Cell::new(None),
            next_size: Cell::new((size * 2).min(MAX_SIZE)),
            pool,
        })
    }

    /// The pool this chunk takes its blocks from.
    pub fn pool(&self) -> &'pool Pool {
        self.pool
    }

    /// A child chunk from the same pool, like a Postgres child context: the parent's
    /// allocations stay usable while the child lives, and the child's blocks go back to the
    /// pool when it drops. The parent cannot be reset while a child lives.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let parent = perfloc::chunk();
    /// let mut kept: Vec<u32, _> = Vec::new_in(&parent);
    /// for i in 0..3 {
    ///     let child = parent.child();
    ///     let scratch = child.alloc_slice_fill_with(1000, |j| j as u32 * i);
    ///     kept.push(scratch.iter().sum());
    /// } // each child's blocks go back here
    /// assert_eq!(kept, [0, 499500, 999000]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the child's first block; see [`Chunk::try_child`].
    pub fn child(&self) -> Chunk<'_> {
        self.pool.chunk()
    }

    /// A child chunk, or `AllocError` if the pool cannot provide its first block.
    pub fn try_child(&self) -> Result<Chunk<'_>, AllocError> {
        self.pool.try_chunk()
    }

    /// Forgets everything allocated and keeps only the largest block for reuse, like
    /// `bumpalo::Bump::reset` and Postgres' keeper block. The other blocks go back to the
    /// pool. The largest block may be one that held a large allocation: it becomes the
    /// chunk's only regular block, so the same work fits again without the pool.
    ///
    /// ```
    /// let mut chunk = perfloc::chunk();
    /// for round in 0..10 {
    ///     for i in 0..1000u64 {
    ///         chunk.alloc(i * round);
    ///     }
    ///     chunk.reset();
    /// }
    /// assert_eq!(chunk.stats().blocks, 1);
    /// assert_eq!(chunk.stats().used_bytes, 0);
    ///
    /// chunk.alloc_slice_copy(&[0u8; 1 << 20]); // a block of its own
    /// chunk.reset();
    /// assert!(chunk.stats().capacity_bytes >= 1 << 20, "the largest block is kept");
    /// ```
    pub fn reset(&mut self) {
        let current = self.current.get();
        // SAFETY: the current block has an initialised header (invariant 1).
        let mut keep = Block { ptr: current.cast(), size: unsafe { current.as_ref().size } };
        let mut node = self.large.get();
        while let Some(n) = node {
            // SAFETY: large nodes are initialised (invariant 3).
            let n = unsafe { n.as_ref() };
            if n.block.size > keep.size {
                keep = n.block;
            }
            node = n.next;
        }
        self.pool.release(self.blocks().filter(|block| block.ptr != keep.ptr), false);
        // The current block's header is rewritten too: it must end the chain again.
        let header = new_header(keep);
        self.large.set(None);
        self.first.set(header);
        self.current.set(header);
        self.ptr.set(data_start(header));
        self.end.set(block_end(keep));
        self.next_size.set(self.next_size.get().max(keep.size.saturating_mul(2)).min(MAX_SIZE));
        asan::poison(data_start(header), keep.size - HEADER);
    }

    /// Every block of the chunk, large ones first, then the chain from `first`. Links are
    /// read before the block holding them is yielded, and large nodes (which live in
    /// regular blocks) before any regular block, so the blocks may go back to the pool as
    /// they come.
    fn blocks(&self) -> impl Iterator<Item = Block> + use<'_, 'pool> {
        let mut large = self.large.get();
        let mut regular = Some(self.first.get());
        core::iter::from_fn(move || {
            if let Some(node) = large {
                // SAFETY: a live node (invariant 3), in a regular block not yet yielded.
                let n = unsafe { node.as_ref() };
                large = n.next;
                return Some(n.block);
            }
            let header = regular?;
            // SAFETY: a chain block with an initialised header (invariant 1), read before it
            // is yielded (and so before it can go back to the pool).
            let (next, size) = unsafe { ((*header.as_ptr()).next, (*header.as_ptr()).size) };
            regular = next;
            Some(Block { ptr: header.cast(), size })
        })
    }

    /// Figures of this chunk: blocks, their capacity and the bytes handed out.
    pub fn stats(&self) -> ChunkStats {
        let mut stats = ChunkStats { blocks: 0, capacity_bytes: 0, used_bytes: 0, large_blocks: 0 };
        let current = self.current.get();
        let mut cur = Some(self.first.get());
        while let Some(header) = cur {
            // SAFETY: chain blocks have initialised headers (invariant 1).
            let h = unsafe { header.as_ref() };
            stats.blocks += 1;
            stats.capacity_bytes += h.size;
            stats.used_bytes += if header == current {
                self.ptr.get().addr().get() - data_start(header).addr().get()
            } else {
                h.used
            };
            cur = h.next;
        }
        let mut node = self.large.get();
        while let Some(n) = node {
            // SAFETY: large nodes are initialised (invariant 3).
            let n = unsafe { n.as_ref() };
            stats.blocks += 1;
            stats.large_blocks += 1;
            stats.capacity_bytes += n.block.size;
            stats.used_bytes += n.used;
            node = n.next;
        }
        stats
    }

    /// Total capacity of the chunk's blocks in bytes (bumpalo's name for
    /// [`ChunkStats::capacity_bytes`]).
    pub fn allocated_bytes(&self) -> usize {
        self.stats().capacity_bytes
    }

    /// Allocates memory for `layout`, or returns `AllocError` if the pool has none to give.
    /// The memory is uninitialised and lives until the chunk is reset or dropped.
    ///
    /// Zero-size layouts succeed and use at most alignment padding; every alignment a
    /// `Layout` can hold works.
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        match self.bump(layout) {
            Some(ptr) => Ok(ptr),
            None => self.alloc_slow(layout),
        }
    }

    /// The fast path: bump in the current block, or `None` when it has no room.
    #[inline(always)]
    fn bump(&self, layout: Layout) -> Option<NonNull<u8>> {
        let ptr = self.ptr.get();
        let addr = ptr.addr().get();
        // SAFETY: the bump pointer is a multiple of `MIN_ALIGN` (invariant 2). Telling the
        // compiler lets it drop the rounding for alignments up to a word.
        unsafe { core::hint::assert_unchecked(addr % bump::MIN_ALIGN == 0) };
        let (start, new) = bump::fit(addr, self.end.get().addr().get(), layout)?;
        // SAFETY: `fit` checked `ptr <= start <= new <= end`, so both pointers stay within the
        // current block (invariant 2) and keep its provenance.
        let (start, new) = unsafe { (ptr.add(start - addr), ptr.add(new - addr)) };
        self.ptr.set(new);
        asan::unpoison(start, new.addr().get() - start.addr().get());
        Some(start)
    }

    /// The slow path: zero-size layouts, a successor block, or a large block.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            // A well-aligned dangling pointer is a valid zero-size allocation.
            return Ok(dangling(layout.align()));
        }
        let page = os::page_size();
        let next = self.next_size.get();
        match bump::regular_need(HEADER, layout, page) {
            Some(need) if need <= next => {
                self.push_successor(next)?;
                self.next_size.set(next.saturating_mul(2).min(MAX_SIZE));
                Ok(self.bump(layout).expect("a successor block holds the request it was sized for"))
            }
            _ => self.alloc_large(layout, page),
        }
    }

    /// Takes a successor block of `size` bytes and makes it current.
    fn push_successor(&self, size: usize) -> Result<(), AllocError> {
        let block = self.pool.acquire(size, false)?;
        let header = new_header(block);
        let old = self.current.get();
        // SAFETY: `old` is the current block with an initialised header (invariant 1), and
        // no reference to it is live (invariant 4).
        unsafe {
            (*old.as_ptr()).next = Some(header);
            (*old.as_ptr()).used = self.ptr.get().addr().get() - data_start(old).addr().get();
        }
        self.current.set(header);
        self.ptr.set(data_start(header));
        self.end.set(block_end(block));
        Ok(())
    }

    /// Allocates `layout` in a block of its own, recorded in a node in the bump memory.
    fn alloc_large(&self, layout: Layout, page: usize) -> Result<NonNull<u8>, AllocError> {
        let need = bump::large_need(layout, page).ok_or(AllocError)?;
        let size = self.pool.block_size_for(need).ok_or(AllocError)?;
        // Take the block first: if that fails, the chunk has not changed at all.
        let block = self.pool.acquire(size, false)?;
        let node = match self.try_alloc_layout(Layout::new::<LargeNode>()) {
            Ok(node) => node.cast::<LargeNode>(),
            Err(err) => {
                self.pool.release([block], false);
                return Err(err);
            }
        };
        // SAFETY: `node` is fresh bump memory sized and aligned for a `LargeNode`.
        unsafe {
            node.write(LargeNode { next: self.large.get(), block, used: layout.size() });
        }
        self.large.set(Some(node));
        let pad = bump::padding(block.ptr.addr().get(), layout.align());
        // SAFETY: `large_need` reserved room for the padding and the size inside the block.
        let data = unsafe { block.ptr.add(pad) };
        asan::unpoison(data, layout.size());
        Ok(data)
    }

    /// True when the allocation at `ptr` of `size` bytes (so of `footprint(size)` bytes in
    /// the block) ends at the bump pointer, so it is the newest one in the current block.
    ///
    /// No allocation from another block can end there: the bump pointer is strictly past
    /// the start of the current block (after its header), and blocks do not overlap.
    #[inline(always)]
    fn is_newest(&self, ptr: NonNull<u8>, size: usize) -> bool {
        size != 0 && ptr.addr().get() + bump::footprint(size) == self.ptr.get().addr().get()
    }

    /// The large node whose block holds the allocation of `size` bytes at `ptr`, and the
    /// node before it in the list.
    ///
    /// Decided by address alone, never by the layout: a large allocation may have been
    /// shrunk to any size. Zero-size allocations own no memory (a dangling pointer may
    /// alias any address, even inside a large block), so they are never found; an
    /// allocation inside the current block is regular, which spares the walk.
    fn find_large(
        &self,
        ptr: NonNull<u8>,
        size: usize,
    ) -> Option<(Option<NonNull<LargeNode>>, NonNull<LargeNode>)> {
        let addr = ptr.addr().get();
        let current = self.current.get().addr().get();
        if size == 0 || (current..self.end.get().addr().get()).contains(&addr) {
            return None;
        }
        let mut prev = None;
        let mut cur = self.large.get();
        while let Some(node) = cur {
            // SAFETY: large nodes are initialised (invariant 3).
            let n = unsafe { node.as_ref() };
            if n.block.contains(ptr) {
                return Some((prev, node));
            }
            prev = cur;
            cur = n.next;
        }
        None
    }

    /// Unlinks the large node `node` (after `prev`) and gives its block back to the pool.
    ///
    /// # Safety
    ///
    /// `node` and `prev` must come from [`Chunk::find_large`] with no change to the list
    /// since, and the allocation in the block must be given up.
    unsafe fn release_large(&self, prev: Option<NonNull<LargeNode>>, node: NonNull<LargeNode>) {
        // SAFETY: `node` (and `prev`, if any) are live nodes (invariant 3); unlinking keeps
        // every other node linked once, and the caller gave up the allocation.
        let block = unsafe {
            let n = node.as_ref();
            match prev {
                Some(p) => (*p.as_ptr()).next = n.next,
                None => self.large.set(n.next),
            }
            n.block
        };
        self.pool.release([block], false);
    }

    /// Deallocates; see the `Allocator` impl for `&Chunk`. The newest allocation is rewound
    /// inline; only a chunk with large blocks looks further, out of line.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `layout` made by this chunk.
    #[inline]
    pub(crate) unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        if self.is_newest(ptr, layout.size()) {
            self.ptr.set(ptr);
            asan::poison(ptr, bump::footprint(layout.size()));
        } else if self.large.get().is_some() {
            self.dealloc_large(ptr, layout);
        }
    }

    /// Gives a large block back to the pool if `ptr` is the allocation it holds.
    #[cold]
    #[inline(never)]
    fn dealloc_large(&self, ptr: NonNull<u8>, layout: Layout) {
        if let Some((prev, node)) = self.find_large(ptr, layout.size()) {
            // SAFETY: just found; the caller of `dealloc` gave up the allocation.
            unsafe { self.release_large(prev, node) };
        }
    }

    /// Grows in place when possible, else moves; see the `Allocator` impl for `&Chunk`.
    ///
    /// Kept out of line: inlined into every `Vec` type's growth path it bloats the
    /// caller's hot loops (measured: +20% on `request_cycle_small`).
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and
    /// `new.size() >= old.size()`.
    #[inline(never)]
    pub(crate) unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let addr = ptr.addr().get();
        if bump::padding(addr, new.align()) == 0 {
            if self.is_newest(ptr, old.size()) {
                if let Some((_, end)) = bump::fit(addr, self.end.get().addr().get(), new) {
                    // SAFETY: `ptr` starts the newest allocation of the current block and
                    // `fit` checked `end` is within it (invariant 2).
                    self.ptr.set(unsafe { ptr.add(end - addr) });
                    asan::unpoison(ptr, end - addr);
                    return Ok(ptr);
                }
            } else if let Some((_, node)) = self.find_large(ptr, old.size()) {
                // SAFETY: `node` is a live node (invariant 3) that nothing else borrows.
                let n = unsafe { &mut *node.as_ptr() };
                if bump::fit(addr, block_end(n.block).addr().get(), new).is_some() {
                    n.used = new.size();
                    asan::unpoison(ptr, new.size());
                    return Ok(ptr);
                }
            }
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// Shrinks in place when the alignment allows, else moves; see the `Allocator` impl.
    ///
    /// Shrinking to size zero gives the memory back (as `dealloc` would) and returns a
    /// dangling pointer: a zero-size allocation owns nothing. A large allocation that now
    /// fits in the room left in the current block moves there, and its block goes back to
    /// the pool.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and
    /// `new.size() <= old.size()`.
    pub(crate) unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            // SAFETY: the caller gives up the allocation, which becomes a zero-size one.
            unsafe { self.dealloc(ptr, old) };
            return Ok(dangling(new.align()));
        }
        let aligned = bump::padding(ptr.addr().get(), new.align()) == 0;
        if self.is_newest(ptr, old.size()) {
            if aligned {
                // SAFETY: the new end lies inside the old allocation's footprint, in the
                // current block, and is a multiple of `MIN_ALIGN` (invariant 2).
                let new_end = unsafe { ptr.add(bump::footprint(new.size())) };
                self.ptr.set(new_end);
                asan::poison(new_end, bump::footprint(old.size()) - bump::footprint(new.size()));
                return Ok(ptr);
            }
        } else if let Some((_, node)) = self.find_large(ptr, old.size()) {
            let fits_current =
                bump::fit(self.ptr.get().addr().get(), self.end.get().addr().get(), new);
            if aligned && fits_current.is_none() {
                // SAFETY: `node` is a live node (invariant 3) that nothing else borrows.
                unsafe { (*node.as_ptr()).used = new.size() };
                return Ok(ptr);
            }
        } else if aligned {
            return Ok(ptr);
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// Moves the allocation at `ptr` to a fresh one of `new`, copying the bytes both hold,
    /// and deallocates the old one.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk.
    unsafe fn relocate(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let new_ptr = self.try_alloc_layout(new)?;
        // SAFETY: the old allocation is live (caller) and the new one is fresh, so they are
        // distinct; each holds at least the bytes copied.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new.size()));
            self.dealloc(ptr, old);
        }
        Ok(new_ptr)
    }
}

impl Drop for Chunk<'_> {
    fn drop(&mut self) {
        self.pool.release(self.blocks(), true);
    }
}

impl fmt::Debug for Chunk<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk").field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// Writes a fresh header at the start of `block` and returns it.
fn new_header(block: Block) -> NonNull<BlockHeader> {
    let header = block.ptr.cast::<BlockHeader>();
    // The block comes poisoned from the pool: open its header, keep its data closed until
    // allocations take it.
    crate::asan::unpoison(block.ptr, HEADER);
    // SAFETY: the block is at least `MIN_BLOCK_SIZE` bytes, aligned to at least that, and
    // exclusively ours, so a header fits at its start.
    unsafe { header.write(BlockHeader { next: None, size: block.size, used: 0 }) };
    header
}

/// First byte after a regular block's header.
fn data_start(header: NonNull<BlockHeader>) -> NonNull<u8> {
    // SAFETY: every block is larger than its header (invariant 1, `MIN_BLOCK_SIZE`).
    unsafe { header.cast::<u8>().add(HEADER) }
}

/// One past the last byte of `block`.
fn block_end(block: Block) -> NonNull<u8> {
    // SAFETY: one past the end of the block's own allocation is in bounds for `add`.
    unsafe { block.ptr.add(block.size) }
}

/// A non-null pointer aligned to `align`, without provenance: a zero-size allocation.
fn dangling(align: usize) -> NonNull<u8> {
    NonNull::new(ptr::without_provenance_mut(align)).expect("alignments are non-zero")
}
