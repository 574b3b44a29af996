//! The raw results of a run (what `server.json` holds), and their JSON form: every round's
//! run of every contender, each with its round number.

use serde_json::{Value, json};

use crate::stats::PoolStats;
use crate::wrk::WrkResult;

/// The wrk phases of one contender, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    /// Calm load to warm the server up; not reported.
    Warmup,
    /// Calm bodies, calm connections.
    Calm,
    /// Spike bodies, spike connections.
    Spike,
    /// Calm again, right after the spike.
    CalmAgain,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 4] = [Phase::Warmup, Phase::Calm, Phase::Spike, Phase::CalmAgain];
    /// The phases the report shows.
    pub const MEASURED: [Phase; 3] = [Phase::Calm, Phase::Spike, Phase::CalmAgain];

    /// The phase's name, in the report and in `server.json`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Warmup => "warm-up",
            Phase::Calm => "calm",
            Phase::Spike => "spike",
            Phase::CalmAgain => "calm again",
        }
    }

    fn from_name(name: &str) -> Result<Phase, String> {
        Phase::ALL.into_iter().find(|p| p.name() == name).ok_or(format!("no phase {name:?}"))
    }
}

/// When the driver reads `GET /stats`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatsPoint {
    /// Right before the calm phase.
    CalmStart,
    /// Right after the calm phase.
    CalmEnd,
    /// Right after the spike.
    SpikeEnd,
    /// Two seconds into calm again.
    SpikeEndPlus2,
    /// Right after calm again.
    CalmAgainEnd,
}

impl StatsPoint {
    /// Every reading, in order.
    pub const ALL: [StatsPoint; 5] = [
        StatsPoint::CalmStart,
        StatsPoint::CalmEnd,
        StatsPoint::SpikeEnd,
        StatsPoint::SpikeEndPlus2,
        StatsPoint::CalmAgainEnd,
    ];

    /// The reading's name in `server.json`.
    pub fn name(self) -> &'static str {
        match self {
            StatsPoint::CalmStart => "calm start",
            StatsPoint::CalmEnd => "calm end",
            StatsPoint::SpikeEnd => "spike end",
            StatsPoint::SpikeEndPlus2 => "spike end + 2 s",
            StatsPoint::CalmAgainEnd => "calm again end",
        }
    }

    fn from_name(name: &str) -> Result<StatsPoint, String> {
        StatsPoint::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or(format!("no stats point {name:?}"))
    }
}

/// One wrk phase of one contender. Times are seconds since the contender's calm start.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseRun {
    /// Which phase.
    pub phase: Phase,
    /// When wrk started.
    pub start_s: f64,
    /// When wrk ended.
    pub end_s: f64,
    /// wrk's connections.
    pub connections: u32,
    /// What wrk measured.
    pub wrk: WrkResult,
}

/// One `GET /stats` reading.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsReading {
    /// Which reading.
    pub at: StatsPoint,
    /// When, in seconds since calm start.
    pub t_s: f64,
    /// What the server said.
    pub stats: PoolStats,
}

/// Everything measured for one contender in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct ContenderRun {
    /// The contender's name.
    pub name: String,
    /// The round it ran in, from 1.
    pub round: u32,
    /// The phases that ran, in order.
    pub phases: Vec<PhaseRun>,
    /// The `/stats` readings taken.
    pub stats: Vec<StatsReading>,
    /// RSS samples: (seconds since calm start, bytes); negative before calm starts.
    pub rss: Vec<(f64, u64)>,
}

impl ContenderRun {
    /// The run of `phase`, if it ran.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseRun> {
        self.phases.iter().find(|p| p.phase == phase)
    }

    /// The reading at `at`, if it was taken.
    pub fn stats_at(&self, at: StatsPoint) -> Option<&PoolStats> {
        self.stats.iter().find(|s| s.at == at).map(|s| &s.stats)
    }
}

