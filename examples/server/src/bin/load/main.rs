//! The load driver of perfloc-server (issue 12): runs each contender (glibc, jemalloc,
//! mimalloc, perfloc) under wrk through a warm-up, a calm phase, a spike of large bodies
//! and many connections, and calm again; samples the server's RSS every 100 ms and its
//! `GET /stats` at the phase boundaries. On a shared machine one pass is too noisy to
//! compare, so it does this for `--rounds` rounds (3 by default), every contender once per
//! round, the order rotated by one contender per round so that none always runs first or
//! last. It writes `server.md` (medians over the rounds, the range of requests/s, and every
//! round's calm requests/s), `server.json` (every round's raw results), `server-rss.svg`
//! (the first round) and `server-latency.svg` (medians).
//!
//! ```sh
//! # The full run: 3 rounds × 4 contenders × ~37 s ≈ 7 min; builds, installs wrk if missing.
//! bash examples/server/load.sh
//! # A quick check that it works.
//! bash examples/server/load.sh --rounds 1 --phase-secs 3 --warmup-secs 1 --out /tmp/load
//! # Report only, no run.
//! target/release/load --from-json docs/server.json --out docs
//! ```
//!
//! It loads nothing but loopback, and stops every process it starts. It exits 1 when a
//! phase of any round saw socket errors or error responses, or wrk failed; 2 on a bad
//! command line.

