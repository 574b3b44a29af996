//! Differential fuzzing of collections in chunks against std: bytes decide a sequence of
//! operations on `allocator_api2::vec::Vec<u8 | u64 | Vec<u8, &Chunk>, &Chunk>` and
//! `hashbrown::HashMap<u32, u64 | Vec<u8, &Chunk>, DefaultHashBuilder, &Chunk>`, each mirrored
//! by a std `Vec` / `std::collections::HashMap` model: push, extend, insert, remove,
//! truncate, pop, reserve, `reserve_exact(1)`-and-push loops, `try_reserve` of sizes that
//! cannot be met (must fail and change nothing), shrinks, clear, resize (some past 64 KiB,
//! so large blocks happen), retain, dropping a collection; map insert/remove/get/retain/
//! shrink_to_fit.
//!
//! The collections live in one long-lived chunk (the *keeper*) and in the chunks of an
//! *epoch*: one chunk, two chunks, or a chunk and its child. An epoch ends on a marker
//! byte: its collections drop, then its chunks (the first one may be reset and reused by
//! the next epoch). Some inputs use a pool with a `limit`, where every growth goes through
//! `try_reserve` first and a failure must leave the collection unchanged.
//!
//! After every step: the collection it touched equals its model (every 8th step and at the
//! end of each epoch, all of them do), and a chunk none of whose collections holds memory
//! holds no large block (a large allocation goes back to the pool as soon as it is
//! deallocated, also after `shrink` or `shrink_to_fit`, down to size 0). After every epoch:
//! the pool's in-use bytes are exactly the live chunks' blocks and `Pool::check` passes. At
//! the end, with everything dropped, nothing is in use. Once the pool has mapped 384 MiB
//! (arenas legitimately waste memory on some sequences) the rest of the input is skipped.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run collections` (from the crate's root);
//! `COLLECTIONS_TRACE=1` with a crashing input prints each step.

#![no_main]

use std::collections::HashMap as StdMap;
use std::fmt::Debug;

use allocator_api2::vec::Vec as AVec;
use hashbrown::{DefaultHashBuilder, HashMap};
use libfuzzer_sys::fuzz_target;
use perfloc::{Chunk, Pool};

/// The allocator of every collection here.
type A<'c> = &'c Chunk<'c>;
type CVec<'c, T> = AVec<T, A<'c>>;
type CMap<'c, V> = HashMap<u32, V, DefaultHashBuilder, A<'c>>;

/// Reads the fuzzer's bytes as small numbers.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn b(&mut self) -> u8 {
        self.byte().unwrap_or(0)
    }
    fn seed(&mut self) -> u64 {
        u64::from(self.b()) | u64::from(self.b()) << 8
    }
    /// An element count: mostly small, sometimes up to 4 Ki, rarely up to 64 or 128 Ki.
    fn count(&mut self) -> usize {
        let (lo, hi, kind) = (self.b(), self.b(), self.b());
        let n = usize::from(lo) | usize::from(hi) << 8;
        match kind % 16 {
            0 => n << 1,
            1 => n,
            2 | 3 => n % 4096,
            _ => n % 300,
        }
    }
}

/// An element type of a chunk collection and its std model.
trait Elem<'c>: Sized + Clone {
    type M: Clone + PartialEq + Debug;
    /// `make` never fails and `clone` allocates nothing.
    const PLAIN: bool;
    /// A new element; `inner` is the chunk of its own memory, if it has any. `None` when
    /// that memory is not to be had (only in a limited pool).
    fn make(seed: u64, inner: A<'c>, limited: bool) -> Option<Self>;
    fn model(&self) -> Self::M;
    /// A hash of a plain element, equal to [`Elem::hash_model`] of its model.
    fn hash(&self) -> u64 {
        unreachable!("only plain elements are hashed")
    }
    fn hash_model(_: &Self::M) -> u64 {
        unreachable!("only plain elements are hashed")
    }
    fn matches(&self, m: &Self::M) -> bool;
    /// Whether a slice of these matches a slice of models (lengths equal); overridden by
    /// a plain `==` where that is a `memcmp`, as element-wise comparisons are slow under
    /// the fuzzer's comparison tracing.
    fn all_match(v: &[Self], m: &[Self::M]) -> bool {
        v.iter().zip(m).all(|(x, y)| x.matches(y))
    }
    /// Changes the element (and its model alike), growing its memory if it has any.
    fn bump(&mut self, m: &mut Self::M, seed: u64, limited: bool);
    /// Holds no memory of its own.
    fn idle(&self) -> bool {
        true
    }
}

