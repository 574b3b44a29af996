//! Rounds: the order the contenders run in each round, and the figures over rounds that the
//! report and the latency chart show (medians, the range of requests/s, the pool's system
//! calls at their highest).

use crate::analysis::{pool_syscalls, rss_summary};
use crate::results::{ContenderRun, Phase, Results};
use crate::server::CONTENDERS;

/// The contenders' indices in the order they run in round `round` (from 0) of `k`: round `r`
/// starts at contender `r mod k` and goes on in the fixed order, wrapping around, so that no
/// contender always runs first or last.
pub fn order(k: usize, round: usize) -> Vec<usize> {
    (0..k).map(|i| (round + i) % k).collect()
}

/// The median of `values`: the middle one, or the mean of the two middle ones of an even
/// count (infinite if either is); `None` for no values.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// One contender's figures of one phase over the rounds it ran in.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSummary {
    /// The phase.
    pub phase: Phase,
    /// How many rounds ran it.
    pub rounds: usize,
    /// Median requests/s.
    pub requests_per_sec: f64,
    /// Lowest requests/s of a round.
    pub requests_per_sec_min: f64,
    /// Highest requests/s of a round.
    pub requests_per_sec_max: f64,
    /// Median p50, µs.
    pub p50_us: f64,
    /// Median p99, µs.
    pub p99_us: f64,
    /// Median p99.9, µs.
    pub p999_us: f64,
    /// Responses of 400 or above, over all rounds.
    pub status: u64,
    /// Socket errors, over all rounds.
    pub socket_errors: u64,
}

/// One contender's RSS figures over the rounds: medians, in bytes and seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RssMedians {
    /// Median calm level.
    pub calm_level: f64,
    /// Median spike peak.
    pub spike_peak: f64,
    /// Median recovery time; a round that never recovered counts as infinite.
    pub recovery_s: f64,
    /// Each round's recovery, in round order: (round, seconds or `None` for never).
    pub recovery_each: Vec<(u32, Option<f64>)>,
    /// Median last sample.
    pub end: f64,
}

/// One contender over every round.
#[derive(Debug, Clone, PartialEq)]
pub struct ContenderSummary<'a> {
    /// The contender's name.
    pub name: &'a str,
    /// Its runs, in round order.
    pub runs: Vec<&'a ContenderRun>,
    /// The measured phases that ran in at least one round.
    pub phases: Vec<PhaseSummary>,
    /// Its RSS figures, if any round had them.
    pub rss: Option<RssMedians>,
}

impl<'a> ContenderSummary<'a> {
    /// The summary of `phase`, if it ran.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseSummary> {
        self.phases.iter().find(|p| p.phase == phase)
    }

    /// Its run in round `round`, if that round ran.
    pub fn run(&self, round: u32) -> Option<&'a ContenderRun> {
        self.runs.iter().copied().find(|r| r.round == round)
    }

    /// The pool's (mmap, munmap, madvise) calls in each interval, each the highest of any
    /// round (so a row may mix rounds); the intervals that some round measured.
    pub fn max_pool_syscalls(&self) -> Vec<(&'static str, [u64; 3])> {
        let mut max: Vec<(&'static str, [u64; 3])> = Vec::new();
        for run in &self.runs {
            for (label, calls) in pool_syscalls(run) {
                match max.iter_mut().find(|m| m.0 == label) {
                    Some(m) => {
                        for (highest, n) in m.1.iter_mut().zip(calls) {
                            *highest = (*highest).max(n);
                        }
                    }
                    None => max.push((label, calls)),
                }
            }
        }
        // In the order of the intervals, not of the rounds that measured them.
        let position = |label: &str| {
            crate::analysis::SYSCALL_INTERVALS.iter().position(|i| i.0 == label).unwrap_or(0)
        };
        max.sort_by_key(|m| position(m.0));
        max
    }
}

/// Every contender over the rounds, in the fixed order of [`CONTENDERS`] (unknown names
/// after them, as they first appear).
pub fn summarise(results: &Results) -> Vec<ContenderSummary<'_>> {
    let mut names: Vec<&str> = Vec::new();
    for run in &results.runs {
        if !names.contains(&run.name.as_str()) {
            names.push(&run.name);
        }
    }
    let rank = |name: &str| CONTENDERS.iter().position(|c| c.name == name).unwrap_or(usize::MAX);
    names.sort_by_key(|name| rank(name)); // stable: unknown names keep their order
    names
        .into_iter()
        .map(|name| {
            let mut runs: Vec<&ContenderRun> =
                results.runs.iter().filter(|r| r.name == name).collect();
            runs.sort_by_key(|r| r.round);
            let phases = Phase::MEASURED.into_iter().filter_map(|p| phase(&runs, p)).collect();
            let rss = rss_medians(&runs);
            ContenderSummary { name, runs, phases, rss }
        })
        .collect()
}