/// A whole run: its set-up and every contender's measurements.
#[derive(Debug, Clone, PartialEq)]
pub struct Results {
    /// The command that reproduces it.
    pub command: String,
    /// When it ran (UTC).
    pub date: String,
    /// `wrk -v`'s line.
    pub wrk_version: String,
    /// CPU and cores.
    pub machine: String,
    /// Seconds of each measured phase.
    pub phase_secs: u64,
    /// Seconds of warm-up.
    pub warmup_secs: u64,
    /// Connections in the calm phases.
    pub calm_connections: u32,
    /// Connections in the spike.
    pub spike_connections: u32,
    /// Mean size of a calm body, bytes.
    pub calm_body_bytes: usize,
    /// Mean size of a spike body, bytes.
    pub spike_body_bytes: usize,
    /// How RSS was read.
    pub rss_source: String,
    /// How many rounds were asked for (`--rounds`); a contender whose run failed in a round
    /// has fewer runs.
    pub rounds: u32,
    /// One entry per contender and round, in the order they ran.
    pub runs: Vec<ContenderRun>,
}

impl Results {
    /// The JSON of `server.json`.
    pub fn to_json(&self) -> Value {
        let runs: Vec<Value> = self
            .runs
            .iter()
            .map(|run| {
                let phases: Vec<Value> = run
                    .phases
                    .iter()
                    .map(|p| {
                        let wrk: serde_json::Map<String, Value> = p
                            .wrk
                            .fields()
                            .iter()
                            .map(|&(name, value)| (name.to_string(), value.into()))
                            .collect();
                        json!({
                            "phase": p.phase.name(),
                            "start_s": p.start_s,
                            "end_s": p.end_s,
                            "connections": p.connections,
                            "wrk": wrk,
                        })
                    })
                    .collect();
                let stats: Vec<Value> = run
                    .stats
                    .iter()
                    .map(|s| json!({ "at": s.at.name(), "t_s": s.t_s, "stats": s.stats.to_json() }))
                    .collect();
                json!({
                    "name": run.name,
                    "round": run.round,
                    "phases": phases,
                    "stats": stats,
                    "rss_bytes": run.rss,
                })
            })
            .collect();
        json!({
            "command": self.command,
            "date": self.date,
            "wrk_version": self.wrk_version,
            "machine": self.machine,
            "phase_secs": self.phase_secs,
            "warmup_secs": self.warmup_secs,
            "calm_connections": self.calm_connections,
            "spike_connections": self.spike_connections,
            "calm_body_bytes": self.calm_body_bytes,
            "spike_body_bytes": self.spike_body_bytes,
            "rss_source": self.rss_source,
            "rounds": self.rounds,
            "runs": runs,
        })
    }

    /// Reads back what [`Results::to_json`] wrote.
    pub fn from_json(v: &Value) -> Result<Results, String> {
        let runs = array(v, "runs")?.iter().map(run_from_json).collect::<Result<_, _>>()?;
        Ok(Results {
            command: string(v, "command")?,
            date: string(v, "date")?,
            wrk_version: string(v, "wrk_version")?,
            machine: string(v, "machine")?,
            phase_secs: number(v, "phase_secs")?,
            warmup_secs: number(v, "warmup_secs")?,
            calm_connections: number(v, "calm_connections")? as u32,
            spike_connections: number(v, "spike_connections")? as u32,
            calm_body_bytes: number(v, "calm_body_bytes")? as usize,
            spike_body_bytes: number(v, "spike_body_bytes")? as usize,
            rss_source: string(v, "rss_source")?,
            rounds: number(v, "rounds")? as u32,
            runs,
        })
    }
}

fn run_from_json(v: &Value) -> Result<ContenderRun, String> {
    let phases = array(v, "phases")?
        .iter()
        .map(|p| {
            let mut wrk = WrkResult::default();
            for (name, _) in WrkResult::default().fields() {
                wrk.set(name, number(&p["wrk"], name)?);
            }
            Ok(PhaseRun {
                phase: Phase::from_name(&string(p, "phase")?)?,
                start_s: float(p, "start_s")?,
                end_s: float(p, "end_s")?,
                connections: number(p, "connections")? as u32,
                wrk,
            })
        })
        .collect::<Result<_, String>>()?;
    let stats = array(v, "stats")?
        .iter()
        .map(|s| {
            Ok(StatsReading {
                at: StatsPoint::from_name(&string(s, "at")?)?,
                t_s: float(s, "t_s")?,
                stats: PoolStats::from_json(&s["stats"])?,
            })
        })
        .collect::<Result<_, String>>()?;
    let rss = array(v, "rss_bytes")?
        .iter()
        .map(|pair| match (pair[0].as_f64(), pair[1].as_u64()) {
            (Some(t), Some(bytes)) => Ok((t, bytes)),
            _ => Err(format!("rss_bytes: not a [seconds, bytes] pair: {pair}")),
        })
        .collect::<Result<_, String>>()?;
    let round = number(v, "round")? as u32;
    Ok(ContenderRun { name: string(v, "name")?, round, phases, stats, rss })
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    v[key].as_str().map(str::to_string).ok_or(format!("server.json: no string {key:?}"))
}

