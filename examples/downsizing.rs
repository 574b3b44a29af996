//! Spike and calm: the global pool (default settings: retain 4 MiB, decay 1 s) under steady
//! small traffic, a 1 GiB spike, then calm again. Prints a timeline of mapped and resident
//! memory and system calls, and writes an SVG plot of it.
//!
//! ```sh
//! cargo run --release --example downsizing -- docs/downsizing.svg
//! cargo run --release --example downsizing -- --check docs/downsizing.md
//! ```
//!
//! It ends with a summary and the pool's report. `--check docs/downsizing.md` compares both
//! with the copies on that page (its summary and "The pool's report at the end") and exits
//! 1 when they drift beyond the tolerances stated there and in [`TOLERANCES`]; CI runs it.

use std::time::{Duration, Instant};

use perfloc::{Chunk, Pool};
use plotters::prelude::*;

const MIB: f64 = (1 << 20) as f64;

/// One row of the timeline.
struct Sample {
    seconds: f64,
    phase: &'static str,
    mapped_mib: f64,
    resident_mib: f64,
    mmap: u64,
    munmap: u64,
    madvise: u64,
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|f| f.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// A small request: a chunk with about 16 KiB in it.
fn request(pool: &Pool) {
    let chunk = pool.chunk();
    let items = chunk.alloc_slice_fill_with(4096, |i| i as u32);
    std::hint::black_box(items);
}

/// One spike request holding 4 MiB, written so it is resident.
fn big_request(pool: &'static Pool, n: usize) -> Chunk<'static> {
    let chunk = pool.chunk();
    let layout = std::alloc::Layout::from_size_align(4 << 20, 4096).expect("valid layout");
    // SAFETY: a fresh allocation of `layout.size()` bytes, written whole.
    unsafe { chunk.alloc_layout(layout).as_ptr().write_bytes(n as u8, layout.size()) };
    chunk
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (svg, check) = match args.as_slice() {
        [flag, page] if flag == "--check" => (None, Some(page.clone())),
        [path] if !path.starts_with('-') => (Some(path.clone()), None),
        [] => (None, None),
        _ => {
            return Err(
                "usage: downsizing [SVG_PATH] | downsizing --check docs/downsizing.md".into()
            );
        }
    };
    let pool = Pool::global();
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut sample = |phase: &'static str| {
        let s = pool.stats();
        samples.push(Sample {
            seconds: start.elapsed().as_secs_f64(),
            phase,
            mapped_mib: s.mapped_bytes as f64 / MIB,
            resident_mib: resident_bytes() as f64 / MIB,
            mmap: s.mmap_calls,
            munmap: s.munmap_calls,
            madvise: s.madvise_calls,
        });
    };
    let steady_for =
        |until: Duration, phase: &'static str, sample: &mut dyn FnMut(&'static str)| {
            while start.elapsed() < until {
                for _ in 0..200 {
                    request(pool);
                }
                sample(phase);
                std::thread::sleep(Duration::from_millis(20));
            }
        };

    steady_for(Duration::from_millis(500), "steady", &mut sample);
    // The spike: 256 requests of 4 MiB (1 GiB) arrive over about half a second.
    let mut held = Vec::new();
    for n in 0..256 {
        held.push(big_request(pool, n));
        request(pool);
        if n % 16 == 15 {
            sample("spike");
            std::thread::sleep(Duration::from_millis(30));
        }
    }
    let spike_end = start.elapsed() + Duration::from_millis(300);
    steady_for(spike_end, "spike", &mut sample);
    drop(held);
    let dropped_at = start.elapsed().as_secs_f64();
    steady_for(spike_end + Duration::from_secs(3), "calm", &mut sample);

    println!(
        "{:>6}  {:<6} {:>11} {:>13} {:>5} {:>7} {:>8}",
        "time", "phase", "mapped MiB", "resident MiB", "mmap", "munmap", "madvise"
    );
    let mut last = -1.0;
    for s in &samples {
        if s.seconds - last >= 0.1 {
            println!(
                "{:>5.2}s  {:<6} {:>11.1} {:>13.1} {:>5} {:>7} {:>8}",
                s.seconds, s.phase, s.mapped_mib, s.resident_mib, s.mmap, s.munmap, s.madvise
            );
            last = s.seconds;
        }
    }
    let summary = summary(&samples, dropped_at);
    let report = pool.stats().to_string();
    println!("\n{summary}\n{report}");

    if let Some(page) = check {
        let text = std::fs::read_to_string(&page)?;
        let problems = check_page(&text, &summary, &report);
        if problems.is_empty() {
            println!("\n{page}: the summary and the pool report match, within the tolerances");
            return Ok(());
        }
        eprintln!("\n{page} has drifted from what this example prints now:");
        for problem in &problems {
            eprintln!("  - {problem}");
        }
        eprintln!(
            "update the summary and the report in {page} (and the chart: \
             cargo run --release --example downsizing -- docs/downsizing.svg)"
        );
        std::process::exit(1);
    }

    match svg {
        Some(path) => {
            plot(&samples, &path)?;
            println!("\nplot written to {path}");
        }
        None => println!("\n(pass a path, e.g. docs/downsizing.svg, to write an SVG plot)"),
    }
    Ok(())
}

/// The tolerance of each summary line checked, by its label: (relative, absolute); a figure
/// may differ from the page's by the larger of the two. The system-call counts depend on
/// timing (how many blocks stayed free for `decay` during the spike), the resident set on
/// the binary, the times on the machine's load. "mapped at the end" and "purged at the
/// end" are not checked: which top chunk stays mapped (purged) depends on where a cached
/// first block sits when the policy runs, 4 MiB or 128 MiB from one run to the next,
/// while the resident set ends the same.
const TOLERANCES: [(&str, f64, f64); 5] = [
    ("peak resident", 0.05, 0.0),
    ("resident at the end", 0.0, 2.0),
    ("reached after", 0.0, 0.5),
    ("munmap calls", 0.0, 3.0),
    ("madvise calls", 0.0, 8.0),
];