/// `phase` over `runs`; `None` if no round ran it.
fn phase(runs: &[&ContenderRun], phase: Phase) -> Option<PhaseSummary> {
    let wrk: Vec<_> = runs.iter().filter_map(|r| r.phase(phase)).map(|p| &p.wrk).collect();
    let rps: Vec<f64> = wrk.iter().map(|w| w.requests_per_sec()).collect();
    let of = |f: fn(&crate::wrk::WrkResult) -> u64| median(wrk.iter().map(|w| f(w) as f64));
    Some(PhaseSummary {
        phase,
        rounds: wrk.len(),
        requests_per_sec: median(rps.iter().copied())?,
        requests_per_sec_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
        requests_per_sec_max: rps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        p50_us: of(|w| w.p50_us)?,
        p99_us: of(|w| w.p99_us)?,
        p999_us: of(|w| w.p999_us)?,
        status: wrk.iter().map(|w| w.status).sum(),
        socket_errors: wrk.iter().map(|w| w.socket_errors()).sum(),
    })
}

/// The RSS medians of `runs`; `None` if no round had RSS figures.
fn rss_medians(runs: &[&ContenderRun]) -> Option<RssMedians> {
    let each: Vec<_> = runs.iter().filter_map(|r| Some((r.round, rss_summary(r)?))).collect();
    let recovery_each: Vec<(u32, Option<f64>)> =
        each.iter().map(|(round, s)| (*round, s.recovery_s)).collect();
    let each: Vec<_> = each.into_iter().map(|(_, s)| s).collect();
    Some(RssMedians {
        calm_level: median(each.iter().map(|s| s.calm_level as f64))?,
        spike_peak: median(each.iter().map(|s| s.spike_peak as f64))?,
        recovery_s: median(recovery_each.iter().map(|r| r.1.unwrap_or(f64::INFINITY)))?,
        end: median(each.iter().map(|s| s.end as f64))?,
        recovery_each,
    })
}

