//! # perfloc: request-scoped arenas from a pool of OS memory
//!
//! perfloc gives request-scoped data a home. A **pool** maps big regions from the OS with
//! `mmap` (**top chunks**, each new one twice the size of the last) and lends pieces of them
//! (**blocks**) to **process chunks**. A process chunk ([`Chunk`]) is one scope's arena: it
//! bumps a pointer through its blocks and implements [`allocator_api2::alloc::Allocator`]
//! (through `&Chunk`), so `Vec`, `Box` and `hashbrown::HashMap` can live in it. When the
//! scope ends, every block goes back to the pool at once, with no system call and no
//! per-object free, and the next scope reuses them.
//!
//! These docs follow the README's order. The pages they name are Markdown files under
//! `docs/`, in the repository and in the published crate ([Documentation](#documentation)).
//!
//! ## Collections and versions
//!
//! `&Chunk` implements allocator-api2 0.2's `Allocator`, the one hashbrown 0.17 uses; the
//! crate re-exports both ([`allocator_api2`], [`hashbrown`]) so that collections named
//! through them always match, and names the common ones: [`Vec`], [`Box`], [`HashMap`],
//! [`HashSet`]. `cargo add allocator-api2` picks 0.4, a different trait: allocator-api2
//! 0.3's and 0.4's traits, and std's on nightly, are [features](#features)
//! (`docs/guide.md`, "Collections and versions").
//!
//! ## A request scope
//!
//! ```
//! let chunk = perfloc::chunk(); // a process chunk from the global pool
//! // `perfloc::Vec<T>` is `allocator_api2::vec::Vec<T, &Chunk>`; see the aliases above.
//! let mut ids: perfloc::Vec<u32> = perfloc::Vec::new_in(&chunk);
//! ids.extend([7, 8, 9]);
//! // hashbrown's map infers its allocator from `new_in`'s argument.
//! let mut headers = perfloc::hashbrown::HashMap::new_in(&chunk);
//! headers.insert("host", "example.org");
//! let body = perfloc::Box::new_in([0u8; 256], &chunk);
//! assert_eq!((ids.len(), headers["host"], body.len()), (3, "example.org", 256));
//! // The collections drop first (the borrow checker insists), then the chunk: every
//! // block it used goes back to the pool at once.
//! ```
//!
//! [`String`] is a growable UTF-8 string in any allocator (`String<&Chunk>`), growing in
//! place while it is the chunk's newest allocation; [`format_in!`] formats into one, and
//! [`Chunk::alloc_fmt`] formats straight into the chunk. [`vec_in!`] and
//! [`CollectIn::collect_in`] build an `allocator_api2::vec::Vec` in a chunk.
//!
//! ```
//! use perfloc::{CollectIn, format_in, vec_in};
//!
//! let chunk = perfloc::chunk();
//! let status = format_in!(&chunk, "{} {}", 404, "Not Found");
//! let line: &str = chunk.alloc_fmt(format_args!("HTTP/1.1 {status}"));
//! let codes = vec_in![in &chunk; 200u16, 404];
//! let words = line.split(' ').collect_in::<allocator_api2::vec::Vec<_, _>>(&chunk);
//! assert_eq!((codes[1], words.len()), (404, 4));
//! ```
//!
//! Values placed with [`Chunk::alloc`] and friends never have their destructors run (as
//! with bumpalo); values in `Box`, `Vec` or `HashMap` in a chunk are dropped by those
//! collections as usual.
//!
//! ## Async handlers: `SyncChunk`
//!
//! A [`Chunk`] is for one thread at a time (`Send`, not `Sync`: its bump pointer is a
//! `Cell`), so a future holding a collection in one across `.await` cannot be spawned on a
//! multi-thread runtime. A [`SyncChunk`] ([`sync_chunk()`], [`Pool::sync_chunk`]) is
//! `Send + Sync`: its bump is a compare-and-swap on an atomic cursor, so threads may
//! allocate from it at once and async tasks may hold collections in it across `.await`.
//! [`Chunk`]'s fast path has no atomic and is the cheaper one (`docs/guide.md`, "`Chunk`
//! or `SyncChunk`").
//!
//! **Reading compiler errors**: [`Chunk`] and [`SyncChunk`] are aliases of one type,
//! [`ProcessChunk`], over its bump state, so errors name them by that: `ProcessChunk<'_,
//! LocalBump>` is a `Chunk`, `ProcessChunk<'_, SharedBump>` a `SyncChunk`, and `&'c
//! ProcessChunk<'p, K>` is the allocator a collection holds.
//!
//! ## Nested scopes and a cap per request
//!
//! [`ProcessChunk::scoped`] (or [`ProcessChunk::checkpoint`] and
//! [`ProcessChunk::rewind_to`]) opens a scope inside a chunk, needing no block from the
//! pool, whose checkpoints no other chunk accepts; [`Chunk::child`] makes a nested chunk;
//! [`Chunk::reset`] forgets everything and keeps the largest block.
//! [`PoolBuilder::chunk_limit`] caps what one chunk may hold. At the cap, that chunk's
//! allocations fail with [`AllocError`] and the pool and every other chunk go on. The
//! fallible paths (`try_reserve`, the `try_` methods, `write!` into a [`String`],
//! [`VecWriter`], the serde derive) return an error; allocator-api2's `Vec::push` and
//! `extend`, and [`format_in!`], abort the process, as std's collections do.
//! [`ProcessChunk::refused`] tells "cap reached" from "malformed".
//!
//! Allocation failure is [`AllocError`]: `try_` methods and the `Allocator` methods return
//! it, the others panic with a message (as `Vec::push` aborts). `Vec::try_reserve` returns
//! allocator-api2's [`TryReserveError`](allocator_api2::collections::TryReserveError)
//! (whose kind tells a failed allocation from a capacity overflow). A bad setting is a
//! [`ConfigError`] naming it; [`configure_global`] too late is a [`ConfigureGlobalError`].
//! After any error the pool keeps working.
//!
//! ```
//! let pool = perfloc::Pool::builder().limit(1 << 20).build()?;
//! let chunk = pool.chunk();
//! let mut v: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
//! assert!(v.try_reserve(64 << 20).is_err()); // a TryReserveError, past the limit
//! let big = core::alloc::Layout::from_size_align(4 << 20, 8).unwrap();
//! assert!(chunk.try_alloc_layout(big).is_err()); // an AllocError
//! # Ok::<(), perfloc::ConfigError>(())
//! ```
//!
//! ## Request data: serde
//!
//! With the feature `serde`, collections in a chunk serialize, and
//! `perfloc::serde::DeserializeIn` deserializes into a chunk (borrowing text from the input
//! where it can), with every growth fallible; the feature `derive` adds
//! `#[derive(perfloc::DeserializeIn)]`. `docs/web-service.md` walks through an axum service
//! with a chunk per request.
//!
//! ## Results
//!
//! The README's results table compares perfloc with bumpalo, bump-scope, glibc, jemalloc
//! and mimalloc; the method and every figure are in `docs/benchmarks.md` (speed,
//! instructions), `docs/memory.md` (memory per request), and `docs/server-method.md` with
//! `docs/server.md` (an HTTP server under load).
//!
//! ## How it works
//!
//! - **Top chunks.** The [`Pool`] keeps a list of regions mapped from the OS, oldest first.
//!   When none has a free block big enough, it maps a new one twice the size of the last,
//!   or, for one huge request, just big enough for it, without changing the doubling.
//! - **Blocks.** Blocks are pieces of a top chunk, managed by a buddy system: they can come
//!   back in any order, from any thread, and merge with their free neighbours, so later
//!   chunks reuse them without a system call. Regular blocks are powers of two; dedicated
//!   blocks are whole pages.
//! - **Process chunks and successor links.** A [`Chunk`] takes its first block from the
//!   pool and bumps upward in it. When the block is full it takes a successor and links it
//!   from the old block's header; successors start at half the first block and double up
//!   to [`PoolBuilder::max_block_size`]. Bumping upward lets the newest allocation grow and
//!   shrink in place.
//! - **Dedicated blocks.** An allocation from [`PoolBuilder::dedicated_threshold`] on, and
//!   a vector that outgrows its place, get a block of their own, sized in pages. It grows
//!   in place while the memory above it is free, and goes back to the pool as soon as the
//!   allocation is freed or moves: a request's chunk holds little more than its data.
//! - **Two kinds of chunk.** [`Chunk`] and [`SyncChunk`] are both [`ProcessChunk`]s, one
//!   implementation over two bump states.
//! - **Local slots and shards.** Each thread keeps the first blocks of each pool it uses in
//!   a slot of its own, so a scope made and dropped in steady state takes no lock and no
//!   atomic read-modify-write; other blocks go through small per-thread-group caches
//!   (shards), so they take no pool-wide lock.
//! - **Downsizing.** Free memory above [`PoolBuilder::retain`] that has stayed free for
//!   [`PoolBuilder::decay`] goes back to the OS by itself (idle top chunks unmapped, long-free
//!   blocks purged with `madvise`); [`Pool::trim`] does it at once (`docs/downsizing.md`).
//!
//! The whole design, with a diagram: `docs/design.md`.
//!
//! ## Settings and the global pool
//!
//! [`PoolBuilder`] makes a pool of your own. [`chunk()`] and [`sync_chunk()`] use
//! [`Pool::global`], whose settings come from [`configure_global`] (before its first use)
//! or from these environment variables, read once at its first use (every setting, its
//! range and what it trades: `docs/configuration.md`):
//!
//! | variable | setting | accepts | refused (reported, the default kept) |
//! |---|---|---|---|
//! | `PERFLOC_RETAIN` | [`PoolBuilder::retain`] | a size: `4MiB`, `512KiB`, `1048576` (bytes); default 4 MiB | above the limit |
//! | `PERFLOC_DECAY` | [`PoolBuilder::decay`] | a duration: `500ms`, `2s`, `1min`, `0`, `never`; default 1 s; one longer than the process has lived gives nothing back yet | a number without a unit (but `0`), other units |
//! | `PERFLOC_LIMIT` | [`PoolBuilder::limit`] | a size, or `none` (the default) | below the first top chunk (1 MiB by default) |
//! | `PERFLOC_FIRST_BLOCK` | [`PoolBuilder::first_block_size`] | a power of two from 256 B ([`MIN_BLOCK_SIZE`]) to 256 GiB ([`MAX_FIRST_BLOCK_SIZE`]); default 16 KiB; the first top chunk grows to hold it | other sizes, or one the OS will not map |
//! | `PERFLOC_MAX_BLOCK` | [`PoolBuilder::max_block_size`] | a power of two, at least the first block; or `none` (no cap); default 64 KiB (or the first block, if larger) | other sizes, below the first block |
//! | `PERFLOC_DEDICATED` | [`PoolBuilder::dedicated_threshold`] | a size from 4 KiB ([`MIN_DEDICATED_THRESHOLD`]), or `none`; default 32 KiB | below 4 KiB |
//! | `PERFLOC_LEARN_FIRST_BLOCK` | [`PoolBuilder::learn_first_block`] | `on`, `off`, `true`, `false`, `1`, `0`, any case; default off | anything else |
//!
//! Sizes are whole numbers with a binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`, any case)
//! or none (bytes); `KB`, `MB` and `GB` are refused as ambiguous, and so is anything that
//! does not parse (`-1`, `1.5GiB`, a number past `u64`). A refused value is reported on
//! stderr with the variable's name and value, that setting keeps its default, the others
//! still apply, and the program goes on.
//!
//! ## Features
//!
//! - `allocator-api2-03`, `allocator-api2-04`: `&Chunk` and `&SyncChunk` also implement
//!   those versions' `Allocator` traits (re-exported as `perfloc::allocator_api2_03` and
//!   `perfloc::allocator_api2_04`).
//! - `nightly` (nightly toolchain): std's `core::alloc::Allocator`, for
//!   `std::vec::Vec::new_in(&chunk)` and `Box::new_in`. It turns on `allocator-api2/nightly`
//!   (so allocator-api2 0.2's trait *is* std's and one impl serves both) and
//!   `hashbrown/nightly`. perfloc also compiles when another crate in the graph turns on
//!   `allocator-api2/nightly`: its build script then enables `feature(allocator_api)`.
//!   hashbrown 0.17.2 builds its `nightly` only on a nightly where std's `Allocator` is
//!   stable; on an older one it fails with `E0658` in hashbrown's own code. There, keep
//!   hashbrown at 0.17.1: `cargo update -p hashbrown --precise 0.17.1`.
//! - `serde`: `Serialize` for [`String`], and allocator-api2's and hashbrown's `serde`
//!   features, so collections in a chunk serialize with perfloc as the only dependency;
//!   serialize into a chunk through [`VecWriter`], which fails instead of aborting at a
//!   chunk's limit. `perfloc::serde::DeserializeIn` deserializes into a chunk (borrowing text
//!   from the input where it can), with every growth fallible.
//! - `derive` (implies `serde`): `#[derive(perfloc::DeserializeIn)]` for your structs and
//!   enums, with `rename`, `default`, `skip` and `alloc`.
//! - `check-invariants`: the pool runs [`Pool::check`] after every change to its
//!   bookkeeping and panics on a violation (slow; for chasing a bug).
//! - `fault-injection`: `perfloc::fault_injection` makes `mmap`/`madvise` fail on purpose,
//!   for tests of code that must survive it.
//!
//! `cargo doc --all-features` includes `nightly`, so it needs `cargo +nightly`. On stable,
//! `cargo doc --features allocator-api2-03,allocator-api2-04,fault-injection,derive` builds
//! the docs with every feature that has an API (docs.rs's set).
//!
//! ## Documentation
//!
//! Under `docs/`: `guide.md` (versions, text, scopes, caps, errors), `design.md` (how it
//! works), `configuration.md` (every setting and variable, and the features),
//! `web-service.md` (an axum service), `benchmarks.md` (speed and instructions, the misses
//! and why), `memory.md` (what a request's chunk holds), `downsizing.md` (giving memory
//! back), `server-method.md` and `server.md` (an HTTP server under load), `testing.md` (how
//! it is tested).