fn number(v: &Value, key: &str) -> Result<u64, String> {
    v[key].as_u64().ok_or(format!("server.json: no whole number {key:?}"))
}

fn float(v: &Value, key: &str) -> Result<f64, String> {
    v[key].as_f64().ok_or(format!("server.json: no number {key:?}"))
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, String> {
    v[key].as_array().ok_or(format!("server.json: no array {key:?}"))
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A small made-up run of one round of two contenders, for the tests of the report and
    /// plots.
    pub fn sample() -> Results {
        let run = |name: &str, rps: u64, peak_mib: u64, calm_mib: u64, back_at: f64| {
            let wrk = |requests: u64, p99_us: u64| WrkResult {
                requests,
                duration_us: 3_000_000,
                bytes: requests * 150,
                p50_us: p99_us / 4,
                p99_us,
                p999_us: p99_us * 2,
                max_us: p99_us * 3,
                ..WrkResult::default()
            };
            let phase = |phase, start_s, connections, requests, p99_us| PhaseRun {
                phase,
                start_s,
                end_s: start_s + 3.0,
                connections,
                wrk: wrk(requests, p99_us),
            };
            let stats = |at, t_s, mmap| StatsReading {
                at,
                t_s,
                stats: PoolStats { requests: 10, pool: [0, 0, 0, 0, 0, 0, 0, mmap, 1, 2] },
            };
            let mib = 1u64 << 20;
            let rss = (-15..90)
                .map(|i| {
                    let t = i as f64 / 10.0;
                    let level = match t {
                        t if t < 3.0 => calm_mib,
                        t if t < 6.0 => peak_mib,
                        t if t < 6.0 + back_at => peak_mib / 2,
                        _ => calm_mib,
                    };
                    (t, level * mib + (i as u64 % 3) * 4096)
                })
                .collect();
            ContenderRun {
                name: name.to_string(),
                round: 1,
                phases: vec![
                    phase(Phase::Warmup, -1.2, 16, rps, 900),
                    phase(Phase::Calm, 0.0, 16, rps * 3, 1000),
                    phase(Phase::Spike, 3.0, 64, rps / 10, 40_000),
                    phase(Phase::CalmAgain, 6.0, 16, rps * 3, 1100),
                ],
                stats: vec![
                    stats(StatsPoint::CalmStart, 0.0, 4),
                    stats(StatsPoint::CalmEnd, 3.0, 4),
                    stats(StatsPoint::SpikeEnd, 6.0, 9),
                    stats(StatsPoint::SpikeEndPlus2, 8.0, 9),
                    stats(StatsPoint::CalmAgainEnd, 9.0, 9),
                ],
                rss,
            }
        };
        Results {
            command: "bash examples/server/load.sh --phase-secs 3".into(),
            date: "2026-11-27 11:40 UTC".into(),
            wrk_version: "wrk 4.1.0 [epoll] Copyright (C) 2012 Will Glozer".into(),
            machine: "2 cores, Test CPU".into(),
            phase_secs: 3,
            warmup_secs: 1,
            calm_connections: 16,
            spike_connections: 64,
            calm_body_bytes: 4100,
            spike_body_bytes: 256_000,
            rss_source: "statm".into(),
            rounds: 1,
            runs: vec![run("glibc", 10_000, 300, 20, 9.0), run("perfloc", 11_000, 200, 12, 0.5)],
        }
    }

    #[test]
    fn json_round_trip() {
        let results = sample();
        let text = serde_json::to_string(&results.to_json()).unwrap();
        let back = Results::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn a_broken_file_is_an_error() {
        let mut v = sample().to_json();
        v["runs"][0]["phases"][1]["phase"] = "lunch".into();
        assert!(Results::from_json(&v).unwrap_err().contains("lunch"));
        let mut v = sample().to_json();
        v["runs"][0]["rss_bytes"][0] = json!(["x", 1]);
        assert!(Results::from_json(&v).is_err());
        // The single-round format (no round numbers) is not read.
        let mut v = sample().to_json();
        v["runs"][0].as_object_mut().unwrap().remove("round");
        assert!(Results::from_json(&v).unwrap_err().contains("round"));
    }
}