/// Each contender's run of its first round (the RSS chart's lines), in the summary's order.
pub fn first_round(results: &Results) -> Vec<&ContenderRun> {
    summarise(results).into_iter().filter_map(|c| c.runs.first().copied()).collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::results::tests::sample;

    /// The sample over three rounds, run in rotated order: round 2 doubles glibc's calm
    /// requests and makes perfloc never recover; round 3 halves perfloc's calm requests and
    /// gives its pool two `munmap`s in the calm phase.
    pub fn sample_rounds() -> Results {
        let one = sample();
        let mut results = Results { rounds: 3, runs: Vec::new(), ..one.clone() };
        for round in 1..=3u32 {
            for i in order(one.runs.len(), round as usize - 1) {
                let mut run = one.runs[i].clone();
                run.round = round;
                let calm = run.phases.iter_mut().find(|p| p.phase == Phase::Calm).unwrap();
                match (run.name.as_str(), round) {
                    ("glibc", 2) => calm.wrk.requests *= 2,
                    ("perfloc", 3) => {
                        calm.wrk.requests /= 2;
                        calm.wrk.p99_us = 4000;
                        for s in run.stats.iter_mut().skip(1) {
                            s.stats.pool[8] += 2; // munmap
                        }
                    }
                    ("perfloc", 2) => {
                        for s in run.rss.iter_mut().filter(|s| s.0 >= 6.0) {
                            s.1 = 500 << 20;
                        }
                    }
                    _ => {}
                }
                results.runs.push(run);
            }
        }
        results
    }

    #[test]
    fn rotation() {
        assert_eq!(order(4, 0), [0, 1, 2, 3]);
        assert_eq!(order(4, 1), [1, 2, 3, 0]);
        assert_eq!(order(4, 2), [2, 3, 0, 1]);
        assert_eq!(order(4, 3), [3, 0, 1, 2]);
        assert_eq!(order(4, 4), [0, 1, 2, 3]);
        assert_eq!(order(1, 5), [0]);
        assert_eq!(order(0, 2), Vec::<usize>::new());
        // Over k rounds every contender runs in every position once.
        for k in 1..=5 {
            for position in 0..k {
                let mut at: Vec<usize> = (0..k).map(|r| order(k, r)[position]).collect();
                at.sort_unstable();
                assert_eq!(at, (0..k).collect::<Vec<_>>(), "k {k}, position {position}");
            }
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median([]), None);
        assert_eq!(median([5.0]), Some(5.0));
        assert_eq!(median([9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median([9.0, 1.0, 5.0, 7.0]), Some(6.0));
        assert_eq!(median([1.0, f64::INFINITY, 2.0]), Some(2.0));
        assert_eq!(median([1.0, f64::INFINITY, f64::INFINITY]), Some(f64::INFINITY));
        assert_eq!(median([1.0, f64::INFINITY]), Some(f64::INFINITY));
    }

    #[test]
    fn the_sample_rounds_run_rotated() {
        let results = sample_rounds();
        let order: Vec<(u32, &str)> =
            results.runs.iter().map(|r| (r.round, r.name.as_str())).collect();
        assert_eq!(
            order,
            [
                (1, "glibc"),
                (1, "perfloc"),
                (2, "perfloc"),
                (2, "glibc"),
                (3, "glibc"),
                (3, "perfloc")
            ]
        );
        let text = serde_json::to_string(&results.to_json()).unwrap();
        let back = Results::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn medians_and_ranges_over_rounds() {
        let results = sample_rounds();
        let all = summarise(&results);
        let names: Vec<&str> = all.iter().map(|c| c.name).collect();
        assert_eq!(names, ["glibc", "perfloc"]);
        let rounds: Vec<u32> = all[1].runs.iter().map(|r| r.round).collect();
        assert_eq!(rounds, [1, 2, 3], "in round order, not run order");

        // glibc calm: 10000, 20000, 10000 requests/s.
        let calm = all[0].phase(Phase::Calm).unwrap();
        assert_eq!(calm.rounds, 3);
        assert_eq!(calm.requests_per_sec, 10_000.0);
        assert_eq!((calm.requests_per_sec_min, calm.requests_per_sec_max), (10_000.0, 20_000.0));
        assert_eq!((calm.p50_us, calm.p99_us, calm.p999_us), (250.0, 1000.0, 2000.0));
        // perfloc calm: 11000, 11000, 5500 requests/s; p99 1000, 1000, 4000 µs.
        let calm = all[1].phase(Phase::Calm).unwrap();
        assert_eq!(calm.requests_per_sec, 11_000.0);
        assert_eq!((calm.requests_per_sec_min, calm.requests_per_sec_max), (5_500.0, 11_000.0));
        assert_eq!(calm.p99_us, 1000.0);
        assert_eq!((calm.status, calm.socket_errors), (0, 0));

        // Errors add up over the rounds rather than vanish in a median.
        let mut broken = sample_rounds();
        broken.runs[3].phases[2].wrk.status = 3; // round 2, glibc, spike
        broken.runs[4].phases[2].wrk.timeout = 1; // round 3, glibc, spike
        let spike = summarise(&broken)[0].phase(Phase::Spike).cloned().unwrap();
        assert_eq!((spike.status, spike.socket_errors), (3, 1));
    }

    #[test]
    fn a_missing_round_leaves_the_others() {
        let mut results = sample_rounds();
        results.runs.retain(|r| !(r.name == "glibc" && r.round == 2));
        let all = summarise(&results);
        let calm = all[0].phase(Phase::Calm).unwrap();
        assert_eq!((calm.rounds, calm.requests_per_sec), (2, 10_000.0));
        assert!(all[0].run(2).is_none() && all[0].run(3).is_some());
    }

    #[test]
    fn rss_medians_count_never_as_infinite() {
        let mib = (1u64 << 20) as f64;
        let results = sample_rounds();
        let all = summarise(&results);
        // perfloc: recovers in 0.5 s in rounds 1 and 3, never in round 2: median 0.5 s.
        let perfloc = all[1].rss.as_ref().unwrap();
        assert_eq!(perfloc.recovery_each.len(), 3);
        assert_eq!(perfloc.recovery_each[1], (2, None));
        assert!((perfloc.recovery_s - 0.5).abs() < 0.01, "{}", perfloc.recovery_s);
        assert_eq!((perfloc.calm_level / mib).floor(), 12.0);
        assert_eq!((perfloc.end / mib).floor(), 12.0);
        // glibc never recovers in any round.
        let glibc = all[0].rss.as_ref().unwrap();
        assert_eq!(glibc.recovery_s, f64::INFINITY);
        assert_eq!((glibc.spike_peak / mib).floor(), 300.0);
        // Two rounds of which one never recovers: the median is never.
        let mut two = sample_rounds();
        two.runs.retain(|r| r.round != 3);
        assert_eq!(summarise(&two)[1].rss.as_ref().unwrap().recovery_s, f64::INFINITY);
    }

    #[test]
    fn pool_syscalls_at_their_highest() {
        let results = sample_rounds();
        let all = summarise(&results);
        let calls = all[1].max_pool_syscalls();
        let labels: Vec<&str> = calls.iter().map(|c| c.0).collect();
        assert_eq!(labels, ["calm", "spike", "calm again, first 2 s", "calm again, after 2 s"]);
        // Round 3 adds two munmaps between calm start and calm end, none after.
        assert_eq!(calls[0], ("calm", [0, 2, 0]));
        assert_eq!(calls[1], ("spike", [5, 0, 0]));
        assert_eq!(calls[3], ("calm again, after 2 s", [0, 0, 0]));
        // Each call's highest count may come from a different round.
        let mut results = sample_rounds();
        let last = results.runs.iter_mut().find(|r| r.name == "perfloc" && r.round == 1).unwrap();
        for s in last.stats.iter_mut().skip(2) {
            s.stats.pool[9] += 7; // madvise in the spike, round 1
        }
        let all = summarise(&results);
        assert_eq!(all[1].max_pool_syscalls()[1], ("spike", [5, 0, 7]));
    }

    #[test]
    fn the_chart_takes_each_contenders_first_round() {
        let mut results = sample_rounds();
        results.runs.retain(|r| !(r.name == "perfloc" && r.round == 1));
        let first: Vec<(&str, u32)> =
            first_round(&results).iter().map(|r| (r.name.as_str(), r.round)).collect();
        assert_eq!(first, [("glibc", 1), ("perfloc", 2)]);
    }
}