#![warn(missing_docs)]
// A nightly compiler (see build.rs): allocator-api2's trait may be std's unstable one. When
// it is not (no crate turned on `allocator-api2/nightly`), the feature goes unused.
#![cfg_attr(perfloc_allocator_api, feature(allocator_api))]
#![cfg_attr(perfloc_allocator_api, allow(unknown_lints, unused_features))]

mod aliases;
mod alloc_impl;
mod asan;
mod buddy;
mod bump;
mod chunk;
mod collect;
mod config;
mod direct;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
#[cfg_attr(loom, allow(dead_code))]
mod global;
mod os;
mod pool;
#[cfg(feature = "serde")]
pub mod serde;
mod stats;
mod string;
mod sync;
mod top_chunk;
mod writer;

pub use aliases::{Box, HashMap, HashSet, Vec};
/// The allocator-api2 (0.2) whose `Allocator` `&Chunk` implements: name collections through
/// it (`perfloc::allocator_api2::vec::Vec`) and they always match perfloc's.
pub use allocator_api2;
pub use allocator_api2::alloc::AllocError;
/// allocator-api2 0.3, whose `Allocator` `&Chunk` also implements (feature `allocator-api2-03`).
#[cfg(feature = "allocator-api2-03")]
pub use allocator_api2_03;
/// allocator-api2 0.4, whose `Allocator` `&Chunk` also implements (feature `allocator-api2-04`).
#[cfg(feature = "allocator-api2-04")]
pub use allocator_api2_04;
pub use chunk::{
    BumpState, Checkpoint, CheckpointError, Chunk, LocalBump, ProcessChunk, SharedBump, SyncChunk,
};
pub use collect::{CollectIn, FromIteratorIn, TryFromIteratorIn};
pub use config::{
    ConfigError, MAX_FIRST_BLOCK_SIZE, MIN_BLOCK_SIZE, MIN_DEDICATED_THRESHOLD, PoolBuilder,
};
pub use direct::AllocOrInitError;
pub use global::{ConfigureGlobalError, configure_global};
/// The hashbrown (0.17, with its `allocator-api2` feature) whose maps take a `&Chunk`.
pub use hashbrown;
/// `#[derive(DeserializeIn)]` (feature `derive`): implements [`serde::DeserializeIn`] for a
/// struct with named fields or an enum of unit and newtype variants; see [`serde`] for an
/// example and the attributes (`rename`, `default`, `skip`, `alloc`). Other shapes are a
/// compile error that says so:
///
/// ```compile_fail
/// #[derive(perfloc::DeserializeIn)]
/// struct Pair(u32, u32); // "DeserializeIn derives for structs with named fields and for enums"
/// ```
#[cfg(feature = "derive")]
pub use perfloc_derive::DeserializeIn;
pub use pool::Pool;
pub use stats::{ChunkStats, PoolStats, TopChunkStats};
pub use string::{FromUtf8Error, String};
pub use writer::VecWriter;