impl<'c> Elem<'c> for u8 {
    type M = u8;
    const PLAIN: bool = true;
    fn make(seed: u64, _: A<'c>, _: bool) -> Option<Self> {
        Some(seed as u8)
    }
    fn model(&self) -> u8 {
        *self
    }
    fn hash(&self) -> u64 {
        u64::from(*self)
    }
    fn hash_model(m: &u8) -> u64 {
        u64::from(*m)
    }
    fn matches(&self, m: &u8) -> bool {
        self == m
    }
    fn all_match(v: &[Self], m: &[u8]) -> bool {
        v == m
    }
    fn bump(&mut self, m: &mut u8, seed: u64, _: bool) {
        *self = self.wrapping_add(seed as u8 | 1);
        *m = m.wrapping_add(seed as u8 | 1);
    }
}

impl<'c> Elem<'c> for u64 {
    type M = u64;
    const PLAIN: bool = true;
    fn make(seed: u64, _: A<'c>, _: bool) -> Option<Self> {
        Some(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
    fn model(&self) -> u64 {
        *self
    }
    fn hash(&self) -> u64 {
        *self
    }
    fn hash_model(m: &u64) -> u64 {
        *m
    }
    fn matches(&self, m: &u64) -> bool {
        self == m
    }
    fn all_match(v: &[Self], m: &[u64]) -> bool {
        v == m
    }
    fn bump(&mut self, m: &mut u64, seed: u64, _: bool) {
        *self = self.rotate_left(7) ^ seed;
        *m = m.rotate_left(7) ^ seed;
    }
}

/// The string-like element: bytes in a chunk (maybe another than the collection's).
impl<'c> Elem<'c> for CVec<'c, u8> {
    type M = Vec<u8>;
    const PLAIN: bool = false;
    fn make(seed: u64, inner: A<'c>, limited: bool) -> Option<Self> {
        let len = if seed % 32 == 31 { 5000 + (seed as usize % 9000) } else { seed as usize % 40 };
        let mut v = AVec::new_in(inner);
        if limited {
            v.try_reserve_exact(len).ok()?;
        }
        append(&mut v, pattern(seed, len));
        Some(v)
    }
    fn model(&self) -> Vec<u8> {
        self.to_vec()
    }
    fn matches(&self, m: &Vec<u8>) -> bool {
        self[..] == m[..]
    }
    fn bump(&mut self, m: &mut Vec<u8>, seed: u64, limited: bool) {
        let add = if seed % 16 == 15 { 3000 + seed as usize % 70000 } else { seed as usize % 50 };
        if limited && self.try_reserve(add).is_err() {
            return;
        }
        let tail = pattern(seed >> 3, add);
        append(self, tail);
        m.extend_from_slice(tail);
    }
    fn idle(&self) -> bool {
        self.capacity() == 0
    }
}

/// `v.extend_from_slice(bytes)` as one `memcpy`: allocator-api2's copies byte by byte,
/// which is slow under the fuzzer's comparison tracing.
fn append(v: &mut CVec<'_, u8>, bytes: &[u8]) {
    v.reserve(bytes.len());
    let len = v.len();
    // SAFETY: `reserve` made room for `bytes.len()` more bytes past `len`, which the copy
    // initialises before `set_len` counts them.
    unsafe {
        v.as_mut_ptr().add(len).copy_from_nonoverlapping(bytes.as_ptr(), bytes.len());
        v.set_len(len + bytes.len());
    }
}

/// Bytes to fill string-like elements with: `len` of them from a place `seed` picks.
fn pattern(seed: u64, len: usize) -> &'static [u8] {
    static PATTERN: [u8; 1 << 17] = {
        let mut bytes = [0; 1 << 17];
        let mut i = 0;
        while i < bytes.len() {
            bytes[i] = (i * 7 + i / 251) as u8;
            i += 1;
        }
        bytes
    };
    &PATTERN[seed as usize % 4096..][..len]
}

