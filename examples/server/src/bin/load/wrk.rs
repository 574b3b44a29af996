//! wrk, the load generator: its script, one run of it, and the line its script prints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The wrk script (`examples/server/score.lua`), written next to the bodies at run time.
pub const SCRIPT: &str = include_str!("../../../score.lua");

/// What one wrk run reports: the script's `perfloc-load ...` line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrkResult {
    /// Responses received.
    pub requests: u64,
    /// The run's length as wrk measured it, in µs.
    pub duration_us: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Socket errors: failed connects.
    pub connect: u64,
    /// Socket errors: failed reads.
    pub read: u64,
    /// Socket errors: failed writes.
    pub write: u64,
    /// Responses with a status of 400 or above (wrk's "Non-2xx or 3xx responses").
    pub status: u64,
    /// Requests with no response within `--timeout`.
    pub timeout: u64,
    /// 50th percentile (median) latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// 99.9th percentile latency, µs.
    pub p999_us: u64,
    /// Highest latency, µs.
    pub max_us: u64,
}

impl WrkResult {
    /// Requests per second over wrk's own duration.
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Socket errors of every kind (connect, read, write, timeout).
    pub fn socket_errors(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }

    /// The fields by name, in the order of the script's line.
    pub fn fields(&self) -> [(&'static str, u64); 12] {
        [
            ("requests", self.requests),
            ("duration_us", self.duration_us),
            ("bytes", self.bytes),
            ("connect", self.connect),
            ("read", self.read),
            ("write", self.write),
            ("status", self.status),
            ("timeout", self.timeout),
            ("p50_us", self.p50_us),
            ("p99_us", self.p99_us),
            ("p999_us", self.p999_us),
            ("max_us", self.max_us),
        ]
    }

    /// Sets the field called `name`; false when there is none.
    pub fn set(&mut self, name: &str, value: u64) -> bool {
        let field = match name {
            "requests" => &mut self.requests,
            "duration_us" => &mut self.duration_us,
            "bytes" => &mut self.bytes,
            "connect" => &mut self.connect,
            "read" => &mut self.read,
            "write" => &mut self.write,
            "status" => &mut self.status,
            "timeout" => &mut self.timeout,
            "p50_us" => &mut self.p50_us,
            "p99_us" => &mut self.p99_us,
            "p999_us" => &mut self.p999_us,
            "max_us" => &mut self.max_us,
            _ => return false,
        };
        *field = value;
        true
    }

    /// Finds and parses the script's `perfloc-load key=value ...` line in wrk's output; every
    /// field must be there.
    pub fn parse(output: &str) -> Result<WrkResult, String> {
        let line = output
            .lines()
            .find_map(|l| l.trim().strip_prefix("perfloc-load "))
            .ok_or("wrk printed no `perfloc-load` line (did the script's done() run?)")?;
        let mut result = WrkResult::default();
        let mut seen = Vec::new();
        for pair in line.split_whitespace() {
            let (key, value) = pair.split_once('=').ok_or(format!("not key=value: {pair:?}"))?;
            let value = value.parse().map_err(|_| format!("not a whole number: {pair:?}"))?;
            if !result.set(key, value) {
                return Err(format!("unknown field {key:?}"));
            }
            seen.push(key);
        }
        match result.fields().iter().find(|(name, _)| !seen.contains(name)) {
            Some((missing, _)) => Err(format!("the perfloc-load line has no {missing}")),
            None => Ok(result),
        }
    }
}

/// One wrk load: how many connections, how long, which bodies.
pub struct Load<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// wrk `-c`.
    pub connections: u32,
    /// wrk `-d`, seconds.
    pub secs: u64,
    /// The script file.
    pub script: &'a Path,
    /// The body files the script rotates through.
    pub bodies: &'a [PathBuf],
}

/// A running wrk; dropping it before [`Running::wait`] kills it.
pub struct Running {
    child: Option<Child>,
}

