//! The global pool's settings from the environment, read once, at its first use:
//!
//! | variable | setting | value |
//! |---|---|---|
//! | `PERFLOC_RETAIN` | [`PoolBuilder::retain`] | a size: `4MiB`, `512KiB`, `1GiB`, `1048576` (bytes) |
//! | `PERFLOC_DECAY` | [`PoolBuilder::decay`] | a duration: `500ms`, `2s`, `1min`, `0`, `never` |
//! | `PERFLOC_LIMIT` | [`PoolBuilder::limit`] | a size, or `none` |
//! | `PERFLOC_FIRST_BLOCK` | [`PoolBuilder::first_block_size`] | a size (a power of two, at least 256 B, at most 256 GiB); the first top chunk grows to hold it if need be, and the OS must map that |
//! | `PERFLOC_MAX_BLOCK` | [`PoolBuilder::max_block_size`] | a size (a power of two, at least the first block's), or `none` |
//! | `PERFLOC_DEDICATED` | [`PoolBuilder::dedicated_threshold`] | a size (at least 4 KiB), or `none` |
//! | `PERFLOC_LEARN_FIRST_BLOCK` | [`PoolBuilder::learn_first_block`] | `on` or `off` (also `true`, `false`, `1`, `0`) |
//!
//! Sizes are whole numbers with a binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, any case) or
//! none (bytes); `KB`/`MB`/`GB` are refused as ambiguous. A value that does not parse, or
//! that the pool refuses (say a limit below 1 MiB), is reported on stderr, naming the
//! variable and the value, and that setting keeps its default; the others still apply.

use core::time::Duration;

use super::{Config, MAX_FIRST_BLOCK_SIZE, MIN_BLOCK_SIZE, PoolBuilder, check_size};

/// The variables, in the order they are read and reported.
pub(crate) const VARS: [&str; 7] = [
    "PERFLOC_RETAIN",
    "PERFLOC_DECAY",
    "PERFLOC_LIMIT",
    "PERFLOC_FIRST_BLOCK",
    "PERFLOC_MAX_BLOCK",
    "PERFLOC_DEDICATED",
    "PERFLOC_LEARN_FIRST_BLOCK",
];

const SIZE_EXAMPLES: &str = "a size such as 64MiB, 512KiB, 1GiB or 1048576 (bytes)";
const DURATION_EXAMPLES: &str = "a duration such as 500ms, 2s, 1min, 0 or never";

/// A size with an optional binary unit: `64MiB`, `512 KiB`, `1gib`, `4096`, `4096B`.
pub(crate) fn parse_bytes(value: &str) -> Result<usize, String> {
    let (number, unit) = split_number(value, SIZE_EXAMPLES)?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "k" | "kb" | "m" | "mb" | "g" | "gb" | "t" | "tb" => {
            return Err(format!(
                "unit `{unit}` is ambiguous (1000 or 1024?); write KiB, MiB, GiB or TiB"
            ));
        }
        _ => return Err(format!("unknown unit `{unit}`; expected {SIZE_EXAMPLES}")),
    };
    number
        .checked_mul(scale)
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| format!("`{}` is too large for this machine", value.trim()))
}

