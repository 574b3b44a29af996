//! Integration tests, one binary: each module covers one behaviour of the crate.

mod allocator;
mod asan;
mod bad_input;
mod checkpoints;
mod chunk_limits;
mod dedicated_blocks;
mod direct;
mod downsizing;
mod faults;
mod limits;
mod local_slots;
mod model;
mod process_chunks;
mod scopes;
mod stats;
mod stress;
mod string;
mod sync_chunk;
mod system_calls;
mod threads;
mod top_chunks;
mod trust;
mod util;