/// What the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use allocator_api2::vec::Vec;
    #[cfg(feature = "serde")]
    pub use serde;
}

#[doc(hidden)]
pub use string::format_in as __format_in;
#[doc(hidden)]
pub use string::try_format_in as __try_format_in;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The examples of the pages under `docs/` that have Rust snippets, compiled and run too.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
#[doc = include_str!("../docs/configuration.md")]
#[doc = include_str!("../docs/design.md")]
struct DocsDoctests;

/// A process chunk from the global pool: `Pool::global().chunk()`.
///
/// ```
/// let chunk = perfloc::chunk();
/// let greeting = chunk.alloc_str("hello");
/// let mut v: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
/// v.extend_from_slice(greeting.as_bytes());
/// assert_eq!(v, b"hello");
/// ```
///
/// # Panics
///
/// Panics if the pool cannot provide the chunk's first block.
pub fn chunk() -> Chunk<'static> {
    Pool::global().chunk()
}

/// A [`SyncChunk`] from the global pool: `Pool::global().sync_chunk()`.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let chunk = perfloc::sync_chunk();
/// let mut v: Vec<u32, &perfloc::SyncChunk> = Vec::new_in(&chunk);
/// v.push(1);
/// std::thread::scope(|s| {
///     s.spawn(|| assert_eq!(v[0], 1)); // `Vec<u32, &SyncChunk>` is `Sync`
/// });
/// ```
///
/// # Panics
///
/// Panics if the pool cannot provide the chunk's first block.
pub fn sync_chunk() -> SyncChunk<'static> {
    Pool::global().sync_chunk()
}