fn same_vec<'c, T: Elem<'c>>(v: &CVec<'c, T>, m: &[T::M], who: &str, name: &str) {
    let what = format_args!("{who} {name}");
    assert_eq!(v.len(), m.len(), "{what}: length");
    assert!(v.capacity() >= v.len(), "{what}: capacity below length");
    if T::all_match(v, m) {
        return;
    }
    if let Some(i) = v.iter().zip(m).position(|(x, y)| !x.matches(y)) {
        panic!("{what}: element {i} is {:?}, model has {:?}", v[i].model(), m[i]);
    }
}

/// An order-independent digest of a map's entries.
fn digest(entries: impl Iterator<Item = (u32, u64)>) -> u64 {
    entries.fold(0u64, |sum, (k, v)| {
        let mut x = (u64::from(k) << 32 | u64::from(k)) ^ v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        sum.wrapping_add(x ^ (x >> 31))
    })
}

fn same_map<'c, V: Elem<'c>>(map: &CMap<'c, V>, m: &StdMap<u32, V::M>, who: &str, name: &str) {
    let what = format_args!("{who} {name}");
    assert_eq!(map.len(), m.len(), "{what}: length");
    assert!(map.capacity() >= map.len(), "{what}: capacity below length");
    // For plain values compare digests first (iterating is much faster than a lookup per
    // key under the fuzzer's instrumentation); on a mismatch, find the entry that differs.
    // Byte-vector values are compared with `memcmp`, key by key.
    if V::PLAIN
        && digest(map.iter().map(|(&k, v)| (k, v.hash())))
            == digest(m.iter().map(|(&k, mv)| (k, V::hash_model(mv))))
    {
        return;
    }
    for (k, mv) in m {
        match map.get(k) {
            Some(v) if v.matches(mv) => {}
            other => panic!("{what}: key {k}: {:?}, model has {mv:?}", other.map(V::model)),
        }
    }
    assert!(!V::PLAIN, "{what}: digests differ, yet every model entry matches");
}

/// A count of elements no allocation can hold: more than the address space (or than the
/// pool's limit), or past `isize::MAX` bytes.
fn huge(sel: u8, len: usize, elem: usize, limit: Option<usize>) -> usize {
    let elem = elem.max(1);
    match sel % 5 {
        0 => usize::MAX,
        1 => usize::MAX - len,
        2 => (isize::MAX as usize / elem).saturating_sub(len),
        3 => (1usize << 47) / elem,
        _ => limit.map_or(1 << 50, |l| l / elem + 1),
    }
}

/// With a limited pool, makes room for `extra` more elements first; `false` (and the
/// vector unchanged) when the pool has no room. Without a limit, the operation itself
/// grows the vector (a failure there would be a real out-of-memory).
fn room<T>(v: &mut CVec<'_, T>, extra: usize, limited: bool) -> bool {
    if !limited {
        return true;
    }
    let before = (v.len(), v.capacity(), v.as_ptr());
    match v.try_reserve(extra) {
        Ok(()) => true,
        Err(_) => {
            assert_eq!(
                (v.len(), v.capacity(), v.as_ptr()),
                before,
                "failed try_reserve changed the vector"
            );
            false
        }
    }
}

fn map_room<V>(map: &mut CMap<'_, V>, extra: usize, limited: bool) -> bool {
    if !limited {
        return true;
    }
    let before = (map.len(), map.capacity());
    match map.try_reserve(extra) {
        Ok(()) => true,
        Err(_) => {
            assert_eq!((map.len(), map.capacity()), before, "failed try_reserve changed the map");
            false
        }
    }
}

