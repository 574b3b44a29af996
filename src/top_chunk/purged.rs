//! Which free bytes of a top chunk have been purged (given back with `madvise`).
//!
//! Purged ranges are disjoint offset ranges that always lie in free memory: a range is
//! recorded when a free block is purged, and carved out again when a block over it is
//! taken into use. Safe code only: offsets, no memory.

use std::collections::BTreeMap;

/// Disjoint purged ranges, `start → end`, and their total length.
#[derive(Debug, Default)]
pub(crate) struct Purged {
    ranges: BTreeMap<usize, usize>,
    bytes: usize,
}

impl Purged {
    /// Total purged bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The ranges overlapping `start..end`, as `(range start, range end)`.
    fn overlapping(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let before = self.ranges.range(..start).next_back().filter(|&(_, &e)| e > start);
        before.into_iter().chain(self.ranges.range(start..end)).map(|(&s, &e)| (s, e)).collect()
    }

    /// Forgets the purged bytes within `start..end`, which are being taken into use.
    pub(crate) fn take(&mut self, start: usize, end: usize) {
        for (s, e) in self.overlapping(start, end) {
            self.ranges.remove(&s);
            self.bytes -= e - s;
            if s < start {
                self.ranges.insert(s, start);
                self.bytes += start - s;
            }
            if e > end {
                self.ranges.insert(end, e);
                self.bytes += e - end;
            }
        }
    }

    /// Records `start..end` as purged, merged with purged ranges it touches, so that a
    /// block purged piece by piece stays one range.
    pub(crate) fn insert(&mut self, mut start: usize, mut end: usize) {
        if start >= end {
            return;
        }
        self.take(start, end);
        if let Some((&s, &e)) = self.ranges.range(..start).next_back().filter(|&(_, &e)| e == start)
        {
            self.ranges.remove(&s);
            self.bytes -= e - s;
            start = s;
        }
        if let Some(e) = self.ranges.remove(&end) {
            self.bytes -= e - end;
            end = e;
        }
        self.ranges.insert(start, end);
        self.bytes += end - start;
    }

    /// The parts of `start..end` not purged, highest first.
    pub(crate) fn gaps(&self, start: usize, end: usize) -> Vec<(usize, usize)> {
        let mut gaps = Vec::new();
        if start >= end {
            return gaps;
        }
        let mut hi = end;
        for (s, e) in self.overlapping(start, end).into_iter().rev() {
            if e < hi {
                gaps.push((e, hi));
            }
            hi = hi.min(s);
        }
        if start < hi {
            gaps.push((start, hi));
        }
        gaps
    }

    /// Verifies that the ranges are disjoint, non-empty and sum to `bytes`.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut prev_end = 0;
        let mut sum = 0;
        for (&s, &e) in &self.ranges {
            if s >= e || s < prev_end {
                return Err(format!("purged range {s:#x}..{e:#x} empty or overlapping"));
            }
            prev_end = e;
            sum += e - s;
        }
        if sum != self.bytes {
            return Err(format!("purged bytes {} but ranges sum to {sum}", self.bytes));
        }
        Ok(())
    }

    /// The ranges, in order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_take_and_gaps_keep_ranges_disjoint() {
        let mut p = Purged::default();
        p.insert(0x1000, 0x5000);
        p.insert(0x8000, 0x9000);
        assert_eq!(p.bytes(), 0x5000);
        p.take(0x2000, 0x3000); // a block in the middle taken into use
        assert_eq!(
            p.ranges().collect::<Vec<_>>(),
            [(0x1000, 0x2000), (0x3000, 0x5000), (0x8000, 0x9000)]
        );
        assert_eq!(p.bytes(), 0x4000);
        assert_eq!(
            p.gaps(0x0, 0x9800),
            [(0x9000, 0x9800), (0x5000, 0x8000), (0x2000, 0x3000), (0x0, 0x1000)]
        );
        assert_eq!(p.gaps(0x1000, 0x2000), []);
        assert_eq!(p.gaps(0x1800, 0x3800), [(0x2000, 0x3000)]);
        p.insert(0x0, 0x6000); // a larger free block purged again
        assert_eq!(p.ranges().collect::<Vec<_>>(), [(0x0, 0x6000), (0x8000, 0x9000)]);
        assert_eq!(p.bytes(), 0x7000);
        p.insert(0x6000, 0x7000); // touches the range below: merged
        p.insert(0x7000, 0x8000); // touches both: one range
        assert_eq!(p.ranges().collect::<Vec<_>>(), [(0x0, 0x9000)]);
        assert_eq!(p.bytes(), 0x9000);
        p.take(0x0, 0x10000);
        assert_eq!(p.bytes(), 0);
        p.check().unwrap();
    }
}