/// A duration: `500ms`, `2s`, `1min`, `0` (no unit needed), `never` (`Duration::MAX`).
pub(crate) fn parse_duration(value: &str) -> Result<Duration, String> {
    if value.trim().eq_ignore_ascii_case("never") {
        return Ok(Duration::MAX);
    }
    let (number, unit) = split_number(value, DURATION_EXAMPLES)?;
    match unit.to_ascii_lowercase().as_str() {
        "" if number == 0 => Ok(Duration::ZERO),
        "" => Err(format!("`{number}` needs a unit: ms, s or min (such as {number}ms)")),
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "min" => number
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{}` is too large", value.trim())),
        _ => Err(format!("unknown unit `{unit}`; expected {DURATION_EXAMPLES}")),
    }
}

/// Splits `value` into a whole number and the unit after it (spaces allowed around both).
fn split_number<'v>(value: &'v str, expected: &str) -> Result<(u64, &'v str), String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("the value is empty; expected {expected}"));
    }
    let digits = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    if digits == 0 {
        return Err(format!("`{value}` does not start with a number; expected {expected}"));
    }
    let (number, unit) = value.split_at(digits);
    if unit.starts_with(['.', ',']) {
        return Err(format!("`{value}` is not a whole number; use a smaller unit"));
    }
    let number = number.parse::<u64>().map_err(|_| format!("`{value}` is too large"))?;
    Ok((number, unit.trim()))
}

/// What one variable sets.
#[derive(Clone, Copy)]
enum Setting {
    Retain(usize),
    Decay(Duration),
    Limit(usize),
    FirstBlock(usize),
    MaxBlock(usize),
    Dedicated(usize),
    LearnFirstBlock(bool),
}

/// A switch: `on`, `true`, `1` or `off`, `false`, `0`, in any case.
fn parse_switch(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        _ => Err(format!("{value:?} is not a switch: expected on or off")),
    }
}

/// True for the words that mean "no limit": `none`, `unlimited`.
fn is_none(raw: &str) -> bool {
    ["none", "unlimited"].iter().any(|n| raw.trim().eq_ignore_ascii_case(n))
}

impl Setting {
    fn parse(var: &str, raw: &str) -> Result<Setting, String> {
        match var {
            "PERFLOC_RETAIN" => parse_bytes(raw).map(Setting::Retain),
            "PERFLOC_DECAY" => parse_duration(raw).map(Setting::Decay),
            "PERFLOC_LIMIT" if is_none(raw) => Ok(Setting::Limit(usize::MAX)),
            "PERFLOC_LIMIT" => parse_bytes(raw).map(Setting::Limit),
            "PERFLOC_MAX_BLOCK" if is_none(raw) => Ok(Setting::MaxBlock(usize::MAX)),
            "PERFLOC_MAX_BLOCK" => parse_bytes(raw).map(Setting::MaxBlock),
            "PERFLOC_DEDICATED" if is_none(raw) => Ok(Setting::Dedicated(usize::MAX)),
            "PERFLOC_DEDICATED" => parse_bytes(raw).map(Setting::Dedicated),
            "PERFLOC_LEARN_FIRST_BLOCK" => parse_switch(raw).map(Setting::LearnFirstBlock),
            // Checked on its own first, so that a refusal names the setting the variable
            // sets, not the first top chunk that `apply` raises to hold it.
            _ => {
                let bytes = parse_bytes(raw)?;
                check_size("first_block_size", bytes, MIN_BLOCK_SIZE, MAX_FIRST_BLOCK_SIZE)
                    .map_err(|err| err.to_string())?;
                Ok(Setting::FirstBlock(bytes))
            }
        }
    }

    fn apply(self, builder: PoolBuilder) -> PoolBuilder {
        match self {
            Setting::Retain(bytes) => builder.retain(bytes),
            Setting::Decay(decay) => builder.decay(decay),
            Setting::Limit(bytes) => builder.limit(bytes),
            Setting::MaxBlock(bytes) => builder.max_block_size(bytes),
            Setting::Dedicated(bytes) => builder.dedicated_threshold(bytes),
            Setting::LearnFirstBlock(on) => builder.learn_first_block(on),
            Setting::FirstBlock(bytes) => {
                // The first top chunk must hold a first block: raise it to fit.
                let top = builder.config.first_top_chunk_size.max(bytes);
                builder.first_block_size(bytes).first_top_chunk_size(top)
            }
        }
    }
}

/// One accepted variable: its name, its raw value and what it sets.
struct Accepted {
    var: &'static str,
    raw: String,
    setting: Setting,
}

/// The global pool's settings from variables looked up with `lookup` (the environment, or
/// a table in tests), and one message for each value ignored, naming the variable and the
/// value. The result is always valid: a refused value falls back to its default.
/// `can_map(bytes)` says whether the OS maps a region of that size now: a first block it
/// refuses would fail every chunk, so it is refused too.
pub(crate) fn settings(
    lookup: impl Fn(&str) -> Option<String>,
    can_map: impl Fn(usize) -> bool,
) -> (Config, Vec<String>) {
    let mut messages = Vec::new();
    let mut accepted = Vec::new();
    for var in VARS {
        let Some(raw) = lookup(var) else { continue };
        match Setting::parse(var, &raw) {
            Ok(setting) => accepted.push(Accepted { var, raw, setting }),
            Err(problem) => messages.push(ignored(var, &raw, &problem)),
        }
    }
    loop {
        let builder =
            accepted.iter().fold(PoolBuilder::new(), |builder, a| a.setting.apply(builder));
        let first_block = accepted.iter().position(|a| a.var == "PERFLOC_FIRST_BLOCK");
        match builder.checked() {
            Ok(config)
                if first_block.is_some()
                    && config.first_block_size > Config::DEFAULT.first_top_chunk_size
                    && !can_map(config.first_block_size) =>
            {
                let a = accepted.remove(first_block.expect("tested just above"));
                let problem = format!(
                    "the OS refused to map a first block of {} bytes",
                    config.first_block_size
                );
                messages.push(ignored(a.var, &a.raw, &problem));
            }
            Ok(config) => return (config, messages),
            Err(refused) => {
                let var = match refused.setting() {
                    "retain" => "PERFLOC_RETAIN",
                    "limit" => "PERFLOC_LIMIT",
                    "max_block_size" => "PERFLOC_MAX_BLOCK",
                    "dedicated_threshold" => "PERFLOC_DEDICATED",
                    _ => "PERFLOC_FIRST_BLOCK",
                };
                match accepted.iter().position(|a| a.var == var) {
                    Some(i) => {
                        let a = accepted.remove(i);
                        messages.push(ignored(a.var, &a.raw, &refused.to_string()));
                    }
                    // Unreachable: the defaults are valid, so some variable caused it.
                    None => {
                        messages
                            .push(format!("perfloc: ignoring every PERFLOC_ variable: {refused}"));
                        return (Config::DEFAULT, messages);
                    }
                }
            }
        }
    }
}

fn ignored(var: &str, raw: &str, problem: &str) -> String {
    format!("perfloc: ignoring {var}={raw:?}: {problem}; the default stays in force")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;

    #[test]
    fn sizes_in_every_unit() {
        assert_eq!(parse_bytes("1048576"), Ok(MIB));
        assert_eq!(parse_bytes("4096B"), Ok(4096));
        assert_eq!(parse_bytes("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_bytes("64MiB"), Ok(64 * MIB));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("2TiB"), Ok(2 << 40));
        assert_eq!(parse_bytes(" 64 mib "), Ok(64 * MIB), "spaces and any case");
        assert_eq!(parse_bytes("0"), Ok(0));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        let err = |v: &str| parse_bytes(v).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("lots").contains("does not start with a number"));
        assert!(err("-1MiB").contains("does not start with a number"));
        assert!(err("64MB").contains("ambiguous"));
        assert!(err("64k").contains("ambiguous"));
        assert!(err("64 parsecs").contains("unknown unit `parsecs`"));
        assert!(err("1.5GiB").contains("not a whole number"));
        assert!(err("64MiB!").contains("unknown unit"));
        assert!(err("99999999999999999999999").contains("too large"), "u64 overflow");
        assert!(err("17179869184GiB").contains("too large"), "overflow in the multiplication");
        assert!(err(&format!("{}TiB", u64::MAX >> 39)).contains("too large"));
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("2 S"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3min"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("never"), Ok(Duration::MAX));
        assert_eq!(parse_duration(" Never "), Ok(Duration::MAX));
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        let err = |v: &str| parse_duration(v).unwrap_err();
        assert!(err("").contains("empty"));
        assert!(err("500").contains("needs a unit"), "only 0 goes without one");
        assert!(err("soon").contains("does not start with a number"));
        assert!(err("1.5s").contains("not a whole number"));
        assert!(err("5h").contains("unknown unit `h`"));
        assert!(err("99999999999999999999999s").contains("too large"));
        assert!(err(&format!("{}min", u64::MAX)).contains("too large"));
    }

    #[test]
    fn the_learned_first_block_switch() {
        assert!(!from(&[]).0.learn_first_block, "off by default");
        for (raw, on) in
            [("off", false), ("FALSE", false), ("0", false), ("on", true), (" 1 ", true)]
        {
            let (config, messages) = from(&[("PERFLOC_LEARN_FIRST_BLOCK", raw)]);
            assert_eq!((config.learn_first_block, messages.len()), (on, 0), "{raw}");
        }
        let (config, messages) = from(&[("PERFLOC_LEARN_FIRST_BLOCK", "sometimes")]);
        assert!(!config.learn_first_block, "a bad value keeps the default");
        assert!(messages[0].contains("PERFLOC_LEARN_FIRST_BLOCK"), "{messages:?}");
        assert!(messages[0].contains("expected on or off"), "{messages:?}");
    }

    fn from(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        // The OS maps up to 1 TiB in these tests.
        settings(lookup, |bytes| bytes <= 1 << 40)
    }

    #[test]
    fn no_variables_give_the_defaults() {
        assert_eq!(from(&[]), (Config::DEFAULT, vec![]));
    }

    #[test]
    fn every_variable_applies() {
        let (config, messages) = from(&[
            ("PERFLOC_RETAIN", "8MiB"),
            ("PERFLOC_DECAY", "250ms"),
            ("PERFLOC_LIMIT", "1GiB"),
            ("PERFLOC_FIRST_BLOCK", "64KiB"),
        ]);
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!(config.retain, 8 * MIB);
        assert_eq!(config.decay, Duration::from_millis(250));
        assert_eq!(config.limit, 1 << 30);
        assert_eq!(config.first_block_size, 64 * KIB);
        assert_eq!(config.first_top_chunk_size, Config::DEFAULT.first_top_chunk_size);

        let (config, _) = from(&[("PERFLOC_DECAY", "never"), ("PERFLOC_LIMIT", "none")]);
        assert_eq!((config.decay, config.limit), (Duration::MAX, usize::MAX));
        let (config, _) = from(&[("PERFLOC_DECAY", "0")]);
        assert_eq!(config.decay, Duration::ZERO);
    }

    #[test]
    fn block_growth_variables_apply_and_are_checked() {
        let (config, messages) =
            from(&[("PERFLOC_MAX_BLOCK", "1MiB"), ("PERFLOC_DEDICATED", "256KiB")]);
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!((config.max_block_size, config.dedicated_threshold), (MIB, 256 * KIB));
        let (config, _) = from(&[("PERFLOC_MAX_BLOCK", "none"), ("PERFLOC_DEDICATED", "none")]);
        assert_eq!(config.max_block_size, crate::config::MAX_SIZE);
        assert_eq!(config.dedicated_threshold, usize::MAX);
        // A first block above the default cap raises it; one set below is refused.
        let (config, _) = from(&[("PERFLOC_FIRST_BLOCK", "256KiB")]);
        assert_eq!(config.max_block_size, 256 * KIB);
        let (config, messages) =
            from(&[("PERFLOC_FIRST_BLOCK", "256KiB"), ("PERFLOC_MAX_BLOCK", "64KiB")]);
        assert_eq!((config.first_block_size, config.max_block_size), (256 * KIB, 256 * KIB));
        assert!(messages[0].contains("PERFLOC_MAX_BLOCK=\"64KiB\""), "{messages:?}");
        assert!(messages[0].contains("max_block_size"), "{messages:?}");
        for (var, raw, says) in [
            ("PERFLOC_MAX_BLOCK", "100KiB", "power of two"),
            ("PERFLOC_DEDICATED", "1KiB", "smaller than the minimum"),
            ("PERFLOC_DEDICATED", "lots", "does not start with a number"),
        ] {
            let (config, messages) = from(&[(var, raw)]);
            assert_eq!(config, Config::DEFAULT);
            assert!(messages[0].contains(var) && messages[0].contains(says), "{messages:?}");
        }
    }

    #[test]
    fn a_first_block_larger_than_the_first_top_chunk_raises_it() {
        let (config, messages) = from(&[("PERFLOC_FIRST_BLOCK", "4MiB")]);
        assert!(messages.is_empty(), "{messages:?}");
        assert_eq!((config.first_block_size, config.first_top_chunk_size), (4 * MIB, 4 * MIB));
    }

    #[test]
    fn a_malformed_value_is_named_and_its_default_stays() {
        let (config, messages) =
            from(&[("PERFLOC_LIMIT", "64MB"), ("PERFLOC_DECAY", "2s"), ("PERFLOC_RETAIN", "")]);
        assert_eq!(config.limit, Config::DEFAULT.limit);
        assert_eq!(config.retain, Config::DEFAULT.retain);
        assert_eq!(config.decay, Duration::from_secs(2), "the good one still applies");
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("PERFLOC_RETAIN=\"\"") && messages[0].contains("empty"));
        assert!(messages[1].contains("PERFLOC_LIMIT=\"64MB\"") && messages[1].contains("MiB"));
        assert!(messages.iter().all(|m| m.contains("the default stays in force")));
        // As docs/configuration.md quotes it.
        assert_eq!(
            messages[1],
            "perfloc: ignoring PERFLOC_LIMIT=\"64MB\": unit `MB` is ambiguous (1000 or 1024?); \
             write KiB, MiB, GiB or TiB; the default stays in force"
        );
    }

    #[test]
    fn a_value_the_pool_refuses_is_named_and_its_default_stays() {
        // Parses, but is not a power of two.
        let (config, messages) =
            from(&[("PERFLOC_FIRST_BLOCK", "1000"), ("PERFLOC_LIMIT", "2GiB")]);
        assert_eq!(config.first_block_size, Config::DEFAULT.first_block_size);
        assert_eq!(config.limit, 2 << 30);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("PERFLOC_FIRST_BLOCK=\"1000\""));
        assert!(messages[0].contains("power of two"));

        // Retain above the limit: the retain goes, the limit stays.
        let (config, messages) = from(&[("PERFLOC_RETAIN", "64MiB"), ("PERFLOC_LIMIT", "16MiB")]);
        assert_eq!((config.limit, config.retain), (16 * MIB, 4 * MIB));
        assert!(messages[0].contains("PERFLOC_RETAIN=\"64MiB\""), "{messages:?}");

        // A limit below the first top chunk.
        let (config, messages) = from(&[("PERFLOC_LIMIT", "4KiB")]);
        assert_eq!(config, Config::DEFAULT);
        assert!(messages[0].contains("PERFLOC_LIMIT=\"4KiB\""), "{messages:?}");
    }

    #[test]
    fn a_first_block_that_could_never_be_served_is_refused_under_its_own_name() {
        for (raw, problem) in [
            ("4611686018427387904", "never be mapped"),
            ("2TiB", "never be mapped"),
            ("3MiB", "not a power of two"),
            ("0", "must not be zero"),
            ("128", "smaller than the minimum"),
        ] {
            let (config, messages) = from(&[("PERFLOC_FIRST_BLOCK", raw)]);
            assert_eq!(config, Config::DEFAULT, "{raw}");
            assert_eq!(messages.len(), 1, "{messages:?}");
            let message = &messages[0];
            assert!(message.contains(&format!("PERFLOC_FIRST_BLOCK={raw:?}")), "{message}");
            assert!(message.contains("`first_block_size`"), "{message}");
            assert!(!message.contains("first_top_chunk_size"), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn a_first_block_the_os_will_not_map_is_refused() {
        let vars = [("PERFLOC_FIRST_BLOCK", "64GiB"), ("PERFLOC_DECAY", "2s")];
        let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let (config, messages) = settings(lookup, |bytes| bytes <= 1 << 30);
        assert_eq!(config.first_block_size, Config::DEFAULT.first_block_size);
        assert_eq!(config.first_top_chunk_size, Config::DEFAULT.first_top_chunk_size);
        assert_eq!(config.decay, Duration::from_secs(2), "the others still apply");
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("PERFLOC_FIRST_BLOCK=\"64GiB\""), "{messages:?}");
        assert!(messages[0].contains("the OS refused to map"), "{messages:?}");
        // Only a first block larger than the default top chunk needs the trial.
        let (config, messages) = settings(
            |name| (name == "PERFLOC_FIRST_BLOCK").then(|| "64KiB".to_owned()),
            |_| panic!("no trial mapping for a first block within the default top chunk"),
        );
        assert_eq!((config.first_block_size, messages.len()), (64 * KIB, 0));
    }
}