/// A retain predicate from a seed, called on elements in order (the same for the model).
fn keep(seed: u8) -> impl FnMut() -> bool {
    let mut i = 0u32;
    move || {
        i += 1;
        !(i.wrapping_mul(u32::from(seed) | 1) >> 2).is_multiple_of(4)
    }
}

/// One operation on a vector in `alloc` whose elements keep their memory in `inner`.
fn vec_step<'c, T: Elem<'c>>(
    v: &mut CVec<'c, T>,
    m: &mut Vec<T::M>,
    op: u8,
    input: &mut Input,
    alloc: A<'c>,
    inner: A<'c>,
    limit: Option<usize>,
) {
    let limited = limit.is_some();
    let cap_count = |n: usize| if T::PLAIN { n } else { n % 512 };
    match op % 18 {
        0 => {
            if let Some(x) = T::make(input.seed(), inner, limited)
                && room(v, 1, limited)
            {
                m.push(x.model());
                v.push(x);
            }
        }
        1 => {
            let n = cap_count(input.count() % (64 << 10));
            let seed = input.seed();
            let items: Vec<T> = (0..n as u64)
                .map_while(|i| T::make(seed.wrapping_add(i), inner, limited))
                .collect();
            if room(v, items.len(), limited) {
                m.extend(items.iter().map(T::model));
                if T::PLAIN {
                    v.extend_from_slice(&items);
                } else {
                    v.extend(items);
                }
            }
        }
        2 => {
            let at = usize::from(input.b()) % (v.len() + 1);
            if let Some(x) = T::make(input.seed(), inner, limited)
                && room(v, 1, limited)
            {
                m.insert(at, x.model());
                v.insert(at, x);
            }
        }
        3 if !v.is_empty() => {
            let at = usize::from(input.b()) * 257 % v.len();
            let (x, y) = (v.remove(at), m.remove(at));
            assert!(x.matches(&y), "remove({at})");
        }
        4 => {
            let n = usize::from(input.b()) * 31 % (v.len() + 1);
            v.truncate(n);
            m.truncate(n);
        }
        5 => {
            let (x, y) = (v.pop(), m.pop());
            assert_eq!(x.map(|x| x.model()), y, "pop");
        }
        6 => {
            let n = cap_count(input.count());
            if limited {
                let _ = room(v, n, true);
            } else {
                v.reserve(n);
            }
            assert!(v.capacity() >= v.len() + n || limited, "reserve({n})");
        }
        7 => {
            // With string-like elements (whose bytes may be allocated in the same chunk
            // between the steps) every step but the first moves the vector: memory grows
            // with the square of the length, as in any arena. Keep such vectors short.
            let k = usize::from(input.b()) * 4;
            let k = if T::PLAIN { k } else { k.min(1024usize.saturating_sub(v.len())) };
            let seed = input.seed();
            for i in 0..k as u64 {
                let Some(x) = T::make(seed.wrapping_add(i), inner, limited) else { break };
                if limited {
                    if v.try_reserve_exact(1).is_err() {
                        break;
                    }
                } else {
                    v.reserve_exact(1);
                }
                assert!(v.capacity() > v.len());
                m.push(x.model());
                v.push(x);
            }
        }
        8 => {
            let sel = input.b();
            let n = huge(sel, v.len(), size_of::<T>(), limit);
            let before = (v.len(), v.capacity(), v.as_ptr());
            let res = if sel & 0x80 == 0 { v.try_reserve(n) } else { v.try_reserve_exact(n) };
            assert!(res.is_err(), "try_reserve({n}) of {} bytes each succeeded", size_of::<T>());
            assert_eq!((v.len(), v.capacity(), v.as_ptr()), before, "failed try_reserve({n})");
        }
        9 => {
            v.shrink_to_fit();
            assert_eq!(v.capacity(), v.len(), "shrink_to_fit");
        }
        10 => {
            let n = cap_count(input.count());
            let cap = v.capacity();
            v.shrink_to(n);
            assert!(
                v.capacity() >= v.len().max(n.min(cap)) && v.capacity() <= cap,
                "shrink_to({n})"
            );
        }
        11 => {
            v.clear();
            m.clear();
        }
        12 => {
            let n = cap_count(input.count());
            let seed = input.seed();
            if n <= v.len() {
                if T::PLAIN {
                    let x = T::make(seed, inner, limited).unwrap();
                    v.resize(n, x);
                } else {
                    v.truncate(n);
                }
                m.truncate(n);
            } else if room(v, n - v.len(), limited) {
                if T::PLAIN {
                    let x = T::make(seed, inner, limited).unwrap();
                    m.resize(n, x.model());
                    v.resize(n, x);
                } else if !limited {
                    let mut i = 0;
                    v.resize_with(n, || {
                        i += 1;
                        T::make(seed.wrapping_add(i), inner, false).unwrap()
                    });
                    m.extend(v[m.len()..].iter().map(T::model));
                } else {
                    for i in 0..(n - v.len()) as u64 {
                        let Some(x) = T::make(seed.wrapping_add(i), inner, true) else { break };
                        m.push(x.model());
                        v.push(x);
                    }
                }
            }
        }
        13 => {
            // Drop the collection, sometimes for one made with room already.
            let n = usize::from(input.b());
            *v = if n % 2 == 0 || limited {
                AVec::new_in(alloc)
            } else {
                AVec::with_capacity_in(n, alloc)
            };
            m.clear();
        }
        14 => {
            let seed = input.b();
            let (mut kv, mut km) = (keep(seed), keep(seed));
            v.retain(|_| kv());
            m.retain(|_| km());
        }
        15 if !v.is_empty() => {
            let at = usize::from(input.b()) * 131 % v.len();
            let (x, y) = (v.swap_remove(at), m.swap_remove(at));
            assert!(x.matches(&y), "swap_remove({at})");
        }
        16 if !v.is_empty() => {
            let at = usize::from(input.b()) * 131 % v.len();
            v[at].bump(&mut m[at], input.seed(), limited);
        }
        17 => {
            let n = cap_count(input.count());
            let before = (v.len(), v.capacity(), v.as_ptr());
            match v.try_reserve_exact(n) {
                Ok(()) => assert!(v.capacity() >= v.len() + n, "try_reserve_exact({n})"),
                Err(_) => {
                    assert!(limited, "try_reserve_exact({n}) failed without a limit");
                    assert_eq!(
                        (v.len(), v.capacity(), v.as_ptr()),
                        before,
                        "failed try_reserve_exact({n})"
                    );
                }
            }
        }
        _ => {}
    }
}

