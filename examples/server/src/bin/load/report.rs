//! The Markdown report (`server.md`): medians over the rounds, their spread, and the
//! calm throughput of every round.

use std::fmt::Write as _;

use crate::analysis::{MIB, RECOVERY_SLACK};
use crate::results::{Phase, Results};
use crate::rounds::{ContenderSummary, PhaseSummary, summarise};

/// "N round(s)".
pub fn n_rounds(n: usize) -> String {
    format!("{n} round{}", if n == 1 { "" } else { "s" })
}

/// The report of `results`, as Markdown.
pub fn markdown(results: &Results) -> String {
    let mut md = String::new();
    let r = results;
    let n = n_rounds(r.rounds as usize);
    let all = summarise(r);
    let _ =
        writeln!(md, "# perfloc-server under wrk: perfloc against glibc, jemalloc and mimalloc\n");
    let _ = writeln!(
        md,
        "`{}` · {} · {} · {} · {n}, each running every contender once, one after the other, \
         the order rotated by one contender per round · per contender: warm-up {} s, then calm \
         {} s ({} connections, bodies ≈ {:.1} KB), spike {} s ({} connections, bodies ≈ {:.0} \
         KB), calm again {} s ({} connections); `wrk -t1 --timeout 5s`; RSS every 100 ms: {}.\n",
        r.command,
        r.date,
        r.wrk_version,
        r.machine,
        r.warmup_secs,
        r.phase_secs,
        r.calm_connections,
        r.calm_body_bytes as f64 / 1000.0,
        r.phase_secs,
        r.spike_connections,
        r.spike_body_bytes as f64 / 1000.0,
        r.phase_secs,
        r.calm_connections,
        r.rss_source,
    );

    let _ = writeln!(md, "## Throughput and latency (median of {n})\n");
    md.push_str(
        "| phase | contender | requests/s | requests/s, min–max | p50 ms | p99 ms | p99.9 ms \
         | non-2xx/3xx, all rounds | socket errors, all rounds |\n\
         | --- | --- | --: | --: | --: | --: | --: | --: | --: |\n",
    );
    for phase in Phase::MEASURED {
        for c in &all {
            let Some(p) = c.phase(phase) else { continue };
            let fewer = match p.rounds {
                k if k == r.rounds as usize => String::new(),
                k => format!(" ({} only)", n_rounds(k)),
            };
            let _ = writeln!(
                md,
                "| {} | {}{fewer} | {:.0} | {:.0}–{:.0} | {} | {} | {} | {} | {} |",
                phase.name(),
                c.name,
                p.requests_per_sec,
                p.requests_per_sec_min,
                p.requests_per_sec_max,
                ms(p.p50_us.round() as u64),
                ms(p.p99_us.round() as u64),
                ms(p.p999_us.round() as u64),
                p.status,
                p.socket_errors,
            );
        }
    }
    md.push('\n');
    ratios(&mut md, &all, &n);
    per_round(&mut md, r, &all);

    md.push_str("## Resident memory (RSS)\n\n");
    let _ = writeln!(
        md,
        "Calm level: median RSS over the last half of the calm phase. Recovery: time from the \
         spike's end until RSS first falls to ≤ calm level + {} MiB (perfloc's default `retain` \
         of 4 MiB + 16 MiB), sampled every 100 ms. Each figure is the median of {n} (a round \
         that never recovers counts as infinitely long); the chart shows the first round.\n",
        RECOVERY_SLACK >> 20
    );
    md.push_str(
        "| contender | calm level MiB | spike peak MiB | recovery after the spike | \
         recovery, each round | end MiB |\n\
         | --- | --: | --: | --: | --: | --: |\n",
    );
    let never = format!("never (within the {} s of calm again)", r.phase_secs);
    for c in &all {
        let Some(s) = &c.rss else { continue };
        let recovery = match s.recovery_s {
            secs if secs.is_finite() => format!("{secs:.1} s"),
            _ => never.clone(),
        };
        let each: Vec<String> = (1..=r.rounds)
            .map(|round| match s.recovery_each.iter().find(|e| e.0 == round) {
                Some((_, Some(secs))) => format!("{secs:.1} s"),
                Some((_, None)) => "never".to_string(),
                None => "–".to_string(),
            })
            .collect();
        let _ = writeln!(
            md,
            "| {} | {:.1} | {:.1} | {} | {} | {:.1} |",
            c.name,
            s.calm_level / MIB,
            s.spike_peak / MIB,
            recovery,
            each.join(", "),
            s.end / MIB
        );
    }
    md.push('\n');
    rss_ratios(&mut md, &all);

    if let Some(perfloc) = all.iter().find(|c| c.name == "perfloc") {
        let calls = perfloc.max_pool_syscalls();
        if !calls.is_empty() {
            let _ = writeln!(
                md,
                "## perfloc's pool: system calls (from `GET /stats`, max over {n})\n\n\
                 Each count is the highest of any round (a row may mix rounds); the total is \
                 their sum, so it is at least every round's total.\n"
            );
            md.push_str(
                "| interval | mmap | munmap | madvise | total |\n| --- | --: | --: | --: | --: |\n",
            );
            for (label, [mmap, munmap, madvise]) in calls {
                let total = mmap + munmap + madvise;
                let _ = writeln!(md, "| {label} | {mmap} | {munmap} | {madvise} | {total} |");
            }
            md.push('\n');
        }
    }
    md
}

