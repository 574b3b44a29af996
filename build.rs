//! Detects an AddressSanitizer build (`-Zsanitizer=address` in the rustc flags) and sets
//! `cfg(perfloc_asan)`, under which the pool poisons the memory it does not lend out.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(perfloc_asan)");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.split('\x1f').any(|flag| flag.contains("sanitizer=address")) {
        println!("cargo::rustc-cfg=perfloc_asan");
    }
}