/// One operation on a map in `alloc` whose values keep their memory in `inner`.
fn map_step<'c, V: Elem<'c>>(
    map: &mut CMap<'c, V>,
    m: &mut StdMap<u32, V::M>,
    op: u8,
    input: &mut Input,
    alloc: A<'c>,
    inner: A<'c>,
    limit: Option<usize>,
) {
    let limited = limit.is_some();
    let key = |b: u8| u32::from(b) * 7;
    match op % 12 {
        0 | 1 => {
            let k = key(input.b());
            if let Some(x) = V::make(input.seed(), inner, limited)
                && map_room(map, 1, limited)
            {
                let y = m.insert(k, x.model());
                let old = map.insert(k, x);
                assert_eq!(old.map(|o| o.model()), y, "insert({k})");
            }
        }
        2 => {
            let k = key(input.b());
            let (x, y) = (map.remove(&k), m.remove(&k));
            assert_eq!(x.map(|x| x.model()), y, "remove({k})");
        }
        3 => {
            let k = key(input.b());
            assert_eq!(map.get(&k).map(V::model), m.get(&k).cloned(), "get({k})");
        }
        4 => {
            let s = u32::from(input.b()) | 1;
            map.retain(|k, _| (k.wrapping_mul(s) >> 3) % 3 != 0);
            m.retain(|k, _| (k.wrapping_mul(s) >> 3) % 3 != 0);
        }
        // A shrink that moves the table allocates, and hashbrown aborts if that fails: with
        // a limit, only shrink an empty map (which frees the table).
        5 if !limited || map.is_empty() => {
            map.shrink_to_fit();
            assert!(map.capacity() >= map.len());
            if map.is_empty() {
                assert_eq!(map.capacity(), 0, "shrink_to_fit of an empty map");
            }
        }
        6 => {
            map.clear();
            m.clear();
        }
        7 => {
            let n = input.count() % 4096;
            let base = u32::from(input.b()) << 4;
            let seed = input.seed();
            if map_room(map, n, limited) {
                for i in 0..n as u32 {
                    let Some(x) = V::make(seed.wrapping_add(u64::from(i)), inner, limited) else {
                        break;
                    };
                    let k = base.wrapping_add(i.wrapping_mul(3));
                    if limited && !map_room(map, 1, true) {
                        break;
                    }
                    m.insert(k, x.model());
                    map.insert(k, x);
                }
            }
        }
        8 => {
            let sel = input.b();
            let n = if sel.is_multiple_of(2) { usize::MAX - map.len() } else { 1 << 45 };
            let before = (map.len(), map.capacity());
            assert!(map.try_reserve(n).is_err(), "map try_reserve({n}) succeeded");
            assert_eq!((map.len(), map.capacity()), before, "failed map try_reserve({n})");
        }
        9 => {
            *map = HashMap::new_in(alloc);
            m.clear();
        }
        10 => {
            let k = key(input.b());
            let seed = input.seed();
            if let std::collections::hash_map::Entry::Vacant(slot) = m.entry(k) {
                let Some(x) = V::make(seed, inner, limited) else { return };
                if !map_room(map, 1, limited) {
                    return;
                }
                slot.insert(x.model());
                map.entry(k).or_insert(x);
            }
            map.get_mut(&k).unwrap().bump(m.get_mut(&k).unwrap(), seed, limited);
        }
        11 => {
            let n = input.count() % 16384;
            if limited {
                let _ = map_room(map, n, true);
            } else {
                map.reserve(n);
                assert!(map.capacity() >= map.len() + n, "map reserve({n})");
            }
        }
        _ => {}
    }
}