/// A figure of a phase that the ratios compare: its name and how to get it.
type Figure = (&'static str, fn(&PhaseSummary) -> f64);

/// The figures compared as perfloc ÷ other.
const RATIOS: [Figure; 2] = [("requests/s", |p| p.requests_per_sec), ("p99", |p| p.p99_us)];

/// perfloc's median calm requests/s and p99 over each other contender's.
fn ratios(md: &mut String, all: &[ContenderSummary], n: &str) {
    let Some(perfloc) = all.iter().find(|c| c.name == "perfloc") else { return };
    let others: Vec<&ContenderSummary> = all.iter().filter(|c| c.name != "perfloc").collect();
    if others.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "perfloc ÷ each other contender, from the medians of {n} (requests/s: above 1 is \
         better; p99: below 1 is better):\n"
    );
    md.push_str("| perfloc ÷ |");
    for other in &others {
        let _ = write!(md, " {} |", other.name);
    }
    md.push_str("\n| --- |");
    md.push_str(&" --: |".repeat(others.len()));
    md.push('\n');
    for phase in [Phase::Calm, Phase::CalmAgain] {
        for (what, figure) in RATIOS {
            let _ = write!(md, "| {} {what} |", phase.name());
            for other in &others {
                let ratio = perfloc
                    .phase(phase)
                    .zip(other.phase(phase))
                    .map(|(p, o)| figure(p) / figure(o));
                match ratio {
                    Some(ratio) if ratio.is_finite() => {
                        let _ = write!(md, " {ratio:.2} |");
                    }
                    _ => md.push_str(" – |"),
                }
            }
            md.push('\n');
        }
    }
    md.push('\n');
}

/// Calm requests/s of every contender in every round, the order each round ran in, and in
/// how many rounds perfloc's beat each other contender's.
fn per_round(md: &mut String, r: &Results, all: &[ContenderSummary]) {
    let calm = |c: &ContenderSummary, round: u32| {
        Some(c.run(round)?.phase(Phase::Calm)?.wrk.requests_per_sec())
    };
    md.push_str("### Calm requests/s per round\n\n");
    md.push_str("The highest of each round in bold.\n\n| contender |");
    for round in 1..=r.rounds {
        let _ = write!(md, " round {round} |");
    }
    md.push_str("\n| --- |");
    md.push_str(&" --: |".repeat(r.rounds as usize));
    md.push('\n');
    for c in all {
        let _ = write!(md, "| {} |", c.name);
        for round in 1..=r.rounds {
            let best = all.iter().filter_map(|o| calm(o, round)).fold(f64::NEG_INFINITY, f64::max);
            match calm(c, round) {
                Some(rps) if rps == best => {
                    let _ = write!(md, " **{rps:.0}** |");
                }
                Some(rps) => {
                    let _ = write!(md, " {rps:.0} |");
                }
                None => md.push_str(" – |"),
            }
        }
        md.push('\n');
    }
    md.push('\n');
    let orders: Vec<String> = (1..=r.rounds)
        .map(|round| {
            let names: Vec<&str> = r
                .runs
                .iter()
                .filter(|run| run.round == round)
                .map(|run| run.name.as_str())
                .collect();
            format!("round {round}: {}", names.join(" → "))
        })
        .collect();
    let _ = writeln!(md, "Run order: {}.\n", orders.join("; "));

    let Some(perfloc) = all.iter().find(|c| c.name == "perfloc") else { return };
    let beats: Vec<String> = all
        .iter()
        .filter(|c| c.name != "perfloc")
        .map(|other| {
            let both: Vec<(f64, f64)> = (1..=r.rounds)
                .filter_map(|round| calm(perfloc, round).zip(calm(other, round)))
                .collect();
            let won = both.iter().filter(|(p, o)| p > o).count();
            format!("{}'s in {won} of {}", other.name, n_rounds(both.len()))
        })
        .collect();
    if !beats.is_empty() {
        let _ = writeln!(md, "perfloc's calm requests/s beat {}.\n", beats.join(", "));
    }
}

