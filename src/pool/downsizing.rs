//! Downsizing: when the pool gives memory back to the OS, and how much.
//!
//! After a spike the pool holds top chunks the program no longer needs. Free memory above
//! [`retain`](crate::PoolBuilder::retain) that has **stayed free** for
//! [`decay`](crate::PoolBuilder::decay) goes back, in the spirit of jemalloc's decay and
//! mimalloc's purge delay, with no background thread: the policy runs on the pool's slow
//! paths (a block coming back, which is how a chunk drops; a top chunk being mapped), at
//! most once per `decay / 4`, and at once in [`Pool::trim`].
//!
//! Every free block carries the time it was freed. Memory that traffic frees and takes
//! again within `decay` is therefore never given back, whatever the size of the working
//! set, so steady traffic neither maps and unmaps nor purges and faults in a loop; memory
//! left free since a spike is given back one `decay` after the spike ends (plus at most
//! `decay / 4`).
//!
//! # What goes back, and how
//!
//! 1. **Whole top chunks** that have had no block in use for `decay` are unmapped
//!    (`munmap`), except those needed to keep `retain` (plus what is in use) ready: of
//!    the idle top chunks no larger than `retain`, the smallest one that covers it (best
//!    fit), else the one with the most ready memory, and again. Top chunks that traffic uses are never idle that long, so what remains serves
//!    the steady state; the large top chunks mapped for the spike go, each giving back the
//!    most memory per system call. The doubling then restarts from the largest top chunk
//!    left.
//! 2. **Free blocks inside the top chunks that stay** (whether or not a block is in use in
//!    them) are purged with `madvise(MADV_DONTNEED)` when they have stayed free for
//!    `decay`, largest first, from the top of each block down, until only `retain` (plus
//!    what is in use) is resident: the mapping stays, but the resident set falls at once
//!    (`MADV_FREE` would not lower it as `/proc/self/statm` reports it). A purged block
//!    reused later costs page faults, not system calls.
//!
//! `decay(Duration::ZERO)` returns free memory above `retain` as soon as it is free;
//! `decay(Duration::MAX)` never returns it by itself (only [`Pool::trim`] does), and neither
//! does any decay of 136 years (2^32 s) or more; a shorter one that is longer than the
//! process has lived returns nothing yet.

use core::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A decay from this long on (2^32 s, 136 years) outlives any process: it is `never`, as
/// `Duration::MAX` is, and the policy then costs releases nothing at all.
const NEVER: Duration = Duration::from_secs(1 << 32);

use super::{Pool, PoolState};
use crate::top_chunk::{PurgeJob, TopChunk};

