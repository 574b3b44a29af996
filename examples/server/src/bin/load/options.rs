//! The driver's command line, and the rule that it only ever targets loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::server::{CONTENDERS, Contender};

/// What `--help` prints.
pub const USAGE: &str = "\
usage: load [options]

Runs each contender (glibc, jemalloc, mimalloc, perfloc) under wrk: warm-up, calm, spike,
calm again; samples the server's RSS every 100 ms. Does so for --rounds rounds, every
contender once per round, the order rotated by one contender per round (round r starts at
contender r mod k). Writes server.md (medians over the rounds, their range, and every
round's calm requests/s), server.json (every round's raw results), server-rss.svg (the first
round) and server-latency.svg (medians) into --out.

The full run (3 rounds x 4 contenders x ~35 s, about 7 min):
  bash examples/server/load.sh
A quick check that it works (under a minute):
  bash examples/server/load.sh --rounds 1 --phase-secs 3 --warmup-secs 1 --out /tmp/load

options:
  --rounds N              rounds of every contender (default 3)
  --phase-secs N          length of the calm, spike and calm-again phases (default 10)
  --warmup-secs N         length of the warm-up, not reported (default 3)
  --host H                loopback address to serve on and load (default 127.0.0.1);
                          anything but 127.0.0.0/8, ::1 or localhost is refused
  --only NAME[,NAME]      run these contenders only (glibc, jemalloc, mimalloc, perfloc)
  --out DIR               where the report goes (default: docs/ of the repository)
  --calm-connections N    wrk connections in the calm phases (default 16)
  --spike-connections N   wrk connections in the spike (default 64)
  --from-json FILE        run nothing: rewrite the report and plots from a server.json
  --help                  this text";

/// The parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Rounds, each running every contender once.
    pub rounds: u32,
    /// Seconds of each measured phase (calm, spike, calm again).
    pub phase_secs: u64,
    /// Seconds of the warm-up before the calm phase.
    pub warmup_secs: u64,
    /// The loopback address the servers bind and wrk loads.
    pub host: IpAddr,
    /// The contenders to run, in the fixed order of [`CONTENDERS`].
    pub contenders: Vec<&'static Contender>,
    /// The report's directory.
    pub out: PathBuf,
    /// wrk connections in the calm phases.
    pub calm_connections: u32,
    /// wrk connections in the spike.
    pub spike_connections: u32,
    /// Re-render this `server.json` instead of running anything.
    pub from_json: Option<PathBuf>,
    /// The arguments as given, for the report's "exact command" line.
    pub args: Vec<String>,
}

/// Why the command line was not accepted; every one of them exits with code 2.
#[derive(Debug, PartialEq)]
pub enum OptionsError {
    /// `--help`: print the usage and stop.
    Help,
    /// A mistake in the arguments, in words.
    Invalid(String),
}

/// The default report directory: `docs/` of the repository this driver was built in.
fn default_out() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

impl Options {
    /// Parses the arguments after the program name (`--name value` or `--name=value`).
    pub fn parse(args: Vec<String>) -> Result<Options, OptionsError> {
        let mut options = Options {
            rounds: 3,
            phase_secs: 10,
            warmup_secs: 3,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            contenders: CONTENDERS.iter().collect(),
            out: default_out(),
            calm_connections: 16,
            spike_connections: 64,
            from_json: None,
            args: args.clone(),
        };
        let mut rest = args.into_iter();
        while let Some(arg) = rest.next() {
            if arg == "--help" || arg == "-h" {
                return Err(OptionsError::Help);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| rest.next())
                    .ok_or_else(|| OptionsError::Invalid(format!("{name} needs a value")))
            };
            match name.as_str() {
                "--rounds" => options.rounds = positive(&name, &value()?)?,
                "--phase-secs" => options.phase_secs = positive(&name, &value()?)?,
                "--warmup-secs" => options.warmup_secs = positive(&name, &value()?)?,
                "--host" => options.host = loopback(&value()?)?,
                "--only" => options.contenders = contenders(&value()?)?,
                "--out" => options.out = PathBuf::from(value()?),
                "--calm-connections" => options.calm_connections = positive(&name, &value()?)?,
                "--spike-connections" => options.spike_connections = positive(&name, &value()?)?,
                "--from-json" => options.from_json = Some(PathBuf::from(value()?)),
                _ => return Err(OptionsError::Invalid(format!("unknown option {name}"))),
            }
        }
        Ok(options)
    }
}