/// Which collections [`Colls::check`] compares with their models.
#[derive(Clone, Copy)]
enum Which {
    All,
    /// The one in this slot (see [`Colls::step`]).
    One(u8),
    /// None; only the large-block check.
    Idle,
}

/// The collections over chunks `a` and `b` (maybe the same chunk) and their models.
struct Colls<'c> {
    a: A<'c>,
    b: A<'c>,
    /// In `a`.
    bytes: CVec<'c, u8>,
    bytes_m: Vec<u8>,
    /// In `b`.
    bytes2: CVec<'c, u8>,
    bytes2_m: Vec<u8>,
    /// In `b`.
    words: CVec<'c, u64>,
    words_m: Vec<u64>,
    /// In `a`, the strings in `b`.
    strs: CVec<'c, CVec<'c, u8>>,
    strs_m: Vec<Vec<u8>>,
    /// In `b`, the values in `a`.
    vals: CMap<'c, CVec<'c, u8>>,
    vals_m: StdMap<u32, Vec<u8>>,
    /// In `a`.
    nums: CMap<'c, u64>,
    nums_m: StdMap<u32, u64>,
}

impl<'c> Colls<'c> {
    fn new(a: A<'c>, b: A<'c>) -> Self {
        Colls {
            a,
            b,
            bytes: AVec::new_in(a),
            bytes_m: Vec::new(),
            bytes2: AVec::new_in(b),
            bytes2_m: Vec::new(),
            words: AVec::new_in(b),
            words_m: Vec::new(),
            strs: AVec::new_in(a),
            strs_m: Vec::new(),
            vals: HashMap::new_in(b),
            vals_m: StdMap::new(),
            nums: HashMap::new_in(a),
            nums_m: StdMap::new(),
        }
    }