/// The summary lines: label, figures.
fn summary(samples: &[Sample], dropped_at: f64) -> String {
    let last = samples.last().expect("samples were taken");
    let peak = samples.iter().map(|s| s.resident_mib).fold(0.0, f64::max);
    let back = samples
        .iter()
        .find(|s| s.seconds >= dropped_at && s.resident_mib <= last.resident_mib + 1.0)
        .map_or(f64::NAN, |s| s.seconds - dropped_at);
    let spike_madvise = samples.iter().rev().find(|s| s.phase == "spike").map_or(0, |s| s.madvise);
    let stats = Pool::global().stats();
    let purged = stats.purged_bytes as f64 / MIB;
    [
        format!("peak resident:          {peak:8.1} MiB"),
        format!("resident at the end:    {:8.1} MiB", last.resident_mib),
        format!("reached after:          {back:8.2} s, from the drop of the spike's chunks"),
        format!("munmap calls:           {:8}", last.munmap),
        format!("madvise calls:          {:8} ({spike_madvise} during the spike)", last.madvise),
        format!("mapped at the end:      {:8.1} MiB", last.mapped_mib),
        format!("purged at the end:      {purged:8.1} MiB"),
    ]
    .join("\n")
}

/// The numbers in a line, and the line with each number replaced by `#`.
fn figures(line: &str) -> (Vec<f64>, String) {
    let mut numbers = Vec::new();
    let mut shape = String::new();
    let mut current = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit()
            || (c == '.' && !current.is_empty())
            || (c == ',' && !current.is_empty())
        {
            current.push(c);
            continue;
        }
        if !current.is_empty() {
            numbers
                .push(current.replace(',', "").trim_end_matches('.').parse().unwrap_or(f64::NAN));
            shape.push('#');
            current.clear();
        }
        shape.push(c);
    }
    (numbers, shape.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A line's words: its shape (see [`figures`]) with byte units as one word, so that
/// `0 B` and `16.0 KiB` read the same.
fn words(line: &str) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    figures(line)
        .1
        .split_whitespace()
        .map(|w| if units.contains(&w) { "<unit>" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

fn within(now: f64, page: f64, relative: f64, absolute: f64) -> bool {
    (now - page).abs() <= (page.abs() * relative).max(absolute)
}

/// What differs between the page (`docs/downsizing.md`) and this run, beyond the tolerances.
fn check_page(page: &str, summary: &str, report: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // The summary: each line by its label, first figure against the tolerance.
    for line in summary.lines() {
        let label = line.split(':').next().unwrap_or_default();
        let Some(theirs) =
            page.lines().map(str::trim).find(|l| l.starts_with(&format!("{label}:")))
        else {
            problems.push(format!("no `{label}:` line in the summary block"));
            continue;
        };
        let Some(&(_, relative, absolute)) = TOLERANCES.iter().find(|t| t.0 == label) else {
            continue; // printed, not checked
        };
        let ((now, _), (was, _)) = (figures(line), figures(theirs));
        if !(now.first().zip(was.first()))
            .is_some_and(|(&now, &was)| within(now, was, relative, absolute))
        {
            problems.push(format!("`{theirs}`, but this run: `{}`", line.trim()));
        }
    }
    // The report: the same lines in the same words. Its figures move with timing (system
    // calls, lock counts, which top chunk stays mapped), so only the words are checked; the
    // summary above checks the figures that matter.
    let first = report.lines().next().unwrap_or_default();
    let start = first.split(':').next().unwrap_or_default();
    let theirs: Vec<&str> = page
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with(&format!("{start}:")))
        .take(report.lines().count())
        .collect();
    for (i, line) in report.lines().enumerate() {
        let Some(&was) = theirs.get(i) else {
            problems.push(format!("the page's pool report lacks the line `{}`", line.trim()));
            continue;
        };
        if words(line) != words(was) {
            problems.push(format!("report line `{was}` now reads `{}`", line.trim()));
        }
    }
    problems
}

/// Mapped and resident MiB over time, as an SVG line chart.
fn plot(samples: &[Sample], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let x_max = samples.last().map_or(1.0, |s| s.seconds);
    let y_max = samples.iter().map(|s| s.mapped_mib.max(s.resident_mib)).fold(0.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "perfloc downsizing: a 1 GiB spike, then calm (global pool, default settings)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("time (s)").y_desc("MiB").draw()?;
    let spike_start = samples.iter().find(|s| s.phase == "spike").map_or(0.0, |s| s.seconds);
    let calm_start = samples.iter().find(|s| s.phase == "calm").map_or(0.0, |s| s.seconds);
    for (x, label) in [(spike_start, "spike"), (calm_start, "spike ends")] {
        chart.draw_series(LineSeries::new([(x, 0.0), (x, y_max)], BLACK.mix(0.3)))?;
        chart.draw_series(std::iter::once(Text::new(
            label,
            (x + 0.03, y_max * 0.95),
            ("sans-serif", 14),
        )))?;
    }
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.seconds, s.mapped_mib)),
            BLUE.stroke_width(2),
        ))?
        .label("mapped")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            samples.iter().map(|s| (s.seconds, s.resident_mib)),
            RED.stroke_width(2),
        ))?
        .label("resident")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.9)).draw()?;
    root.present()?;
    Ok(())
}
