//! The service on glibc's malloc, the system allocator (no `#[global_allocator]`): perfloc's
//! contender with `--handler chunk`, glibc's with `--handler global`.

fn main() -> std::process::ExitCode {
    perfloc_server::main("glibc")
}