    fn step(&mut self, op: u8, slot: u8, input: &mut Input, limit: Option<usize>) {
        let (a, b) = (self.a, self.b);
        match slot % 6 {
            0 => vec_step(&mut self.bytes, &mut self.bytes_m, op, input, a, a, limit),
            1 => vec_step(&mut self.bytes2, &mut self.bytes2_m, op, input, b, b, limit),
            2 => vec_step(&mut self.words, &mut self.words_m, op, input, b, b, limit),
            3 => vec_step(&mut self.strs, &mut self.strs_m, op, input, a, b, limit),
            4 => map_step(&mut self.vals, &mut self.vals_m, op, input, b, a, limit),
            _ => map_step(&mut self.nums, &mut self.nums_m, op, input, a, a, limit),
        }
    }

    /// Lengths and capacities of the collections, for tracing.
    fn lens(&self) -> [(usize, usize); 6] {
        [
            (self.bytes.len(), self.bytes.capacity()),
            (self.bytes2.len(), self.bytes2.capacity()),
            (self.words.len(), self.words.capacity()),
            (self.strs.len(), self.strs.capacity()),
            (self.vals.len(), self.vals.capacity()),
            (self.nums.len(), self.nums.capacity()),
        ]
    }

    /// Compares collections with their models, and checks that idle chunks hold no large
    /// block.
    fn check(&self, who: &str, which: Which) {
        let (all, slot) = match which {
            Which::All => (true, 0),
            Which::One(slot) => (false, slot),
            Which::Idle => (false, u8::MAX),
        };
        if all || slot == 0 {
            same_vec(&self.bytes, &self.bytes_m, who, "bytes");
        }
        if all || slot == 1 {
            same_vec(&self.bytes2, &self.bytes2_m, who, "bytes2");
        }
        if all || slot == 2 {
            same_vec(&self.words, &self.words_m, who, "words");
        }
        if all || slot == 3 {
            same_vec(&self.strs, &self.strs_m, who, "strs");
        }
        if all || slot == 4 {
            same_map(&self.vals, &self.vals_m, who, "vals");
        }
        if all || slot == 5 {
            same_map(&self.nums, &self.nums_m, who, "nums");
        }
        // A chunk none of whose collections holds memory has given back every large block.
        let a_idle = self.bytes.capacity() == 0
            && self.strs.capacity() == 0
            && self.nums.capacity() == 0
            && self.vals.values().all(|v| v.idle());
        let b_idle = self.bytes2.capacity() == 0
            && self.words.capacity() == 0
            && self.vals.capacity() == 0
            && self.strs.iter().all(|s| s.idle());
        if std::ptr::eq(self.a, self.b) {
            if a_idle && b_idle {
                assert_no_large(self.a, who, "chunk");
            }
        } else {
            if a_idle {
                assert_no_large(self.a, who, "chunk a");
            }
            if b_idle {
                assert_no_large(self.b, who, "chunk b");
            }
        }
    }
}

fn assert_no_large(chunk: &Chunk<'_>, who: &str, what: &str) {
    let stats = chunk.stats();
    assert_eq!(
        stats.dedicated_blocks, 0,
        "{who} {what}: no collection holds memory, yet it keeps a large block: {stats:?}"
    );
}

/// Bytes the pool may map before the rest of the input is skipped.
const BUDGET: usize = 384 << 20;

