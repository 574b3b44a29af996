//! Turns criterion's results (`$CARGO_TARGET_DIR/criterion`, else `target/criterion`,
//! after `cargo bench`) into the benchmark table of `docs/benchmarks.md` (Markdown, on
//! standard output) and, if a path is given, a bar chart of the ratios there. Exits 1 when
//! a comparison has no results.
//!
//! ```sh
//! cargo bench && cargo run --release --example bench_report -- docs/benchmarks.svg
//! ```
//!
//! A ratio is perfloc's median time divided by the contender's, from the same run: below
//! 1 perfloc is faster.

use std::fs;
use std::path::Path;

use plotters::prelude::*;

/// One comparison of the report: a benchmark group, a contender, and the target ratio.
struct Row {
    group: &'static str,
    perfloc: &'static str,
    contender: &'static str,
    /// The issue's target for perfloc's time over the contender's (`None`: speed-up at least).
    target: Target,
}

enum Target {
    AtMost(f64),
    FasterBy(f64),
    /// Measured for comparison, with no target.
    None,
}

const ROWS: &[Row] = &[
    Row {
        group: "alloc_u64",
        perfloc: "perfloc",
        contender: "bumpalo",
        target: Target::AtMost(0.95),
    },
    Row {
        group: "alloc_u64",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "vec_push",
        perfloc: "perfloc",
        contender: "bumpalo",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "vec_push",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "vec_reserve_exact_1",
        perfloc: "perfloc",
        contender: "bumpalo",
        target: Target::FasterBy(20.0),
    },
    Row {
        group: "vec_reserve_exact_1",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "hashmap_insert",
        perfloc: "perfloc",
        contender: "bumpalo",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "hashmap_insert",
        perfloc: "perfloc",
        contender: "global",
        target: Target::AtMost(0.8),
    },
    Row {
        group: "hashmap_insert",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(0.6),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc",
        contender: "bumpalo-reset",
        target: Target::AtMost(1.05),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.05),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc",
        contender: "global",
        target: Target::AtMost(0.8),
    },
    Row {
        group: "request_cycle_large",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(0.5),
    },
    Row {
        group: "request_cycle_large",
        perfloc: "perfloc",
        contender: "bumpalo-reset",
        target: Target::AtMost(1.05),
    },
    Row {
        group: "request_cycle_large",
        perfloc: "perfloc",
        contender: "global",
        target: Target::AtMost(0.8),
    },
    Row {
        group: "request_cycle_large",
        perfloc: "perfloc",
        contender: "bump-scope",
        target: Target::AtMost(1.0),
    },
    // A whole scope for three tiny allocations, and a vector grown to 2 MiB.
    Row {
        group: "scope_cycle",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(0.5),
    },
    Row {
        group: "scope_cycle",
        perfloc: "perfloc",
        contender: "global",
        target: Target::AtMost(0.6),
    },
    Row {
        group: "scope_cycle",
        perfloc: "perfloc",
        contender: "bump-scope-new",
        target: Target::AtMost(0.7),
    },
    Row {
        group: "large_growth",
        perfloc: "perfloc",
        contender: "global",
        target: Target::AtMost(0.9),
    },
    Row {
        group: "large_growth",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(0.4),
    },
    // Text (issue "strings"): within 10% of bumpalo's String and format!(in ..).
    Row {
        group: "format_in",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(1.1),
    },
    Row {
        group: "format_in",
        perfloc: "perfloc-reset",
        contender: "bumpalo-reset",
        target: Target::AtMost(1.1),
    },
    Row {
        group: "string_push_str",
        perfloc: "perfloc",
        contender: "bumpalo-new",
        target: Target::AtMost(1.1),
    },
    Row {
        group: "string_push_str",
        perfloc: "perfloc-reset",
        contender: "bumpalo-reset",
        target: Target::AtMost(1.1),
    },
    // A nested scope in a long-lived chunk (`scoped`) against a child chunk and bump-scope.
    Row {
        group: "nested_scope",
        perfloc: "perfloc-scoped",
        contender: "perfloc-child",
        target: Target::AtMost(0.25),
    },
    Row {
        group: "nested_scope",
        perfloc: "perfloc-scoped",
        contender: "bump-scope-scoped",
        target: Target::None,
    },
    // SyncChunk (issue "a Sync chunk"): against Chunk, a new Bump and blink-alloc.
    Row {
        group: "alloc_u64",
        perfloc: "perfloc-sync",
        contender: "perfloc",
        target: Target::AtMost(2.0),
    },
    Row {
        group: "alloc_u64",
        perfloc: "perfloc-sync",
        contender: "blink-sync",
        target: Target::None,
    },
    Row {
        group: "alloc_u64_two_threads",
        perfloc: "perfloc-sync-shared",
        contender: "blink-sync-shared",
        target: Target::None,
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc-sync",
        contender: "perfloc",
        target: Target::AtMost(1.25),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc-sync",
        contender: "bumpalo-new",
        target: Target::AtMost(1.0),
    },
    Row {
        group: "request_cycle_small",
        perfloc: "perfloc-sync",
        contender: "blink-sync-new",
        target: Target::None,
    },
];

