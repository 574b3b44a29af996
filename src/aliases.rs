//! Short names for collections in a chunk: [`Vec`], [`Box`], [`HashMap`] and [`HashSet`].
//!
//! Each is the allocator-api2 or hashbrown type (the versions perfloc re-exports as
//! [`crate::allocator_api2`] and [`crate::hashbrown`]) with `&'c ProcessChunk<'c, B>` as its
//! allocator, where `B` is the chunk's kind: [`LocalBump`] (a [`Chunk`](crate::Chunk), the
//! default) or [`SharedBump`](crate::SharedBump) (a [`SyncChunk`](crate::SyncChunk)).
//!
//! One lifetime `'c` serves for the borrow of the chunk and for its pool: a
//! `ProcessChunk<'pool, B>` only holds a `&'pool Pool`, so it is covariant in `'pool`, and
//! a `&'c Chunk<'pool>` (with `'pool` outliving `'c`, as it always does) is a
//! `&'c Chunk<'c>`. The aliases therefore fit chunks of the global pool
//! (`Chunk<'static>`) and of a pool of your own alike.
//!
//! They are named like std's `Vec` and `Box`: write them with their path (`perfloc::Vec`)
//! rather than bringing them in with `use perfloc::*`, which would shadow std's.

use crate::{LocalBump, ProcessChunk};

/// An [`allocator_api2::vec::Vec`] in a chunk: `perfloc::Vec<'c, T>` for a
/// [`Chunk`](crate::Chunk), `perfloc::Vec<'c, T, SharedBump>` for a
/// [`SyncChunk`](crate::SyncChunk).
///
/// One lifetime serves for the borrow of the chunk and for its pool: a `&'c Chunk<'pool>`
/// is a `&'c Chunk<'c>` (a chunk only holds a `&'pool Pool`, so it is covariant in
/// `'pool`), so the alias fits chunks of the global pool and of a pool of your own alike.
/// It is named like std's `Vec`: write it with its path rather than `use perfloc::*`.
///
/// ```
/// let pool = perfloc::Pool::new(); // a pool of your own: its chunks are `Chunk<'pool>`
/// let chunk = pool.chunk();
/// let mut ids: perfloc::Vec<u32> = perfloc::Vec::new_in(&chunk);
/// ids.extend([7, 8, 9]);
/// assert_eq!(ids, [7, 8, 9]);
///
/// // A function that fills a vector in the caller's chunk, whatever pool it came from.
/// fn squares<'c>(chunk: &'c perfloc::Chunk<'_>, n: u64) -> perfloc::Vec<'c, u64> {
///     let mut v = perfloc::Vec::with_capacity_in(n as usize, chunk);
///     v.extend((0..n).map(|i| i * i));
///     v
/// }
/// assert_eq!(squares(&chunk, 4), [0, 1, 4, 9]);
/// assert_eq!(squares(&perfloc::chunk(), 3), [0, 1, 4]); // the global pool's `Chunk<'static>`
///
/// // A `SyncChunk`'s vector: name its kind.
/// let shared = perfloc::sync_chunk();
/// let mut v: perfloc::Vec<u8, perfloc::SharedBump> = perfloc::Vec::new_in(&shared);
/// v.push(1);
/// std::thread::scope(|s| {
///     s.spawn(|| assert_eq!(v[0], 1));
/// });
/// ```
pub type Vec<'c, T, B = LocalBump> = allocator_api2::vec::Vec<T, &'c ProcessChunk<'c, B>>;

/// An [`allocator_api2::boxed::Box`] in a chunk; see [`Vec`] for the parameters.
///
/// ```
/// let pool = perfloc::Pool::new();
/// let chunk = pool.chunk();
/// let body: perfloc::Box<[u8; 256]> = perfloc::Box::new_in([0; 256], &chunk);
/// assert_eq!(body.len(), 256);
///
/// let shared = perfloc::sync_chunk();
/// let n: perfloc::Box<u64, perfloc::SharedBump> = perfloc::Box::new_in(7, &shared);
/// assert_eq!(*n, 7);
/// ```
pub type Box<'c, T, B = LocalBump> = allocator_api2::boxed::Box<T, &'c ProcessChunk<'c, B>>;

/// A [`hashbrown::HashMap`] in a chunk, with hashbrown's default hasher; see [`Vec`] for
/// the parameters.
///
/// ```
/// let chunk = perfloc::chunk();
/// let mut headers: perfloc::HashMap<&str, &str> = perfloc::HashMap::new_in(&chunk);
/// headers.insert("host", "example.org");
/// assert_eq!(headers["host"], "example.org");
///
/// // Without any annotation, `new_in` infers the allocator from its argument.
/// let mut counts = hashbrown::HashMap::new_in(&chunk);
/// *counts.entry("a").or_insert(0) += 1;
/// assert_eq!(counts["a"], 1);
///
/// let pool = perfloc::Pool::new();
/// let shared = pool.sync_chunk();
/// let mut m: perfloc::HashMap<u32, u32, perfloc::SharedBump> = perfloc::HashMap::new_in(&shared);
/// m.insert(1, 2);
/// assert_eq!(m[&1], 2);
/// ```
///
/// A *partial* annotation with hashbrown's own type fixes the allocator to the global one,
/// and does not compile; use this alias (or no annotation) instead:
///
/// ```compile_fail,E0308
/// let chunk = perfloc::chunk();
/// let m: hashbrown::HashMap<&str, &str> = hashbrown::HashMap::new_in(&chunk);
/// ```
pub type HashMap<'c, K, V, B = LocalBump> =
    hashbrown::HashMap<K, V, hashbrown::DefaultHashBuilder, &'c ProcessChunk<'c, B>>;

/// A [`hashbrown::HashSet`] in a chunk, with hashbrown's default hasher; see [`Vec`] for
/// the parameters.
///
/// ```
/// let chunk = perfloc::chunk();
/// let mut seen: perfloc::HashSet<&str> = perfloc::HashSet::new_in(&chunk);
/// assert!(seen.insert("a"));
/// assert!(!seen.insert("a"));
/// ```
pub type HashSet<'c, T, B = LocalBump> =
    hashbrown::HashSet<T, hashbrown::DefaultHashBuilder, &'c ProcessChunk<'c, B>>;
