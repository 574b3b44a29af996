//! Instructions per `POST /score` request, counted by callgrind: the figure that wall-clock
//! time on a shared 2-core machine cannot settle.
//!
//! Each contender's server runs under `valgrind --tool=callgrind` with one worker thread.
//! One client sends warm-up requests and then `n` calm bodies (the load driver's, about
//! 4 KB each) over one keep-alive connection; the server is stopped with SIGTERM, and
//! callgrind writes its totals. Two runs, with `--requests` and with twice as many, cancel
//! the start-up and the warm-up: instructions per request = (second total − first total) /
//! the difference in requests. The handler's share is the inclusive count of
//! `perfloc_server::service::handle` (reading the body, parsing, scoring, the response
//! text; not hyper's HTTP work), taken the same way with `callgrind_annotate`.
//!
//! ```sh
//! cargo build --release -p perfloc-server --bins
//! target/release/count                 # 1,000 and 2,000 requests per contender, ~2 min
//! target/release/count --requests 200  # quicker
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use perfloc_server::bodies::{self, Kind};
use perfloc_server::contenders::CONTENDERS;

/// Requests sent before the counted ones, in both runs (caches, pools and thread-local
/// state warm).
const WARMUP: usize = 200;

/// The functions whose inclusive counts make the handler's share: parsing the body into the
/// request's allocator and scoring it (reading the body, a copy, is left with hyper's part).
const HANDLER: [&str; 2] = ["perfloc_server::request::parse", "perfloc_server::score::score"];

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut requests = 1000;
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().map(|n| n.parse::<usize>())) {
            ("--requests", Some(Ok(n))) if n > 0 => requests = n,
            _ => {
                eprintln!("count: usage: count [--requests N (above 0)]");
                return ExitCode::from(2);
            }
        }
    }
    let bin_dir = match std::env::current_exe() {
        Ok(exe) => exe.parent().map(Path::to_path_buf).unwrap_or_default(),
        Err(err) => {
            eprintln!("count: where am I? {err}");
            return ExitCode::FAILURE;
        }
    };
    let bodies: Vec<String> =
        (0..bodies::BODIES_PER_KIND).map(|index| bodies::body(Kind::Calm, index)).collect();
    let mut rows = Vec::new();
    for contender in &CONTENDERS {
        let (name, handler) = (contender.name, contender.handler);
        let count = |n| {
            let run = Run { binary: bin_dir.join(contender.binary), handler, requests: n };
            run.counts(&bodies).map_err(|err| format!("{name}, {n} requests: {err}"))
        };
        match count(requests).and_then(|first| Ok((first, count(2 * requests)?))) {
            Ok((first, second)) => {
                let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / requests as f64;
                let row = (name, per(first.0, second.0), per(first.1, second.1));
                eprintln!(
                    "count: {name}: {:.0} instructions per request, handler {:.0}",
                    row.1, row.2
                );
                rows.push(row);
            }
            Err(err) => {
                eprintln!("count: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let perfloc =
        rows.iter().find(|row| row.0 == "perfloc").map_or((1.0, 1.0), |row| (row.1, row.2));
    println!(
        "Instructions per `POST /score` request (calm bodies), `target/release/count --requests {requests}`:\n"
    );
    println!("| contender | whole server | perfloc ÷ it | handler | perfloc ÷ it |");
    println!("| --- | --: | --: | --: | --: |");
    for (name, whole, handler) in rows {
        println!(
            "| {name} | {whole:.0} | {:.2} | {handler:.0} | {:.2} |",
            perfloc.0 / whole,
            perfloc.1 / handler
        );
    }
    ExitCode::SUCCESS
}

/// One server under callgrind, serving `requests` counted requests after the warm-up.
struct Run {
    binary: PathBuf,
    handler: &'static str,
    requests: usize,
}

impl Run {
    /// Runs the server and the client; returns callgrind's total and the handler's inclusive
    /// count.
    fn counts(&self, bodies: &[String]) -> Result<(u64, u64), String> {
        let out = std::env::temp_dir().join(format!("perfloc-count-{}.out", std::process::id()));
        let mut server = Command::new("valgrind")
            .args(["--tool=callgrind", "--quiet"])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&self.binary)
            .args(["--addr", "127.0.0.1:0", "--threads", "1", "--handler", self.handler])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start valgrind (is it installed?): {err}"))?;
        let served = serve(&mut server, bodies, WARMUP + self.requests);
        // SIGTERM: callgrind writes its counts as the process ends.
        let stopped = Command::new("kill").arg(server.id().to_string()).status();
        let _ = server.wait();
        served?;
        stopped.map_err(|err| format!("kill: {err}"))?;
        let counts = totals(&out);
        let _ = std::fs::remove_file(&out);
        counts
    }
}

/// Reads the server's address from its first line and sends `n` requests, one at a time,
/// over one connection.
fn serve(server: &mut Child, bodies: &[String], n: usize) -> Result<(), String> {
    let stdout = server.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).map_err(|err| err.to_string())?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .ok_or_else(|| format!("the server said {line:?}"))?;
    let mut stream = TcpStream::connect(addr).map_err(|err| err.to_string())?;
    // One write per request, sent at once (no Nagle delay waiting for an ACK).
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|err| err.to_string())?);
    for i in 0..n {
        let body = &bodies[i % bodies.len()];
        let request = format!(
            "POST /score HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(|err| err.to_string())?;
        let (mut status, mut length) = (String::new(), 0);
        reader.read_line(&mut status).map_err(|err| err.to_string())?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("request {i} answered {status:?}"));
        }
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).map_err(|err| err.to_string())?;
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.strip_prefix("content-length:") {
                length = value.trim().parse().map_err(|_| format!("bad {header:?}"))?;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).map_err(|err| err.to_string())?;
    }
    Ok(())
}

/// Callgrind's total instructions in `out`, and the sum of the [`HANDLER`] functions'
/// inclusive counts.
fn totals(out: &Path) -> Result<(u64, u64), String> {
    let annotated = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(out)
        .output()
        .map_err(|err| format!("callgrind_annotate: {err}"))?;
    let text = String::from_utf8_lossy(&annotated.stdout);
    // Lines read `6,355,241 (91.00%)  ???:path::to::function [binary]`.
    let count = |symbol: &str| -> Result<u64, String> {
        let line = text
            .lines()
            .find(|line| line.contains(symbol))
            .ok_or_else(|| format!("{symbol} is not in {}", out.display()))?;
        let figure = line.split_whitespace().next().unwrap_or_default().replace(',', "");
        figure.parse().map_err(|_| format!("no count in {line:?}"))
    };
    let total = count("PROGRAM TOTALS")?;
    let mut handler = 0;
    for function in HANDLER {
        handler += count(&format!(":{function} ["))?;
    }
    Ok((total, handler))
}
