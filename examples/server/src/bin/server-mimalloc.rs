//! The service with mimalloc as the global allocator (`--handler global` is its contender).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    perfloc_server::main("mimalloc")
}