impl Load<'_> {
    /// Starts `wrk -t1 -c<connections> -d<secs>s --timeout 5s -s <script> <url> -- <bodies>`.
    pub fn start(&self) -> Result<Running, String> {
        let child = Command::new("wrk")
            .arg("-t1")
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", self.secs))
            .args(["--timeout", "5s", "-s"])
            .arg(self.script)
            .arg(format!("http://{}/score", self.addr))
            .arg("--")
            .args(self.bodies)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start wrk: {e}"))?;
        Ok(Running { child: Some(child) })
    }
}

impl Running {
    /// Waits for wrk to finish and parses its result.
    pub fn wait(mut self) -> Result<WrkResult, String> {
        let child = self.child.take().expect("waited once");
        let output = child.wait_with_output().map_err(|e| format!("waiting for wrk: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            return Err(format!("wrk failed ({}): {}{}", output.status, stdout, stderr));
        }
        WrkResult::parse(&stdout).map_err(|e| format!("{e}\nwrk said:\n{stdout}{stderr}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// wrk's version, e.g. `wrk debian/4.1.0-3+b2 [epoll]` (wrk prints it and exits nonzero for
/// `-v`, so only the text counts).
pub fn version() -> Result<String, String> {
    let output = Command::new("wrk")
        .arg("-v")
        .output()
        .map_err(|e| format!("wrk is not installed or cannot run ({e}); load.sh installs it"))?;
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    version_of(&text).ok_or_else(|| format!("wrk -v printed no version: {text:?}"))
}

/// The version in `wrk -v`'s text: its `wrk ...` line without the copyright.
fn version_of(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("wrk "))?;
    Some(line.split(" Copyright").next().unwrap_or(line).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Running 3s test @ http://127.0.0.1:40123/score
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.01us  301.22us  12.31ms   91.02%
    Req/Sec    19.80k     1.02k   21.30k    80.00%
  59400 requests in 3.00s, 9.01MB read
Requests/sec:  19793.40
Transfer/sec:      3.00MB
perfloc-load requests=59400 duration_us=3001000 bytes=9447360 connect=0 read=0 write=0 \
status=2 timeout=1 p50_us=760 p99_us=1904 p999_us=4410 max_us=12310
";

    #[test]
    fn parses_the_script_line() {
        let r = WrkResult::parse(SAMPLE).unwrap();
        assert_eq!(r.requests, 59400);
        assert_eq!(r.duration_us, 3_001_000);
        assert_eq!(r.bytes, 9_447_360);
        assert_eq!((r.connect, r.read, r.write, r.status, r.timeout), (0, 0, 0, 2, 1));
        assert_eq!((r.p50_us, r.p99_us, r.p999_us, r.max_us), (760, 1904, 4410, 12310));
        assert_eq!(r.socket_errors(), 1);
        assert!((r.requests_per_sec() - 19793.4).abs() < 0.1);
    }

    #[test]
    fn field_names_round_trip() {
        let r = WrkResult::parse(SAMPLE).unwrap();
        let mut copy = WrkResult::default();
        for (name, value) in r.fields() {
            assert!(copy.set(name, value), "{name}");
        }
        assert_eq!(copy, r);
    }

    #[test]
    fn a_broken_line_is_an_error() {
        assert!(WrkResult::parse("Requests/sec: 100\n").is_err());
        assert!(WrkResult::parse("perfloc-load requests=1 duration_us=2\n").is_err());
        assert!(WrkResult::parse(&SAMPLE.replace("p99_us=1904", "p99_us=1.5")).is_err());
        assert!(WrkResult::parse(&SAMPLE.replace("p99_us=", "p98_us=")).is_err());
    }

    #[test]
    fn version_line() {
        let text = "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk <options> <url>\n";
        assert_eq!(version_of(text).as_deref(), Some("wrk debian/4.1.0-3+b2 [epoll]"));
        assert_eq!(version_of("Usage: wrk <options>"), None);
    }

    #[test]
    fn the_script_prints_every_field() {
        for (name, _) in WrkResult::default().fields() {
            assert!(SCRIPT.contains(&format!(" {name}=")), "score.lua does not print {name}");
        }
        assert!(SCRIPT.contains("latency:percentile(99.9)"));
    }
}