/// The median estimate, in nanoseconds, of one benchmark.
fn median_ns(group: &str, name: &str) -> Option<f64> {
    let base = criterion_dir().join(group);
    let file =
        [base.join(name).join("new/estimates.json"), base.join(name).join("_/new/estimates.json")]
            .into_iter()
            .find(|p| p.exists())?;
    let json = fs::read_to_string(file).ok()?;
    let median = &json[json.find("\"median\"")?..];
    let point = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    point[..point.find([',', '}'])?].trim().parse().ok()
}

fn time(ns: f64) -> String {
    match ns {
        ns if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
        ns if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
        ns => format!("{ns:.0} ns"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The chart is written only where asked: the tracked docs/benchmarks.svg changes only
    // when one means it to.
    let svg = std::env::args().nth(1);
    let mut missing = 0;
    println!("| case | perfloc | contender | contender's time | ratio | target | met |");
    println!("|---|---|---|---|---|---|---|");
    let mut bars = Vec::new();
    for row in ROWS {
        let (Some(ours), Some(theirs)) =
            (median_ns(row.group, row.perfloc), median_ns(row.group, row.contender))
        else {
            println!("| {} | — | {} | — | — | — | not measured |", row.group, row.contender);
            missing += 1;
            continue;
        };
        let ratio = ours / theirs;
        let (target, met) = match row.target {
            Target::AtMost(t) => (format!("≤ {t}"), ratio <= t),
            Target::FasterBy(t) => (format!("≥ {t}× faster"), theirs / ours >= t),
            Target::None => ("—".to_owned(), true),
        };
        let shown = if ratio < 0.1 {
            format!("{ratio:.4} ({:.0}× faster)", theirs / ours)
        } else {
            format!("{ratio:.2}")
        };
        let case = match row.perfloc {
            "perfloc" => row.group.to_owned(),
            kind => format!("{} ({kind})", row.group),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            case,
            time(ours),
            row.contender,
            time(theirs),
            shown,
            target,
            match (&row.target, met) {
                (Target::None, _) => "—",
                (_, true) => "yes",
                (_, false) => "**no**",
            }
        );
        bars.push((format!("{case} vs {}", row.contender), ratio, met));
    }
    for (name, label) in [("perfloc/1", "1 thread"), ("perfloc/2", "2 threads")] {
        if let Some(ns) = median_ns("threads", name) {
            let per_request = ns / (2_000.0 * if name.ends_with('2') { 2.0 } else { 1.0 });
            println!(
                "\n`threads`, {label}: {} per batch, {} per request",
                time(ns),
                time(per_request)
            );
        }
    }
    if let (Some(one), Some(two)) =
        (median_ns("threads", "perfloc/1"), median_ns("threads", "perfloc/2"))
    {
        println!("\n2 threads do {:.2}× the work of 1 (target ≥ 1.8)", 2.0 * one / two);
    }
    if let Some(svg) = svg {
        chart(&bars, &svg)?;
        eprintln!("chart written to {svg}");
    }
    if missing > 0 {
        eprintln!(
            "{missing} of {} comparisons have no results in {}: run `cargo bench` first",
            ROWS.len(),
            criterion_dir().display()
        );
        std::process::exit(1);
    }
    Ok(())
}

/// Where criterion writes its results: `$CARGO_TARGET_DIR/criterion`, else
/// `target/criterion`.
fn criterion_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new("target").to_path_buf(), Into::into)
        .join("criterion")
}

/// A horizontal bar per comparison: perfloc's time over the contender's, log scale.
fn chart(bars: &[(String, f64, bool)], path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let height = 60 + 28 * bars.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (min, max) = bars.iter().fold((1.0f64, 1.0f64), |(lo, hi), b| (lo.min(b.1), hi.max(b.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "perfloc's median time ÷ contender's (same run; below 1 = perfloc faster)",
            ("sans-serif", 17),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(330)
        .build_cartesian_2d(
            (min / 1.5..max * 1.5).log_scale(),
            (0..bars.len() as i32).into_segmented(),
        )?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => {
                bars.get(*i as usize).map(|b| b.0.clone()).unwrap_or_default()
            }
            _ => String::new(),
        })
        .x_desc("ratio (log scale)")
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, ratio, met))| {
        let color = if *met { RGBColor(46, 125, 50) } else { RGBColor(198, 40, 40) };
        let (lo, hi) = if *ratio < 1.0 { (*ratio, 1.0) } else { (1.0, *ratio) };
        Rectangle::new(
            [(lo, SegmentValue::Exact(i as i32)), (hi, SegmentValue::Exact(i as i32 + 1))],
            color.mix(0.8).filled(),
        )
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Exact(bars.len() as i32))],
        BLACK,
    )))?;
    root.present()?;
    Ok(())
}