impl Pool {
    /// Starts a background thread that runs the downsizing policy every `decay / 4` (at
    /// least every 10 ms), so that an idle program, which takes and gives back no blocks,
    /// returns memory too. Opt-in: by default the policy runs only on the pool's slow
    /// paths. The thread holds the pool's lock only while it shrinks, and runs until the
    /// program exits.
    ///
    /// ```
    /// use std::time::Duration;
    /// # if cfg!(miri) { return Ok(()) } // the trimmer thread outlives main, which Miri forbids
    ///
    /// let pool: &'static perfloc::Pool = Box::leak(Box::new(
    ///     perfloc::Pool::builder().retain(0).decay(Duration::from_millis(50)).build()?,
    /// ));
    /// pool.spawn_trimmer().expect("a thread");
    /// let chunk = pool.chunk();
    /// chunk.alloc_slice_copy(&vec![1u8; 8 << 20]);
    /// drop(chunk); // and then nothing more happens in this pool
    /// let start = std::time::Instant::now();
    /// while pool.stats().mapped_bytes > 0 && start.elapsed() < Duration::from_secs(5) {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(pool.stats().mapped_bytes, 0, "given back while idle");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn spawn_trimmer(&'static self) -> std::io::Result<std::thread::JoinHandle<()>> {
        let period = (self.config.decay / 4).max(Duration::from_millis(10));
        std::thread::Builder::new().name("perfloc-trimmer".into()).spawn(move || {
            loop {
                std::thread::sleep(period);
                let plan = self.downsize(&mut self.lock(), Instant::now());
                self.give_back(plan);
            }
        })
    }

    /// Returns to the OS, at once, all free memory above [`retain`](crate::PoolBuilder::retain),
    /// after taking back the blocks cached in the shards: unused top chunks are unmapped
    /// (but for the best fit that keeps `retain`) and free blocks in the others purged
    /// with `madvise`. Returns the bytes given back.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// // Decay MAX: nothing goes back by itself, so what `trim` returns is all of it.
    /// let pool = perfloc::Pool::builder().retain(0).decay(Duration::MAX).build()?;
    /// drop((0..64).map(|_| {
    ///     let chunk = pool.chunk();
    ///     chunk.alloc_slice_copy(&[7u8; 100_000]);
    ///     chunk
    /// }).collect::<Vec<_>>());
    /// assert!(pool.stats().free_bytes > 6 << 20);
    /// let released = pool.trim();
    /// assert!(released > 6 << 20);
    /// let stats = pool.stats();
    /// assert_eq!(stats.mapped_bytes - stats.purged_bytes, 0, "nothing resident is kept");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn trim(&self) -> usize {
        self.drain_shards();
        let plan = {
            let mut state = self.lock();
            let keep = state.lent_bytes.saturating_add(self.config.retain);
            let plan = self.shrink_to(&mut state, keep, None);
            state.check_if_enabled();
            plan
        };
        self.give_back(plan)
    }

    /// The downsizing policy, run on the slow paths at `now`: gives back free memory that
    /// has stayed free for `decay`, beyond `retain` plus what is in use. At most one attempt
    /// per `decay / 4`, so a pool that cannot shrink yet does not retry on every release.
    /// The system calls are left to [`Pool::give_back`], after the lock is released.
    #[must_use = "the plan's system calls must be made with Pool::give_back"]
    pub(super) fn downsize(&self, state: &mut PoolState, now: Instant) -> GiveBack {
        // `lent_bytes` counts the shards' caches, which hold the other half of `retain`.
        let keep = state.lent_bytes.saturating_add(self.config.retain / 2);
        let never = self.config.decay >= NEVER;
        let mut plan = GiveBack::default();
        // Cheap tests first: nothing to do while mapped memory is within `retain`.
        if state.mapped_bytes > keep && !never && state.next_shrink.is_none_or(|next| now >= next) {
            // No cutoff: the decay reaches back past the clock's origin, so nothing can have
            // been free that long yet (not "everything": that would purge at once).
            if let Some(cutoff) = now.checked_sub(self.config.decay) {
                plan = self.shrink_to(state, keep, Some(cutoff));
            }
            state.next_shrink = now.checked_add(self.config.decay / 4);
        }
        // With `never`, no release takes a policy turn at all.
        self.excess.store(state.mapped_bytes > keep && !never, Ordering::Relaxed);
        plan
    }

    /// Makes the system calls of a plan from [`Pool::shrink_to`] without the pool's lock:
    /// unmaps the top chunks taken out of the list and purges the blocks taken out of the
    /// books, then takes the lock again to give those blocks back (and to stop counting as
    /// purged what a failed call left as it was). Returns the bytes given back.
    pub(super) fn give_back(&self, plan: GiveBack) -> usize {
        let GiveBack { unmap, mut purges } = plan;
        let mut released: usize = unmap.iter().map(TopChunk::ready_bytes).sum();
        drop(unmap); // `munmap`
        if purges.is_empty() {
            return released;
        }
        let done: Vec<(usize, u64)> = purges.iter_mut().map(PurgeJob::run).collect();
        let mut state = self.lock();
        for (job, (bytes, calls)) in purges.into_iter().zip(done) {
            let top = state
                .top_chunks
                .iter_mut()
                .find(|top| top.addr() == job.top_chunk_addr())
                .expect("a top chunk with blocks being purged stays mapped");
            let failed = top.finish_purge(job);
            state.purged_bytes -= failed;
            state.released_bytes -= failed as u64;
            state.madvise_calls += calls;
            released += bytes;
        }
        state.check_if_enabled();
        released
    }

    /// Plans to give back to the OS what exceeds `keep` bytes of mapped, resident memory,
    /// and takes what goes out of the books at once; [`Pool::give_back`] makes the system
    /// calls after the lock is released.
    ///
    /// 1. Unused top chunks idle since at least `idle_since` (any unused one when `None`)
    ///    go (`munmap`), but for those needed to keep `keep` ready: among the idle top
    ///    chunks no larger than `retain`, the smallest one that covers what the busy top
    ///    chunks do not (best fit), else the one with the most ready, and again.
    ///    Top chunks that steady traffic uses are never idle for long, so they stay; the
    ///    spike's large ones go, each giving back the most per system call.
    /// 2. Free blocks of the remaining top chunks that have stayed free since `idle_since`
    ///    (any when `None`) are purged, largest first, while more than `keep` is ready;
    ///    only pages not purged yet, so a purge costs what it gives back.
    ///    Blocks that steady traffic frees and takes again are never purged, so they cost
    ///    neither `madvise` calls nor page faults.
    pub(super) fn shrink_to(
        &self,
        state: &mut PoolState,
        keep: usize,
        idle_since: Option<Instant>,
    ) -> GiveBack {
        let mut plan = GiveBack::default();
        let mut released = 0;
        let mut idle: Vec<usize> = (0..state.top_chunks.len())
            .filter(|&i| {
                state.top_chunks[i]
                    .idle_since()
                    .is_some_and(|t| idle_since.is_none_or(|limit| t <= limit))
            })
            .collect();
        idle.sort_by_key(|&i| state.top_chunks[i].size());
        let idle_ready: usize = idle.iter().map(|&i| state.top_chunks[i].ready_bytes()).sum();
        let busy_ready = state.mapped_bytes - state.purged_bytes - idle_ready;
        // Only top chunks no larger than `retain` may be kept for it: keeping a big mapping
        // for a little retained memory would hold address space for nothing.
        let (mut keepable, mut doomed): (Vec<usize>, Vec<usize>) =
            idle.into_iter().partition(|&i| state.top_chunks[i].size() <= self.config.retain);
        let mut needed = keep.saturating_sub(busy_ready);
        while needed > 0 && !keepable.is_empty() {
            let fit = keepable.iter().position(|&i| state.top_chunks[i].ready_bytes() >= needed);
            let most =
                (0..keepable.len()).max_by_key(|&k| state.top_chunks[keepable[k]].ready_bytes());
            let Some(k) = fit.or(most) else { break };
            let kept = keepable.remove(k);
            needed = needed.saturating_sub(state.top_chunks[kept].ready_bytes());
        }
        doomed.append(&mut keepable);
        doomed.sort_unstable_by(|a, b| b.cmp(a));
        for &i in &doomed {
            let top = state.top_chunks.remove(i);
            state.mapped_bytes -= top.size();
            state.purged_bytes -= top.purged_bytes();
            released += top.ready_bytes();
            state.munmap_calls += 1;
            plan.unmap.push(top);
        }
        if !doomed.is_empty() {
            // The doubling restarts from the largest top chunk left.
            let largest = state.top_chunks.iter().map(TopChunk::size).max().unwrap_or(0);
            let restart = largest.saturating_mul(2).max(self.config.first_top_chunk_size);
            state.next_top_size = state.next_top_size.min(restart);
        }
        let mut excess = (state.mapped_bytes - state.purged_bytes).saturating_sub(keep);
        let mut order: Vec<usize> = (0..state.top_chunks.len()).collect();
        order.sort_by_key(|&i| core::cmp::Reverse(state.top_chunks[i].size()));
        for i in order {
            if excess == 0 {
                break;
            }
            let top = &mut state.top_chunks[i];
            let purged_before = top.purged_bytes();
            if let Some(job) = top.plan_purge(excess, idle_since) {
                let planned = top.purged_bytes() - purged_before;
                state.purged_bytes += planned;
                released += planned;
                excess = excess.saturating_sub(planned);
                plan.purges.push(job);
            }
        }
        state.released_bytes += released as u64;
        plan
    }
}

/// What downsizing takes out of the pool's books, for [`Pool::give_back`] to return to
/// the OS without the pool's lock.
#[derive(Debug, Default)]
#[must_use = "the plan's system calls must be made with Pool::give_back"]
pub(super) struct GiveBack {
    /// Top chunks taken out of the list: dropping one unmaps it.
    unmap: Vec<TopChunk>,
    /// Free blocks taken out of their top chunks, to purge.
    purges: Vec<PurgeJob>,
}
