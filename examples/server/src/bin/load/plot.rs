//! The SVG charts: RSS over time in the first round (`server-rss.svg`) and the median
//! latency percentiles per phase over the rounds (`server-latency.svg`).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::MIB;
use crate::report::n_rounds;
use crate::results::{Phase, Results};
use crate::rounds::{PhaseSummary, first_round, summarise};

/// Each contender's colour, the same in both charts.
fn colour(name: &str) -> RGBColor {
    match name {
        "glibc" => RGBColor(31, 119, 180),
        "jemalloc" => RGBColor(255, 127, 14),
        "mimalloc" => RGBColor(44, 160, 44),
        "perfloc" => RGBColor(214, 39, 40),
        _ => RGBColor(100, 100, 100),
    }
}

/// A chart error as text.
fn text(e: impl std::fmt::Display) -> String {
    format!("plot: {e}")
}

/// RSS in MiB over time, one line per contender from its first round, with the phases of
/// the first of them marked (they start within milliseconds of each other in every run).
pub fn rss(results: &Results, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1000, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let runs = first_round(results);
    let times = runs.iter().flat_map(|r| r.rss.iter().map(|s| s.0));
    let (x_min, x_max) = times.fold((0.0f64, 1.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let y_max = runs.iter().flat_map(|r| r.rss.iter().map(|s| s.1 as f64 / MIB));
    let y_max = y_max.fold(1.0f64, f64::max) * 1.12;
    let caption = format!(
        "perfloc-server RSS under wrk, first round of {}: calm ({} conn.), spike ({} conn., \
         ≈{:.0} KB bodies), calm again",
        results.rounds,
        results.calm_connections,
        results.spike_connections,
        results.spike_body_bytes as f64 / 1000.0
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_min..x_max, 0.0..y_max)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the calm phase started")
        .y_desc("RSS (MiB)")
        .draw()
        .map_err(text)?;
    if let Some(first) = runs.first() {
        for phase in &first.phases {
            for x in [phase.start_s, phase.end_s] {
                chart
                    .draw_series(LineSeries::new([(x, 0.0), (x, y_max)], BLACK.mix(0.25)))
                    .map_err(text)?;
            }
            let label = Text::new(
                phase.phase.name(),
                (phase.start_s + (x_max - x_min) * 0.005, y_max * 0.97),
                ("sans-serif", 13),
            );
            chart.draw_series(std::iter::once(label)).map_err(text)?;
        }
    }
    for run in &runs {
        let c = colour(&run.name);
        chart
            .draw_series(LineSeries::new(
                run.rss.iter().map(|&(t, bytes)| (t, bytes as f64 / MIB)),
                c.stroke_width(2),
            ))
            .map_err(text)?
            .label(run.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .draw()
        .map_err(text)?;
    root.present().map_err(text)
}

/// The percentiles in the latency chart: label, shade, and the median figure in µs.
type Percentile = (&'static str, RGBColor, fn(&PhaseSummary) -> f64);

const PERCENTILES: [Percentile; 3] = [
    ("p50", RGBColor(158, 202, 225), |p| p.p50_us),
    ("p99", RGBColor(66, 146, 198), |p| p.p99_us),
    ("p99.9", RGBColor(8, 69, 148), |p| p.p999_us),
];

/// Median latency percentiles over the rounds as grouped bars: one panel per measured phase
/// (each with its own logarithmic scale in ms), one group per contender, one bar per
/// percentile.
pub fn latency(results: &Results, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (1200, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(text)?;
    let (title, body) = root.split_vertically(40);
    title
        .titled(
            &format!(
                "perfloc-server latency under wrk (ms, log scale): p50, p99, p99.9 per phase, \
                 median of {}",
                n_rounds(results.rounds as usize)
            ),
            ("sans-serif", 18),
        )
        .map_err(text)?;
    let names: Vec<&str> = summarise(results).iter().map(|c| c.name).collect();
    let n = names.len().max(1) as f64;
    let panels = body.split_evenly((1, Phase::MEASURED.len()));
    for (panel, phase) in panels.iter().zip(Phase::MEASURED) {
        let values = bars(results, phase);
        // The two calm phases share a scale, so that they compare at a glance: from the power
        // of ten at or below the lowest bar to twice the highest.
        let scale: Vec<f64> = match phase {
            Phase::Spike => values.iter().map(|b| b.2).collect(),
            _ => [Phase::Calm, Phase::CalmAgain]
                .into_iter()
                .flat_map(|p| bars(results, p).into_iter().map(|b| b.2))
                .collect(),
        };
        let lowest = scale.iter().copied().fold(f64::INFINITY, f64::min) * 0.99;
        let lo = if lowest.is_finite() { 10f64.powf(lowest.log10().floor()) } else { 0.1 };
        let hi = scale.iter().copied().fold(0.0, f64::max).max(lo * 5.0) * 2.0;
        let connections = match phase {
            Phase::Spike => results.spike_connections,
            _ => results.calm_connections,
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{} ({connections} connections)", phase.name()), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..n, (lo..hi).log_scale())
            .map_err(text)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(0)
            .y_label_formatter(&|y| trim(*y))
            .y_desc("ms")
            .draw()
            .map_err(text)?;
        // The contenders' names under their groups, in the image's own pixels.
        let centred =
            ("sans-serif", 14).into_text_style(&root).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, name) in names.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
            root.draw(&Text::new(*name, (x, y + 8), centred.clone())).map_err(text)?;
        }
        for (k, (label, shade, _)) in PERCENTILES.iter().enumerate() {
            let shade = *shade;
            let series = values.iter().filter(|b| b.1 == k).map(|&(i, k, ms)| {
                let x0 = i as f64 + 0.12 + k as f64 * 0.26;
                Rectangle::new([(x0, lo), (x0 + 0.24, ms)], shade.filled())
            });
            let drawn = chart.draw_series(series).map_err(text)?;
            if phase == Phase::Calm {
                drawn.label(*label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], shade.filled())
                });
            }
        }
        if phase == Phase::Calm {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .border_style(BLACK)
                .background_style(WHITE.mix(0.9))
                .draw()
                .map_err(text)?;
        }
    }
    root.present().map_err(text)
}

/// The bars of `phase`: (contender index, percentile index, median ms).
fn bars(results: &Results, phase: Phase) -> Vec<(usize, usize, f64)> {
    summarise(results)
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.phase(phase).cloned().map(|p| (i, p)))
        .flat_map(|(i, p)| {
            PERCENTILES
                .iter()
                .enumerate()
                .map(move |(k, percentile)| (i, k, (percentile.2)(&p).max(1.0) / 1000.0))
        })
        .collect()
}

/// A tick value without trailing zeros: `0.5`, `2`, `150`.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_charts_render() {
        let dir = std::env::temp_dir().join(format!("perfloc-plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let results = crate::rounds::tests::sample_rounds();
        rss(&results, &dir.join("rss.svg")).unwrap();
        latency(&results, &dir.join("latency.svg")).unwrap();
        let rss_svg = std::fs::read_to_string(dir.join("rss.svg")).unwrap();
        assert!(rss_svg.contains("perfloc") && rss_svg.contains("calm again"));
        assert!(rss_svg.contains("first round of 3"));
        let latency_svg = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
        assert!(latency_svg.contains("p99.9") && latency_svg.contains("glibc"));
        assert!(latency_svg.contains("median of 3 rounds"));
        // One group per contender, not per run.
        assert_eq!(latency_svg.matches("\nglibc\n").count(), 3, "once per phase panel");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tick_values() {
        assert_eq!(trim(0.5), "0.5");
        assert_eq!(trim(2.0), "2");
        assert_eq!(trim(150.0), "150");
        assert_eq!(trim(0.125), "0.125");
    }
}
