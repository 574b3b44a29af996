//! The figures derived from the raw results: RSS levels, recovery time, pool system calls.

use crate::results::{ContenderRun, Phase, StatsPoint};
use crate::stats::{PoolStats, syscalls_between};

/// Bytes in a MiB.
pub const MIB: f64 = (1u64 << 20) as f64;

/// How far above its calm level RSS may stay and count as recovered: perfloc's default
/// `retain` (4 MiB) plus the 16 MiB, the same for every contender.
pub const RECOVERY_SLACK: u64 = 20 << 20;

/// What one contender's RSS did.
#[derive(Debug, Clone, PartialEq)]
pub struct RssSummary {
    /// Median RSS over the last half of the calm phase, bytes.
    pub calm_level: u64,
    /// Highest RSS during the spike, bytes.
    pub spike_peak: u64,
    /// Seconds from the spike's end until RSS first fell to `calm_level + RECOVERY_SLACK`,
    /// or `None` if it did not before calm again ended.
    pub recovery_s: Option<f64>,
    /// The last RSS sample, bytes.
    pub end: u64,
}

/// The RSS figures of `run`; `None` when its calm or spike phase did not run or nothing was
/// sampled in them.
pub fn rss_summary(run: &ContenderRun) -> Option<RssSummary> {
    let calm = run.phase(Phase::Calm)?;
    let spike = run.phase(Phase::Spike)?;
    let half = calm.start_s + (calm.end_s - calm.start_s) / 2.0;
    let calm_level =
        median(run.rss.iter().filter(|s| (half..=calm.end_s).contains(&s.0)).map(|s| s.1))?;
    let spike_peak = run
        .rss
        .iter()
        .filter(|s| (spike.start_s..=spike.end_s).contains(&s.0))
        .map(|s| s.1)
        .max()?;
    let until = run.phase(Phase::CalmAgain).map_or(f64::INFINITY, |p| p.end_s);
    let recovery_s = run
        .rss
        .iter()
        .find(|&&(t, rss)| t >= spike.end_s && t <= until && rss <= calm_level + RECOVERY_SLACK)
        .map(|&(t, _)| t - spike.end_s);
    let end = run.rss.last()?.1;
    Some(RssSummary { calm_level, spike_peak, recovery_s, end })
}

/// The median (the upper one of an even count); `None` for no values.
pub fn median(values: impl Iterator<Item = u64>) -> Option<u64> {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// The intervals between `/stats` readings that the pool system call table shows.
pub const SYSCALL_INTERVALS: [(&str, StatsPoint, StatsPoint); 4] = [
    ("calm", StatsPoint::CalmStart, StatsPoint::CalmEnd),
    ("spike", StatsPoint::CalmEnd, StatsPoint::SpikeEnd),
    ("calm again, first 2 s", StatsPoint::SpikeEnd, StatsPoint::SpikeEndPlus2),
    ("calm again, after 2 s", StatsPoint::SpikeEndPlus2, StatsPoint::CalmAgainEnd),
];

/// The pool's (mmap, munmap, madvise) calls in each of [`SYSCALL_INTERVALS`], where both
/// readings were taken.
pub fn pool_syscalls(run: &ContenderRun) -> Vec<(&'static str, [u64; 3])> {
    SYSCALL_INTERVALS
        .iter()
        .filter_map(|&(label, from, to)| {
            let (from, to): (&PoolStats, &PoolStats) = (run.stats_at(from)?, run.stats_at(to)?);
            Some((label, syscalls_between(from, to)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::sample;

    #[test]
    fn median_of_few() {
        assert_eq!(median([].into_iter()), None);
        assert_eq!(median([5].into_iter()), Some(5));
        assert_eq!(median([9, 1, 5].into_iter()), Some(5));
        assert_eq!(median([9, 1, 5, 7].into_iter()), Some(7));
    }

    #[test]
    fn rss_figures_of_the_sample() {
        let results = sample();
        let mib = 1u64 << 20;
        // glibc: calm at 20 MiB, 300 MiB in the spike, 150 MiB until 9 s after: never back.
        let glibc = rss_summary(&results.runs[0]).unwrap();
        assert_eq!(glibc.calm_level / mib, 20);
        assert_eq!(glibc.spike_peak / mib, 300);
        assert_eq!(glibc.recovery_s, None);
        assert_eq!(glibc.end / mib, 150);
        // perfloc: calm at 12 MiB, 200 MiB in the spike, 100 MiB for 0.5 s, then 12 MiB.
        let perfloc = rss_summary(&results.runs[1]).unwrap();
        assert_eq!(perfloc.calm_level / mib, 12);
        assert_eq!(perfloc.spike_peak / mib, 200);
        let recovery = perfloc.recovery_s.unwrap();
        assert!((recovery - 0.5).abs() < 0.01, "{recovery}");
        assert_eq!(perfloc.end / mib, 12);
    }

    #[test]
    fn recovery_threshold_is_calm_plus_20_mib() {
        let mut run = sample().runs[1].clone();
        let mib = 1u64 << 20;
        // Just above the threshold after the spike: never recovers; at it: recovers at once.
        for sample in run.rss.iter_mut().filter(|s| s.0 >= 6.0) {
            sample.1 = 12 * mib + RECOVERY_SLACK + 4096 * 3;
        }
        assert_eq!(rss_summary(&run).unwrap().recovery_s, None);
        for sample in run.rss.iter_mut().filter(|s| s.0 >= 6.0) {
            sample.1 = 12 * mib + RECOVERY_SLACK;
        }
        assert!(rss_summary(&run).unwrap().recovery_s.unwrap() < 0.11);
    }

    #[test]
    fn syscalls_per_interval() {
        let run = &sample().runs[1];
        let calls = pool_syscalls(run);
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[0], ("calm", [0, 0, 0]));
        assert_eq!(calls[1], ("spike", [5, 0, 0]));
        let mut partial = run.clone();
        partial.stats.pop();
        assert_eq!(pool_syscalls(&partial).len(), 3);
    }
}
