//! The global pool's settings: `perfloc::configure_global` and the `PERFLOC_*` environment
//! variables. The global pool is process-wide and its settings are fixed at first use, so
//! each case runs in a child process of its own: the test re-runs this binary with the
//! environment it needs and one `#[ignore]`d child test, and checks its exit and stderr.

#![cfg(not(miri))] // Miri cannot spawn processes

use std::process::Command;
use std::time::Duration;

use perfloc::{ConfigureGlobalError, Pool};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Runs the child test `name` with `vars` set (and no other `PERFLOC_*` variable); returns
/// its stderr after checking that it passed.
fn run_child(name: &str, vars: &[(&str, &str)]) -> String {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"]);
    for var in ["PERFLOC_RETAIN", "PERFLOC_DECAY", "PERFLOC_LIMIT", "PERFLOC_FIRST_BLOCK"] {
        command.env_remove(var);
    }
    command.envs(vars.iter().copied());
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "child {name} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "child {name} did not run:\n{stdout}");
    stderr
}

/// The global pool's first block size, as a fresh chunk's capacity shows it.
fn first_block() -> usize {
    perfloc::chunk().stats().capacity_bytes
}

fn perfloc_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("perfloc:")).collect()
}

#[test]
fn environment_settings_apply() {
    let stderr = run_child(
        "child::environment_settings_apply",
        &[
            ("PERFLOC_FIRST_BLOCK", "64KiB"),
            ("PERFLOC_LIMIT", "8MiB"),
            ("PERFLOC_DECAY", "never"),
            ("PERFLOC_RETAIN", "2MiB"),
        ],
    );
    assert_eq!(perfloc_lines(&stderr), Vec::<&str>::new());
}

#[test]
fn a_malformed_value_is_reported_once_and_its_default_stays() {
    let stderr = run_child(
        "child::malformed_values_keep_the_defaults",
        &[("PERFLOC_FIRST_BLOCK", "64MB"), ("PERFLOC_LIMIT", "lots"), ("PERFLOC_DECAY", "0")],
    );
    let lines = perfloc_lines(&stderr);
    assert_eq!(lines.len(), 2, "one message per bad variable, once: {stderr}");
    assert!(lines.iter().any(|l| l.contains("PERFLOC_LIMIT=\"lots\"")), "{stderr}");
    assert!(lines.iter().any(|l| l.contains("PERFLOC_FIRST_BLOCK=\"64MB\"")), "{stderr}");
    assert!(lines.iter().all(|l| l.contains("the default stays in force")), "{stderr}");
}

#[test]
fn configure_global_beats_the_environment() {
    let stderr = run_child(
        "child::configure_global_first",
        &[("PERFLOC_FIRST_BLOCK", "64KiB"), ("PERFLOC_LIMIT", "8MiB")],
    );
    let lines = perfloc_lines(&stderr);
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].contains("ignoring PERFLOC_LIMIT=\"8MiB\"")
            || lines[1].contains("ignoring PERFLOC_LIMIT=\"8MiB\""),
        "{stderr}"
    );
    assert!(lines.iter().all(|l| l.contains("configure_global")), "{stderr}");
}

#[test]
fn configure_global_after_first_use_is_an_error() {
    let stderr = run_child("child::configure_global_too_late", &[]);
    assert_eq!(perfloc_lines(&stderr), Vec::<&str>::new());
}

/// Values a hostile or careless environment may hold: each is refused with a message naming
/// the variable and its value, and the child keeps running on the defaults.
const HOSTILE: &[(&str, &str)] = &[
    ("PERFLOC_FIRST_BLOCK", "4611686018427387904"), // 2^62: no OS maps it
    ("PERFLOC_FIRST_BLOCK", "2TiB"),
    ("PERFLOC_FIRST_BLOCK", "3MiB"), // not a power of two
    ("PERFLOC_FIRST_BLOCK", "0"),
    ("PERFLOC_FIRST_BLOCK", "18446744073709551616"), // past u64
    ("PERFLOC_LIMIT", "0"),
    ("PERFLOC_LIMIT", "4KiB"), // below the first top chunk
    ("PERFLOC_LIMIT", "-1"),
    ("PERFLOC_LIMIT", "99999999999TiB"),
    ("PERFLOC_RETAIN", "1.5GiB"),
    ("PERFLOC_RETAIN", "lots"),
    ("PERFLOC_DECAY", "1e9s"),
    ("PERFLOC_DECAY", "500"), // no unit
    ("PERFLOC_DECAY", "99999999999999999999min"),
    ("PERFLOC_DECAY", ""),
];

