//! Spike and calm: the global pool (default settings: retain 4 MiB, decay 1 s) under steady
//! small traffic, a 1 GiB spike, then calm again. Prints a timeline of mapped and resident
//! memory and system calls, and writes an SVG plot of it.
//!
//! ```sh
//! cargo run --release --example downsizing -- docs/downsizing.svg
//! ```

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
    let svg = std::env::args().nth(1);
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
    println!("\n{}", pool.stats());

    match svg {
        Some(path) => {
            plot(&samples, &path)?;
            println!("\nplot written to {path}");
        }
        None => println!("\n(pass a path, e.g. docs/downsizing.svg, to write an SVG plot)"),
    }
    Ok(())
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