/// Runs steps until the end-of-epoch marker or the end of the input. After each step the
/// collection it touched is compared with its model, and every 8th step all of them are
/// (the others only change if the chunks are broken: a cheaper check keeps the fuzzer fast).
fn run_epoch(
    kept: &mut Colls<'_>,
    mut epoch: Option<&mut Colls<'_>>,
    input: &mut Input,
    pool: &Pool,
    limit: Option<usize>,
) {
    let mut steps = 0u32;
    while let Some(op) = input.byte() {
        if pool.stats().mapped_bytes > BUDGET {
            // Arenas only free at the end of the scope, and some sequences (a vector
            // growing while other allocations interleave) waste memory legitimately: stop
            // before the fuzzer's RSS limit, keeping the final checks.
            input.0 = &[];
            return;
        }
        let target = input.b();
        let slot = target >> 1;
        let in_epoch = epoch.is_some() && target & 1 == 1;
        match op {
            0xF0..=0xFF => return,
            0xEC..=0xEF => {
                pool.trim();
            }
            _ => match epoch.as_deref_mut() {
                Some(ep) if in_epoch => ep.step(op, slot, input, limit),
                _ => kept.step(op, slot, input, limit),
            },
        }
        if trace() {
            let (who, c) = match epoch.as_deref() {
                Some(ep) if in_epoch => ("epoch", ep),
                _ => ("keeper", &*kept),
            };
            let stats = pool.stats();
            eprintln!(
                "op {op:3} ({:2} vec, {:2} map) {who} slot {}: lens {:?}, pool mapped {} in use {}",
                op % 18,
                op % 12,
                slot % 6,
                c.lens(),
                stats.mapped_bytes,
                stats.in_use_bytes,
            );
        }
        steps += 1;
        let full = steps.is_multiple_of(8);
        let which = |touched: bool| match (full, touched) {
            (true, _) => Which::All,
            (false, true) => Which::One(slot % 6),
            (false, false) => Which::Idle,
        };
        kept.check("keeper", which(!in_epoch));
        if let Some(ep) = epoch.as_deref() {
            ep.check("epoch", which(in_epoch));
        }
    }
}

/// `COLLECTIONS_TRACE=1` prints every step (for triage of a crashing input).
fn trace() -> bool {
    static TRACE: std::sync::LazyLock<bool> =
        std::sync::LazyLock::new(|| std::env::var_os("COLLECTIONS_TRACE").is_some());
    *TRACE
}

fn in_use(pool: &Pool) -> usize {
    pool.stats().in_use_bytes
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let limit = match input.b() % 4 {
        0 => Some(512 << 10),
        1 => Some(2 << 20),
        _ => None,
    };
    let mut builder = Pool::builder().first_top_chunk_size(64 << 10).first_block_size(4 << 10);
    if let Some(limit) = limit {
        builder = builder.limit(limit);
    }
    let pool = builder.build().unwrap();
    let keeper = pool.try_chunk().expect("an empty pool has room for a first block");
    {
        let mut kept = Colls::new(&keeper, &keeper);
        // The first chunk of the last epoch, kept for the next one to reset and reuse.
        let mut held: Option<Chunk<'_>> = None;
        while !input.0.is_empty() {
            let shape = input.b();
            let a = match held.take() {
                Some(mut chunk) if shape & 1 == 1 => {
                    chunk.reset();
                    Some(chunk)
                }
                old => {
                    drop(old);
                    pool.try_chunk().ok()
                }
            };
            if let Some(a) = &a {
                // The second chunk: `a` itself, another chunk, or a child of `a`.
                let b = match (shape >> 1) % 3 {
                    1 => pool.try_chunk().ok(),
                    2 => a.try_child().ok(),
                    _ => None,
                };
                {
                    let mut epoch = Colls::new(a, b.as_ref().unwrap_or(a));
                    run_epoch(&mut kept, Some(&mut epoch), &mut input, &pool, limit);
                    epoch.check("epoch", Which::All);
                }
                // All its collections dropped: no large block may stay.
                assert_no_large(a, "epoch", "chunk a, its collections dropped");
                if let Some(b) = &b {
                    assert_no_large(b, "epoch", "chunk b, its collections dropped");
                }
            } else {
                // The limit is reached: only the keeper's collections this epoch.
                run_epoch(&mut kept, None, &mut input, &pool, limit);
            }
            held = a;
            let live = keeper.stats().capacity_bytes
                + held.as_ref().map_or(0, |c| c.stats().capacity_bytes);
            assert_eq!(in_use(&pool), live, "in-use bytes are not the live chunks' blocks");
            pool.check().unwrap();
        }
        kept.check("keeper", Which::All);
        drop(held);
    }
    assert_no_large(&keeper, "keeper", "chunk, its collections dropped");
    assert_eq!(in_use(&pool), keeper.stats().capacity_bytes);
    drop(keeper);
    let stats = pool.stats();
    assert_eq!((stats.in_use_bytes, stats.live_chunks), (0, 0), "{stats:?}");
    pool.check().unwrap();
});