#[test]
fn every_hostile_value_is_reported_and_the_defaults_keep_working() {
    for (var, value) in HOSTILE {
        let stderr = run_child("child::running_on_the_defaults", &[(var, value)]);
        let lines = perfloc_lines(&stderr);
        assert_eq!(lines.len(), 1, "{var}={value:?}: one message:\n{stderr}");
        assert!(lines[0].contains(&format!("ignoring {var}={value:?}")), "{}", lines[0]);
        assert!(lines[0].ends_with("the default stays in force"), "{}", lines[0]);
    }
}

#[test]
fn configure_global_from_many_threads_at_once_names_the_winner() {
    // The window this guards (the pool set, its "configured" flag not yet) is narrow: a few
    // children, each with eight threads released at once.
    for _ in 0..5 {
        let stderr = run_child("child::configure_global_at_once", &[]);
        assert_eq!(perfloc_lines(&stderr), Vec::<&str>::new());
    }
}

/// The children: each runs only when a parent test above starts it.
mod child {
    use super::*;

    #[test]
    #[ignore = "run by environment_settings_apply in a child process"]
    fn environment_settings_apply() {
        assert_eq!(first_block(), 64 * KIB);
        let chunk = perfloc::chunk();
        assert!(chunk.try_alloc_layout(std::alloc::Layout::new::<[u8; 16 * MIB]>()).is_err());
        assert!(Pool::global().stats().mapped_bytes <= 8 * MIB, "the limit holds");
    }

    #[test]
    #[ignore = "run by a_malformed_value_is_reported_once_and_its_default_stays"]
    fn malformed_values_keep_the_defaults() {
        assert_eq!(first_block(), 16 * KIB, "the default first block");
        for _ in 0..3 {
            // No limit (the default): 64 MiB fits.
            let chunk = Pool::global().chunk();
            chunk.alloc_slice_copy(&vec![1u8; 64 * MIB]);
        }
        // The good variable still applied: with `PERFLOC_DECAY=0` the 64 MiB went back to
        // the OS as its chunk dropped (with the default 1 s decay it would still be mapped).
        let stats = Pool::global().stats();
        assert!(stats.mapped_bytes - stats.purged_bytes < 64 * MIB, "{stats}");
    }

    #[test]
    #[ignore = "run by configure_global_beats_the_environment"]
    fn configure_global_first() {
        let bad = perfloc::configure_global(Pool::builder().first_block_size(1000));
        assert!(
            matches!(bad, Err(ConfigureGlobalError::Invalid(ref e)) if e.setting() == "first_block_size")
        );
        perfloc::configure_global(
            Pool::builder().first_block_size(32 * KIB).decay(Duration::from_millis(100)),
        )
        .unwrap();
        assert_eq!(first_block(), 32 * KIB, "the program's setting, not PERFLOC_FIRST_BLOCK");
        let chunk = perfloc::chunk();
        chunk.alloc_slice_copy(&vec![1u8; 16 * MIB]); // PERFLOC_LIMIT=8MiB was not applied
        let again = perfloc::configure_global(Pool::builder()).unwrap_err();
        assert_eq!(again, ConfigureGlobalError::AlreadyConfigured);
        assert!(again.to_string().contains("second time"), "{again}");
        assert_eq!(first_block(), 32 * KIB, "unchanged");
    }

    #[test]
    #[ignore = "run by every_hostile_value_is_reported_and_the_defaults_keep_working"]
    fn running_on_the_defaults() {
        assert_eq!(first_block(), 16 * KIB, "the default first block");
        for _ in 0..3 {
            let chunk = perfloc::chunk();
            chunk.alloc_slice_copy(&vec![1u8; 4 * MIB]); // no limit, the default
        }
        let stats = Pool::global().stats();
        assert_eq!(stats.top_chunk_stats[0].size, MIB, "the default first top chunk");
        assert_eq!(stats.live_chunks, 0);
    }

    #[test]
    #[ignore = "run by configure_global_from_many_threads_at_once_names_the_winner"]
    fn configure_global_at_once() {
        let start = std::sync::Barrier::new(8);
        let results: Vec<_> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        perfloc::configure_global(Pool::builder())
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        for result in results.iter().filter(|r| r.is_err()) {
            assert_eq!(*result, Err(ConfigureGlobalError::AlreadyConfigured));
        }
    }

    #[test]
    #[ignore = "run by configure_global_after_first_use_is_an_error"]
    fn configure_global_too_late() {
        drop(perfloc::chunk());
        let late = perfloc::configure_global(Pool::builder().first_block_size(32 * KIB));
        let err = late.unwrap_err();
        assert_eq!(err, ConfigureGlobalError::AlreadyInUse);
        assert!(err.to_string().contains("first use"), "{err}");
        assert_eq!(first_block(), 16 * KIB, "the settings did not change");
        // From another thread too: the global pool is process-wide.
        let from_thread = std::thread::spawn(|| perfloc::configure_global(Pool::builder()));
        assert_eq!(from_thread.join().unwrap(), Err(ConfigureGlobalError::AlreadyInUse));
    }
}