/// A whole number above zero.
fn positive<T: std::str::FromStr + PartialOrd + Default>(
    name: &str,
    value: &str,
) -> Result<T, OptionsError> {
    match value.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(OptionsError::Invalid(format!(
            "{name} wants a whole number above 0, not {value:?}"
        ))),
    }
}

/// The host as a loopback address, or why it is refused: this driver loads nothing but the
/// machine it runs on (127.0.0.0/8, `::1`, `localhost`).
pub fn loopback(host: &str) -> Result<IpAddr, OptionsError> {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let ip = if bare.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bare.parse::<IpAddr>().map_err(|_| {
            OptionsError::Invalid(format!(
                "--host {host:?} is not an IP address; only loopback \
                 (127.0.0.0/8, ::1, localhost) is allowed"
            ))
        })?
    };
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err(OptionsError::Invalid(format!(
            "refusing --host {host}: not a loopback address; this driver loads only \
             127.0.0.0/8, ::1 or localhost"
        )))
    }
}

/// `--only`'s list, kept in the fixed order of [`CONTENDERS`].
fn contenders(list: &str) -> Result<Vec<&'static Contender>, OptionsError> {
    let names: Vec<&str> = list.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if let Some(unknown) = names.iter().find(|n| !CONTENDERS.iter().any(|c| c.name == **n)) {
        let known: Vec<&str> = CONTENDERS.iter().map(|c| c.name).collect();
        return Err(OptionsError::Invalid(format!(
            "--only: no contender {unknown:?} (there are {})",
            known.join(", ")
        )));
    }
    if names.is_empty() {
        return Err(OptionsError::Invalid("--only needs at least one contender".into()));
    }
    Ok(CONTENDERS.iter().filter(|c| names.contains(&c.name)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, OptionsError> {
        Options::parse(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn loopback_addresses_are_accepted() {
        for host in ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "[::1]", "localhost"] {
            assert!(loopback(host).is_ok(), "{host}");
        }
        assert_eq!(loopback("LocalHost"), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    #[test]
    fn anything_else_is_refused() {
        for host in [
            "0.0.0.0",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "128.0.0.1",
            "::",
            "::ffff:127.0.0.1",
            "example.com",
            "localhost.example.com",
            "",
        ] {
            assert!(matches!(loopback(host), Err(OptionsError::Invalid(_))), "{host}");
        }
    }

    #[test]
    fn host_option_refuses_a_remote_target() {
        let err = parse(&["--host", "192.168.0.10"]).unwrap_err();
        let OptionsError::Invalid(message) = err else { panic!("not refused") };
        assert!(message.contains("not a loopback address"), "{message}");
    }

    #[test]
    fn defaults_and_values() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.rounds, o.phase_secs, o.warmup_secs), (3, 10, 3));
        assert_eq!((o.calm_connections, o.spike_connections), (16, 64));
        let names: Vec<_> = o.contenders.iter().map(|c| c.name).collect();
        assert_eq!(names, ["glibc", "jemalloc", "mimalloc", "perfloc"]);
        assert!(o.out.ends_with("../../docs"));

        let o =
            parse(&["--phase-secs=3", "--warmup-secs", "1", "--only", "perfloc,glibc"]).unwrap();
        assert_eq!((o.phase_secs, o.warmup_secs), (3, 1));
        let names: Vec<_> = o.contenders.iter().map(|c| c.name).collect();
        assert_eq!(names, ["glibc", "perfloc"], "kept in the fixed order");
        assert_eq!(o.args, ["--phase-secs=3", "--warmup-secs", "1", "--only", "perfloc,glibc"]);
        assert_eq!(parse(&["--rounds", "1"]).unwrap().rounds, 1);
        assert_eq!(parse(&["--rounds=5"]).unwrap().rounds, 5);
    }

    #[test]
    fn mistakes_are_named() {
        for args in [
            &["--phase-secs", "0"][..],
            &["--rounds", "0"],
            &["--rounds", "-1"],
            &["--rounds"],
            &["--phase-secs", "x"],
            &["--phase-secs"],
            &["--only", "tcmalloc"],
            &["--only", ","],
            &["--frobnicate"],
        ] {
            assert!(matches!(parse(args), Err(OptionsError::Invalid(_))), "{args:?}");
        }
        assert_eq!(parse(&["--help"]), Err(OptionsError::Help));
    }
}
