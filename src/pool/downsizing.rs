//! Downsizing: when the pool gives memory back to the OS, and how much.
//!
//! After a spike the pool holds top chunks the program no longer needs. Free memory above
//! [`retain`](crate::PoolBuilder::retain) may stay for at most
//! [`decay`](crate::PoolBuilder::decay); then it goes back, in the spirit of jemalloc's
//! decay and mimalloc's purge delay, with no background thread: the policy runs on the
//! pool's slow paths (a block coming back, a top chunk being mapped) and in
//! [`Pool::trim`](crate::Pool::trim).
//!
//! # How much to keep
//!
//! The pool remembers the **demand**: the peak of its in-use bytes over the last `decay`,
//! kept in four buckets of `decay / 4` each. It keeps ready (mapped and resident) the
//! demand plus `retain`, and returns the rest. Steady traffic thus keeps what it needs
//! whatever its size, so it never maps and unmaps in a loop; a spike is forgotten one
//! `decay` (plus at most a bucket) after it ends, and its memory goes back.
//!
//! # What goes back, and how
//!
//! 1. **Whole top chunks** that have had no block in use for a whole `decay` are unmapped
//!    (`munmap`), largest first; one is kept when unmapping it would leave less than the
//!    target ready. Top chunks that steady traffic uses never stay idle that long, so what
//!    remains serves the steady state; the large top chunks mapped for the spike go first,
//!    and each gives back the most memory per system call. A kept large top chunk serves
//!    both small and large blocks. The doubling then restarts from the largest top chunk
//!    left.
//! 2. **Free blocks inside top chunks still in use** are purged with
//!    `madvise(MADV_DONTNEED)`, largest first: the mapping stays, but the resident set
//!    falls at once (`MADV_FREE` would not lower it as `/proc/self/statm` reports it). A
//!    purged block reused later costs page faults, not system calls.
//!
//! `decay(Duration::ZERO)` returns free memory above `retain` at once;
//! `decay(Duration::MAX)` never returns it by itself (only [`Pool::trim`] does).

use std::time::{Duration, Instant};

/// Number of buckets the decay window is split into.
const BUCKETS: usize = 4;

/// The memory of recent demand: peaks of in-use bytes over the last `decay`.
#[derive(Debug)]
pub(crate) struct Demand {
    decay: Duration,
    /// Peak in-use bytes per bucket, oldest first; the last is the current bucket.
    peaks: [usize; BUCKETS],
    /// Peak in-use bytes since the buckets last moved; merged into the newest bucket when
    /// they move, so a peak is never attributed to a bucket older than its own.
    recent: usize,
    /// When the current bucket started; `None` until the policy first runs.
    bucket_start: Option<Instant>,
}

impl Demand {
    pub(crate) const fn new(decay: Duration) -> Self {
        Demand { decay, peaks: [0; BUCKETS], recent: 0, bucket_start: None }
    }

    /// True when the policy never returns memory by itself.
    pub(crate) fn never_decays(&self) -> bool {
        self.decay == Duration::MAX
    }

    /// Records the in-use bytes after a block was taken.
    #[inline]
    pub(crate) fn record(&mut self, in_use: usize) {
        self.recent = self.recent.max(in_use);
    }

    /// Moves the buckets to `now` and returns the peak in-use bytes over the last `decay`
    /// (at least `in_use`).
    pub(crate) fn peak(&mut self, now: Instant, in_use: usize) -> usize {
        let bucket_len = self.decay / BUCKETS as u32;
        if bucket_len.is_zero() {
            self.recent = in_use;
            return in_use;
        }
        let start = *self.bucket_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        let moved = (elapsed.as_nanos() / bucket_len.as_nanos()).min(BUCKETS as u128) as usize;
        if moved > 0 {
            self.peaks.rotate_left(moved);
            self.peaks[BUCKETS - moved..].fill(0);
            // Whole buckets passed; the new current one starts on a bucket boundary (or
            // now, after a long idle spell).
            self.bucket_start =
                Some(if moved == BUCKETS { now } else { start + bucket_len * moved as u32 });
        }
        let newest = &mut self.peaks[BUCKETS - 1];
        *newest = (*newest).max(self.recent).max(in_use);
        self.recent = in_use;
        self.peaks.iter().copied().max().unwrap_or(in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_peak_is_remembered_for_one_decay_then_forgotten() {
        let t0 = Instant::now();
        let mut d = Demand::new(400 * MS);
        d.record(1000);
        assert_eq!(d.peak(t0, 10), 1000);
        assert_eq!(d.peak(t0 + 150 * MS, 10), 1000);
        assert_eq!(d.peak(t0 + 399 * MS, 10), 1000);
        // The bucket holding the peak leaves the window after 4 buckets.
        assert_eq!(d.peak(t0 + 401 * MS, 10), 10);
    }

    #[test]
    fn steady_demand_stays_remembered() {
        let t0 = Instant::now();
        let mut d = Demand::new(400 * MS);
        for step in 0..100u32 {
            d.record(500);
            assert_eq!(d.peak(t0 + step * 30 * MS, 0), 500, "step {step}");
        }
    }

    #[test]
    fn a_peak_seen_before_a_long_pause_counts_as_recent() {
        let t0 = Instant::now();
        let mut d = Demand::new(400 * MS);
        assert_eq!(d.peak(t0, 0), 0);
        d.record(700); // taken at some time before the next check
        assert_eq!(d.peak(t0 + 10_000 * MS, 0), 700, "not dropped with the old buckets");
        assert_eq!(d.peak(t0 + 10_401 * MS, 0), 0);
    }

    #[test]
    fn zero_decay_keeps_only_the_present() {
        let mut d = Demand::new(Duration::ZERO);
        d.record(900);
        assert_eq!(d.peak(Instant::now(), 5), 5);
        assert!(!d.never_decays());
        assert!(Demand::new(Duration::MAX).never_decays());
    }
}