/// Microseconds as milliseconds, with fewer decimals as they grow.
pub fn ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    match ms {
        ms if ms < 10.0 => format!("{ms:.2}"),
        ms if ms < 100.0 => format!("{ms:.1}"),
        ms => format!("{ms:.0}"),
    }
}

/// The UTC date and time of `secs` since the Unix epoch, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (hour, minute) = (secs % 86_400 / 3600, secs % 3600 / 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// perfloc's spike peak and calm level of RSS over each other contender's, from the
/// medians: the measure of issue 24 (spike peak ≤ 1.0 × glibc's).
fn rss_ratios(md: &mut String, all: &[ContenderSummary]) {
    let Some(perfloc) = all.iter().find(|c| c.name == "perfloc").and_then(|c| c.rss.as_ref())
    else {
        return;
    };
    let others: Vec<_> = all
        .iter()
        .filter(|c| c.name != "perfloc")
        .filter_map(|c| Some((c.name, c.rss.as_ref()?)))
        .collect();
    if others.is_empty() {
        return;
    }
    md.push_str(
        "perfloc's RSS ÷ each other contender's, from the medians (below 1 is less memory):\n\n",
    );
    let names: Vec<&str> = others.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(md, "| perfloc ÷ | {} |", names.join(" | "));
    let _ = writeln!(md, "| --- |{}", " --: |".repeat(names.len()));
    let row = |label: &str, f: &dyn Fn(&crate::rounds::RssMedians) -> f64| {
        let cells: Vec<String> =
            others.iter().map(|(_, s)| format!("{:.2}", f(perfloc) / f(s))).collect();
        format!("| {label} | {} |\n", cells.join(" | "))
    };
    md.push_str(&row("spike peak", &|s| s.spike_peak));
    md.push_str(&row("calm level", &|s| s.calm_level));
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::sample;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_779_000), "2026-11-27 11:30 UTC");
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms(812), "0.81");
        assert_eq!(ms(12_345), "12.3");
        assert_eq!(ms(412_000), "412");
    }

    #[test]
    fn the_report_has_every_table() {
        let md = markdown(&sample());
        assert!(md.contains("`bash examples/server/load.sh --phase-secs 3`"));
        assert!(md.contains("wrk 4.1.0"));
        assert!(md.contains("## Throughput and latency (median of 1 round)"), "{md}");
        // glibc: 30000 requests in 3 s; p50/p99/p99.9 of 250/1000/2000 µs.
        assert!(
            md.contains("| calm | glibc | 10000 | 10000–10000 | 0.25 | 1.00 | 2.00 | 0 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| spike | perfloc | 367 | 367–367 | 10.0 | 40.0 | 80.0 | 0 | 0 |"));
        assert!(md.contains("| calm requests/s | 1.10 |"), "{md}");
        assert!(md.contains("| calm p99 | 1.00 |"), "{md}");
        assert!(md.contains("| glibc | 10000 |\n| perfloc | **11000** |\n"), "{md}");
        assert!(md.contains("Run order: round 1: glibc → perfloc."), "{md}");
        assert!(md.contains("perfloc's calm requests/s beat glibc's in 1 of 1 round."), "{md}");
        assert!(
            md.contains(
                "| glibc | 20.0 | 300.0 | never (within the 3 s of calm again) | never | 150.0 |"
            ),
            "{md}"
        );
        assert!(md.contains("| perfloc | 12.0 | 200.0 | 0.5 s | 0.5 s | 12.0 |"), "{md}");
        // 200 / 300 and 12 / 20.
        assert!(md.contains("| perfloc ÷ | glibc |\n| --- | --: |\n| spike peak | 0.67 |"), "{md}");
        assert!(md.contains("| calm level | 0.60 |"), "{md}");
        assert!(md.contains("max over 1 round)"), "{md}");
        assert!(md.contains("| calm | 0 | 0 | 0 | 0 |"), "{md}");
        assert!(md.contains("| spike | 5 | 0 | 0 | 5 |"), "{md}");
    }

    #[test]
    fn the_report_over_rounds() {
        let md = markdown(&crate::rounds::tests::sample_rounds());
        assert!(md.contains("· 3 rounds, each running every contender once"), "{md}");
        assert!(md.contains("## Throughput and latency (median of 3 rounds)"), "{md}");
        // glibc calm: 10000, 20000, 10000; perfloc calm: 11000, 11000, 5500 (p99 4 ms in 3).
        assert!(
            md.contains("| calm | glibc | 10000 | 10000–20000 | 0.25 | 1.00 | 2.00 | 0 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| calm | perfloc | 11000 | 5500–11000 | 0.25 | 1.00 | 2.00 | 0 | 0 |"),
            "{md}"
        );
        // Ratios of the medians: 11000 / 10000.
        assert!(md.contains("from the medians of 3 rounds"), "{md}");
        assert!(md.contains("| calm requests/s | 1.10 |"), "{md}");
        assert!(md.contains("| calm p99 | 1.00 |"), "{md}");
        assert!(md.contains("| contender | round 1 | round 2 | round 3 |"), "{md}");
        assert!(md.contains("| glibc | 10000 | **20000** | **10000** |"), "{md}");
        assert!(md.contains("| perfloc | **11000** | 11000 | 5500 |"), "{md}");
        assert!(
            md.contains(
                "Run order: round 1: glibc → perfloc; round 2: perfloc → glibc; \
                 round 3: glibc → perfloc."
            ),
            "{md}"
        );
        assert!(md.contains("perfloc's calm requests/s beat glibc's in 1 of 3 rounds."), "{md}");
        // perfloc's recovery: 0.5 s, never, 0.5 s: median 0.5 s.
        assert!(md.contains("| perfloc | 12.0 | 200.0 | 0.5 s | 0.5 s, never, 0.5 s | 12.0 |"));
        assert!(md.contains("never (within the 3 s of calm again) | never, never, never |"));
        assert!(md.contains("(from `GET /stats`, max over 3 rounds)"), "{md}");
        assert!(md.contains("| calm | 0 | 2 | 0 | 2 |"), "{md}");

        // A round missing for one contender: a dash in its row, and fewer rounds named.
        let mut results = crate::rounds::tests::sample_rounds();
        results.runs.retain(|r| !(r.name == "glibc" && r.round == 2));
        let md = markdown(&results);
        assert!(md.contains("| glibc | 10000 | – | **10000** |"), "{md}");
        assert!(md.contains("| perfloc | 12.0 | 200.0 | 0.5 s | 0.5 s, never, 0.5 s | 12.0 |"));
        assert!(md.contains("never (within the 3 s of calm again) | never, –, never |"), "{md}");
        assert!(md.contains("| calm | glibc (2 rounds only) | 10000 | 10000–10000 |"), "{md}");
        assert!(md.contains("perfloc's calm requests/s beat glibc's in 1 of 2 rounds."), "{md}");
    }

    #[test]
    fn no_ratios_or_pool_table_without_perfloc() {
        let mut results = sample();
        results.runs.retain(|r| r.name != "perfloc");
        let md = markdown(&results);
        assert!(!md.contains("perfloc ÷"));
        assert!(!md.contains("pool: system calls"));
    }
}
