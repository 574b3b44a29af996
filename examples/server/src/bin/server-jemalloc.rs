//! The service with jemalloc as the global allocator (`--handler global` is its contender).

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    perfloc_server::main("jemalloc")
}
