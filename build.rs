//! Build-time probes, each setting a `cfg` for the crate:
//!
//! - `cfg(perfloc_asan)`: an AddressSanitizer build (`-Zsanitizer=address` in the rustc
//!   flags); the pool then poisons the memory it does not lend out.
//! - `cfg(perfloc_allocator_api)`: this compiler accepts `#![feature(allocator_api)]` (a
//!   nightly toolchain, or `RUSTC_BOOTSTRAP=1`). The crate then enables that feature, so it
//!   still compiles when some crate in the graph turns on `allocator-api2/nightly`, which
//!   makes `allocator_api2::alloc::Allocator` a re-export of the unstable
//!   `core::alloc::Allocator`. No Cargo feature can tell a crate that a dependency's feature
//!   is on; asking the compiler itself is what works whoever enables it.
//!
//! perfloc's own `nightly` feature needs that compiler: without it the build stops here
//! with a message saying so, rather than with `E0554` deep in the crate.

use std::env;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perfloc_asan)");
    println!("cargo::rustc-check-cfg=cfg(perfloc_allocator_api)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rerun-if-env-changed=RUSTC_BOOTSTRAP");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').filter(|flag| !flag.is_empty()).collect();
    if flags.iter().any(|flag| flag.contains("sanitizer=address")) {
        println!("cargo::rustc-cfg=perfloc_asan");
    }

    let allocator_api = compiles(
        "#![feature(allocator_api)]\n#![no_std]\npub use core::alloc::Allocator;\n",
        &flags,
    );
    if allocator_api {
        println!("cargo::rustc-cfg=perfloc_allocator_api");
    } else if env::var_os("CARGO_FEATURE_NIGHTLY").is_some() {
        eprintln!(
            "perfloc: the `nightly` feature needs a nightly toolchain (`cargo +nightly ...`): \
             this compiler does not accept `#![feature(allocator_api)]`"
        );
        std::process::exit(1);
    }
}

/// Whether the compiler cargo uses for this crate accepts `source` as a library, with the
/// same target and flags.
fn compiles(source: &str, flags: &[&str]) -> bool {
    let rustc = PathBuf::from(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    let Some(out_dir) = env::var_os("OUT_DIR") else { return false };
    // A wrapper such as sccache runs the compiler; respect it as cargo does.
    let mut command = match env::var_os("RUSTC_WRAPPER").filter(|w| !w.is_empty()) {
        Some(wrapper) => {
            let mut command = Command::new(wrapper);
            command.arg(&rustc);
            command
        }
        None => Command::new(&rustc),
    };
    command
        .args(["--crate-name=perfloc_probe", "--crate-type=lib", "--emit=metadata", "--out-dir"])
        .arg(&out_dir)
        .args(flags)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(target) = env::var_os("TARGET") {
        command.arg("--target").arg(target);
    }
    let Ok(mut child) = command.spawn() else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        if stdin.write_all(source.as_bytes()).is_err() {
            let _ = child.kill();
        }
    }
    child.wait().is_ok_and(|status| status.success())
}