mod analysis;
mod options;
mod plot;
mod report;
mod results;
mod rounds;
mod sampler;
mod server;
mod stats;
mod wrk;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use options::{Options, OptionsError, USAGE};
use perfloc_server::bodies;
use results::{ContenderRun, Phase, PhaseRun, Results, StatsPoint, StatsReading};
use sampler::Sampler;
use server::{Contender, Server};
use stats::PoolStats;
use wrk::{Load, WrkResult};

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1).collect()) {
        Ok(options) => options,
        Err(OptionsError::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(OptionsError::Invalid(message)) => {
            eprintln!("load: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("load: FAILED:");
            for problem in problems {
                eprintln!("  - {problem}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the contenders (or reads `--from-json`), writes the report, and returns what went
/// wrong in the run.
fn run(options: &Options) -> Result<Vec<String>, String> {
    let (results, mut problems) = match &options.from_json {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let json = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
            (Results::from_json(&json)?, Vec::new())
        }
        None => measure(options)?,
    };
    if results.runs.is_empty() {
        // Nothing to report: leave whatever report `--out` holds as it is.
        return Err(format!("no contender ran: {}", problems.join("; ")));
    }
    write_report(&results, &options.out)?;
    problems.extend(phase_problems(&results));
    Ok(problems)
}

/// The request bodies and script in a temporary directory, removed when dropped.
struct Workload {
    dir: PathBuf,
    script: PathBuf,
    calm: Vec<PathBuf>,
    spike: Vec<PathBuf>,
    calm_bytes: usize,
    spike_bytes: usize,
}

impl Workload {
    fn write() -> Result<Workload, String> {
        let dir = std::env::temp_dir().join(format!("perfloc-load-{}", std::process::id()));
        let io = |e: std::io::Error| format!("writing the workload into {}: {e}", dir.display());
        std::fs::create_dir_all(&dir).map_err(io)?;
        let script = dir.join("score.lua");
        std::fs::write(&script, wrk::SCRIPT).map_err(io)?;
        let (calm, calm_bytes) = bodies::write(bodies::Kind::Calm, &dir).map_err(io)?;
        let (spike, spike_bytes) = bodies::write(bodies::Kind::Spike, &dir).map_err(io)?;
        Ok(Workload { dir, script, calm, spike, calm_bytes, spike_bytes })
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What every contender's run shares.
struct Setup<'a> {
    options: &'a Options,
    workload: Workload,
    bin_dir: PathBuf,
}

impl Setup<'_> {
    /// The wrk load of `phase` against `addr`.
    fn load(&self, addr: SocketAddr, phase: Phase) -> Load<'_> {
        let o = self.options;
        let w = &self.workload;
        let (connections, secs, bodies) = match phase {
            Phase::Warmup => (o.calm_connections, o.warmup_secs, &w.calm),
            Phase::Calm | Phase::CalmAgain => (o.calm_connections, o.phase_secs, &w.calm),
            Phase::Spike => (o.spike_connections, o.phase_secs, &w.spike),
        };
        Load { addr, connections, secs, script: &w.script, bodies }
    }
}

/// Runs every contender of `options` once per round, in the rotated order of
/// [`rounds::order`]; returns the results and the runs that failed.
fn measure(options: &Options) -> Result<(Results, Vec<String>), String> {
    let wrk_version = wrk::version()?;
    let exe = std::env::current_exe().map_err(|e| format!("where am I? {e}"))?;
    let bin_dir = exe.parent().ok_or("the driver has no directory")?.to_path_buf();
    let setup = Setup { options, workload: Workload::write()?, bin_dir };
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    for round in 1..=options.rounds {
        for i in rounds::order(options.contenders.len(), round as usize - 1) {
            let contender = options.contenders[i];
            eprintln!(
                "load: round {round} of {}: {} ({} --handler {})",
                options.rounds, contender.name, contender.binary, contender.handler
            );
            match run_contender(contender, round, &setup) {
                Ok(run) => runs.push(run),
                Err(e) => {
                    eprintln!("load: round {round}: {}: {e}", contender.name);
                    problems.push(format!("{} round {round}: {e}", contender.name));
                }
            }
        }
    }
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let results = Results {
        command: command(&options.args),
        date: report::utc(now.as_secs()),
        wrk_version,
        machine: machine(),
        phase_secs: options.phase_secs,
        warmup_secs: options.warmup_secs,
        calm_connections: options.calm_connections,
        spike_connections: options.spike_connections,
        calm_body_bytes: setup.workload.calm_bytes,
        spike_body_bytes: setup.workload.spike_bytes,
        rss_source: sampler::RSS_SOURCE.to_string(),
        rounds: options.rounds,
        runs,
    };
    Ok((results, problems))
}

/// Idle time between the server's start and the warm-up, sampled like the rest.
const IDLE_BEFORE_WARMUP: Duration = Duration::from_millis(500);

/// When, after the spike, the extra `/stats` reading is taken.
const AFTER_SPIKE: Duration = Duration::from_secs(2);

/// One contender in one round from start to stop: the server, the sampler, the four wrk
/// phases and the `/stats` readings. The server is stopped on every path out (its guard's
/// `Drop`).
fn run_contender(contender: &Contender, round: u32, setup: &Setup) -> Result<ContenderRun, String> {
    let server = Server::start(contender, &setup.bin_dir, setup.options.host)?;
    let sampler = Sampler::start(server.pid());
    std::thread::sleep(IDLE_BEFORE_WARMUP);
    let mut phases: Vec<(Phase, Instant, Instant, u32, WrkResult)> = Vec::new();
    let mut readings: Vec<(StatsPoint, Instant, PoolStats)> = Vec::new();
    let mut read_stats = |at: StatsPoint| -> Result<(), String> {
        let stats = stats::fetch(server.addr)?;
        readings.push((at, Instant::now(), stats));
        Ok(())
    };
    for phase in Phase::ALL {
        match phase {
            Phase::Calm => read_stats(StatsPoint::CalmStart)?,
            Phase::Spike => read_stats(StatsPoint::CalmEnd)?,
            Phase::CalmAgain => read_stats(StatsPoint::SpikeEnd)?,
            Phase::Warmup => {}
        }
        let load = setup.load(server.addr, phase);
        let start = Instant::now();
        let running = load.start()?;
        if phase == Phase::CalmAgain {
            let spike_end = phases.last().map_or(start, |p| p.2);
            std::thread::sleep((spike_end + AFTER_SPIKE).saturating_duration_since(Instant::now()));
            read_stats(StatsPoint::SpikeEndPlus2)?;
        }
        let result = running.wait().map_err(|e| format!("{}: {e}", phase.name()))?;
        let end = Instant::now();
        eprintln!(
            "load: round {round}: {} {}: {:.0} requests/s, p50 {} ms, p99 {} ms, p99.9 {} ms, \
             {} non-2xx/3xx, {} socket errors",
            contender.name,
            phase.name(),
            result.requests_per_sec(),
            report::ms(result.p50_us),
            report::ms(result.p99_us),
            report::ms(result.p999_us),
            result.status,
            result.socket_errors()
        );
        phases.push((phase, start, end, load.connections, result));
    }
    read_stats(StatsPoint::CalmAgainEnd)?;
    let samples = sampler.stop();
    drop(server);

    let origin = phases.iter().find(|p| p.0 == Phase::Calm).map(|p| p.1).expect("calm ran");
    let at = |instant: Instant| seconds(instant, origin);
    Ok(ContenderRun {
        name: contender.name.to_string(),
        round,
        phases: phases
            .into_iter()
            .map(|(phase, start, end, connections, wrk)| PhaseRun {
                phase,
                start_s: at(start),
                end_s: at(end),
                connections,
                wrk,
            })
            .collect(),
        stats: readings
            .into_iter()
            .map(|(at_point, when, stats)| StatsReading { at: at_point, t_s: at(when), stats })
            .collect(),
        rss: samples.into_iter().map(|(when, bytes)| (at(when), bytes)).collect(),
    })
}

/// Seconds from `origin` to `instant` (negative before it), to the millisecond.
fn seconds(instant: Instant, origin: Instant) -> f64 {
    let s = match instant.checked_duration_since(origin) {
        Some(after) => after.as_secs_f64(),
        None => -(origin - instant).as_secs_f64(),
    };
    (s * 1000.0).round() / 1000.0
}

/// Writes the four files into `out` and prints the Markdown.
fn write_report(results: &Results, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let md = report::markdown(results);
    write("server.md", md.clone())?;
    let json = serde_json::to_string_pretty(&results.to_json()).map_err(|e| e.to_string())?;
    write("server.json", json + "\n")?;
    plot::rss(results, &out.join("server-rss.svg"))?;
    plot::latency(results, &out.join("server-latency.svg"))?;
    print!("{md}");
    eprintln!(
        "load: wrote server.md, server.json, server-rss.svg, server-latency.svg into {}",
        out.display()
    );
    Ok(())
}

/// Phases of any round that saw error responses or socket errors.
fn phase_problems(results: &Results) -> Vec<String> {
    let mut problems = Vec::new();
    for run in &results.runs {
        for p in &run.phases {
            let w = &p.wrk;
            let name = format!("{} round {} {}", run.name, run.round, p.phase.name());
            if w.status > 0 {
                problems
                    .push(format!("{name}: {} responses with a status of 400 or above", w.status));
            }
            if w.socket_errors() > 0 {
                problems.push(format!(
                    "{name}: {} socket errors (connect {}, read {}, write {}, timeout {})",
                    w.socket_errors(),
                    w.connect,
                    w.read,
                    w.write,
                    w.timeout
                ));
            }
        }
    }
    problems
}

/// The command that reproduces the run, as typed from the repository root.
fn command(args: &[String]) -> String {
    let mut command = String::from("bash examples/server/load.sh");
    for arg in args {
        let plain = arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:".contains(c));
        command.push(' ');
        if plain && !arg.is_empty() {
            command.push_str(arg);
        } else {
            command.push_str(&format!("'{}'", arg.replace('\'', r"'\''")));
        }
    }
    command
}

/// The CPU model and the cores, as `/proc/cpuinfo` and std see them.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim()))
        .unwrap_or("unknown CPU");
    format!("{cores} cores, {model}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reproducing_command() {
        let args = ["--phase-secs", "3", "--out", "/tmp/a b", "--only=perfloc,glibc"];
        assert_eq!(
            command(&args.map(String::from)),
            "bash examples/server/load.sh --phase-secs 3 --out '/tmp/a b' --only=perfloc,glibc"
        );
        assert_eq!(command(&[]), "bash examples/server/load.sh");
    }

    #[test]
    fn seconds_either_side_of_the_origin() {
        let origin = Instant::now();
        assert_eq!(seconds(origin + Duration::from_millis(1500), origin), 1.5);
        assert_eq!(seconds(origin, origin + Duration::from_millis(250)), -0.25);
    }

    #[test]
    fn errors_in_any_phase_are_problems() {
        let mut results = results::tests::sample();
        assert!(phase_problems(&results).is_empty());
        results.runs[1].phases[2].wrk.status = 3;
        results.runs[0].phases[0].wrk.timeout = 2;
        let problems = phase_problems(&results);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("glibc round 1 warm-up: 2 socket errors"));
        assert!(problems[1].starts_with("perfloc round 1 spike: 3 responses"));
    }

    #[test]
    fn errors_in_any_round_are_problems() {
        let mut results = rounds::tests::sample_rounds();
        assert!(phase_problems(&results).is_empty());
        // Round 3's glibc run (the fifth run): an error status in calm again.
        results.runs[4].phases[3].wrk.status = 1;
        let problems = phase_problems(&results);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("glibc round 3 calm again: 1 responses"), "{problems:?}");
    }
}
