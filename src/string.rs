//! [`String`]: a growable UTF-8 string in any allocator-api2 allocator, a chunk above all.
//!
//! A thin wrapper over `allocator_api2::vec::Vec<u8, A>` that keeps its bytes valid UTF-8,
//! like `std::string::String` over `Vec<u8>` and bumpalo's `collections::String`. In a
//! chunk, a string that is the chunk's newest allocation grows in place (the chunk bumps
//! upward), and [`String::into_str`] hands its text out for the chunk's lifetime without a
//! copy.
//!
//! Running out of memory while growing behaves as for `Vec`: `push_str`, `reserve` and
//! friends call `handle_alloc_error`, which aborts the process (and panic on a capacity
//! overflow). Where a cap must never become an abort (a request's chunk with a limit),
//! use the fallible forms: [`String::try_push_str`], [`String::try_push`],
//! [`String::try_reserve`], [`try_format_in!`](crate::try_format_in), and `write!`, whose
//! `fmt::Write` returns `fmt::Error` when the string cannot grow.

use core::borrow::{Borrow, BorrowMut};
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::{Deref, DerefMut};
use core::ptr;
use core::str::Utf8Error;

use allocator_api2::alloc::{AllocError, Allocator, Global};
use allocator_api2::collections::TryReserveError;
use allocator_api2::vec::Vec;

use crate::{BumpState, ProcessChunk};

/// A growable UTF-8 string whose bytes live in the allocator `A`: a chunk
/// (`String<&Chunk>`, `String<&SyncChunk>`) or the global heap (`String<Global>`, the
/// default).
///
/// It dereferences to `str`, so every `str` method works; it compares, orders and hashes
/// like `str`, so a `hashbrown::HashMap` keyed by it can be looked up with a `&str`:
///
/// ```
/// use hashbrown::{DefaultHashBuilder, HashMap};
/// use perfloc::{Chunk, String};
///
/// let chunk = perfloc::chunk();
/// let mut hits: HashMap<String<&Chunk>, u32, DefaultHashBuilder, &Chunk> =
///     HashMap::new_in(&chunk);
/// let mut key = String::new_in(&chunk);
/// key.push_str("GET /");
/// key.push_str("index.html");
/// *hits.entry(key).or_default() += 1;
/// assert_eq!(hits.get("GET /index.html"), Some(&1));
/// ```
///
/// The newest allocation of a chunk grows in place, so building a string with pushes while
/// nothing else is allocated in between copies no byte (see [`String::push_str`]).
pub struct String<A: Allocator = Global> {
    /// Invariant: the bytes are valid UTF-8.
    vec: Vec<u8, A>,
}

impl<A: Allocator> String<A> {
    /// An empty string in `alloc`; allocates nothing until the first push.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = perfloc::String::new_in(&chunk);
    /// assert!(s.is_empty());
    /// assert_eq!(s.capacity(), 0);
    /// ```
    #[inline]
    pub fn new_in(alloc: A) -> Self {
        String { vec: Vec::new_in(alloc) }
    }

    /// An empty string in `alloc` with room for at least `capacity` bytes.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// let s = perfloc::String::with_capacity_in(100, &chunk);
    /// assert!(s.capacity() >= 100);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `capacity` exceeds `isize::MAX`; calls `handle_alloc_error` if the
    /// allocator fails.
    #[inline]
    pub fn with_capacity_in(capacity: usize, alloc: A) -> Self {
        String { vec: Vec::with_capacity_in(capacity, alloc) }
    }

    /// A copy of `s` in `alloc`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = perfloc::String::from_str_in("hello", &chunk);
    /// assert_eq!(s, "hello");
    /// ```
    #[inline]
    pub fn from_str_in(s: &str, alloc: A) -> Self {
        let mut string = String::with_capacity_in(s.len(), alloc);
        string.push_str(s);
        string
    }

    /// The bytes as a string if they are valid UTF-8; otherwise an error that gives them
    /// back ([`FromUtf8Error::into_bytes`]). No copy either way.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let chunk = perfloc::chunk();
    /// let mut bytes = Vec::new_in(&chunk);
    /// bytes.extend_from_slice(b"caf\xc3\xa9");
    /// assert_eq!(perfloc::String::from_utf8_in(bytes).unwrap(), "café");
    ///
    /// let mut bad = Vec::new_in(&chunk);
    /// bad.extend_from_slice(b"caf\xc3");
    /// let err = perfloc::String::from_utf8_in(bad).unwrap_err();
    /// assert_eq!(err.utf8_error().valid_up_to(), 3);
    /// assert_eq!(err.into_bytes(), b"caf\xc3");
    /// ```
    pub fn from_utf8_in(vec: Vec<u8, A>) -> Result<Self, FromUtf8Error<A>> {
        match core::str::from_utf8(&vec) {
            Ok(_) => Ok(String { vec }),
            Err(error) => Err(FromUtf8Error { bytes: vec, error }),
        }
    }

    /// The string's bytes, keeping their allocation.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let bytes = perfloc::String::from_str_in("ab", &chunk).into_bytes();
    /// assert_eq!(bytes, b"ab");
    /// ```
    #[inline]
    pub fn into_bytes(self) -> Vec<u8, A> {
        self.vec
    }

    /// The text as a `&str`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = perfloc::String::from_str_in("text", &chunk);
    /// assert_eq!(s.as_str(), "text");
    /// ```
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: the bytes are valid UTF-8 (the field's invariant).
        unsafe { core::str::from_utf8_unchecked(&self.vec) }
    }

    /// The text as a `&mut str`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("loud", &chunk);
    /// s.as_mut_str().make_ascii_uppercase();
    /// assert_eq!(s, "LOUD");
    /// ```
    #[inline]
    pub fn as_mut_str(&mut self) -> &mut str {
        // SAFETY: the bytes are valid UTF-8, and `&mut str` only allows changes that keep
        // them so.
        unsafe { core::str::from_utf8_unchecked_mut(&mut self.vec) }
    }

    /// The allocator the string lives in.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let s = perfloc::String::new_in(&chunk);
    /// assert!(core::ptr::eq(*s.allocator(), &chunk));
    /// ```
    #[inline]
    pub fn allocator(&self) -> &A {
        self.vec.allocator()
    }

    /// Length in bytes.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// assert_eq!(perfloc::String::from_str_in("é", &chunk).len(), 2);
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.vec.len()
    }

    /// True if the string holds no bytes.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// assert!(perfloc::String::new_in(&chunk).is_empty());
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.vec.is_empty()
    }

    /// Bytes the string can hold without reallocating.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// s.push('x');
    /// assert!(s.capacity() >= 1);
    /// ```
    #[inline]
    pub fn capacity(&self) -> usize {
        self.vec.capacity()
    }

    /// Makes room for at least `additional` more bytes (amortised: the capacity at least
    /// doubles).
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// s.reserve(64);
    /// assert!(s.capacity() >= 64);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the capacity would exceed `isize::MAX`; calls `handle_alloc_error` if the
    /// allocator fails. See [`String::try_reserve`].
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        self.vec.reserve(additional);
    }

    /// Makes room for at least `additional` more bytes, or returns an error (capacity
    /// overflow or allocation failure) and leaves the string as it was.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("kept", &chunk);
    /// assert!(s.try_reserve(usize::MAX).is_err());
    /// assert!(s.try_reserve(10).is_ok());
    /// assert_eq!(s, "kept");
    /// ```
    #[inline]
    pub fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError> {
        self.vec.try_reserve(additional)
    }

    /// Appends a string slice: one `memcpy` after at most one growth, which for the
    /// chunk's newest allocation happens in place.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// s.push_str("Content-");
    /// s.push_str("Length");
    /// assert_eq!(s, "Content-Length");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`String::reserve`].
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        if self.vec.capacity() - self.vec.len() < s.len() {
            self.grow_for(s.len());
        }
        // SAFETY: there is room for `s.len()` more bytes (checked, or just reserved).
        unsafe { self.append_unchecked(s) }
    }

    /// `reserve`, out of line: keeps the growth code out of the callers' loops, which
    /// then hold only the capacity check and the copy.
    #[cold]
    #[inline(never)]
    fn grow_for(&mut self, additional: usize) {
        self.vec.reserve(additional);
    }

    /// Appends a string slice, or returns an error (capacity overflow or allocation
    /// failure) and leaves the string as it was: [`String::push_str`] that never aborts.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// assert!(s.try_push_str("fits").is_ok());
    /// assert!(s.try_push_str(&"x".repeat(100 << 10)).is_err()); // past the chunk's limit
    /// assert_eq!(s, "fits");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_push_str(&mut self, s: &str) -> Result<(), TryReserveError> {
        if self.vec.capacity() - self.vec.len() < s.len() {
            self.try_grow_for(s.len())?;
        }
        // SAFETY: there is room for `s.len()` more bytes (checked, or just reserved).
        unsafe { self.append_unchecked(s) };
        Ok(())
    }

    /// Appends a character, or returns an error and leaves the string as it was:
    /// [`String::push`] that never aborts.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// s.try_push('é')?;
    /// assert_eq!(s, "é");
    /// # Ok::<(), allocator_api2::collections::TryReserveError>(())
    /// ```
    #[inline]
    pub fn try_push(&mut self, ch: char) -> Result<(), TryReserveError> {
        if ch.is_ascii() && self.vec.len() < self.vec.capacity() {
            self.vec.push(ch as u8);
            Ok(())
        } else {
            self.try_push_str(ch.encode_utf8(&mut [0; 4]))
        }
    }

    /// `try_reserve`, out of line (as [`String::grow_for`]).
    #[cold]
    #[inline(never)]
    fn try_grow_for(&mut self, additional: usize) -> Result<(), TryReserveError> {
        self.vec.try_reserve(additional)
    }

    /// Copies `s` after the current bytes.
    ///
    /// # Safety
    ///
    /// `self.capacity() - self.len() >= s.len()`.
    #[inline(always)]
    unsafe fn append_unchecked(&mut self, s: &str) {
        let len = self.vec.len();
        // SAFETY: the caller guarantees room for `s.len()` bytes past `len`; `s` cannot
        // alias our spare capacity (we hold `&mut self`). The bytes appended are a `str`'s,
        // so the whole stays valid UTF-8.
        unsafe {
            ptr::copy_nonoverlapping(s.as_ptr(), self.vec.as_mut_ptr().add(len), s.len());
            self.vec.set_len(len + s.len());
        }
    }

    /// Appends a character.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::new_in(&chunk);
    /// s.push('a');
    /// s.push('é');
    /// assert_eq!(s, "aé");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`String::reserve`].
    #[inline]
    pub fn push(&mut self, ch: char) {
        if ch.is_ascii() {
            self.vec.push(ch as u8);
        } else {
            self.push_str(ch.encode_utf8(&mut [0; 4]));
        }
    }

    /// Removes the last character and returns it, or `None` if the string is empty.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("añ", &chunk);
    /// assert_eq!(s.pop(), Some('ñ'));
    /// assert_eq!(s.pop(), Some('a'));
    /// assert_eq!(s.pop(), None);
    /// ```
    pub fn pop(&mut self) -> Option<char> {
        let ch = self.as_str().chars().next_back()?;
        let new_len = self.len() - ch.len_utf8();
        self.vec.truncate(new_len);
        Some(ch)
    }

    /// Shortens the string to `new_len` bytes; does nothing if it is not longer. The
    /// capacity stays.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("hello", &chunk);
    /// s.truncate(2);
    /// assert_eq!(s, "he");
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `new_len` is not on a character boundary.
    pub fn truncate(&mut self, new_len: usize) {
        if new_len < self.len() {
            assert!(
                self.as_str().is_char_boundary(new_len),
                "perfloc::String::truncate: {new_len} is not a char boundary"
            );
            self.vec.truncate(new_len);
        }
    }

    /// Removes all text; the capacity stays.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("gone", &chunk);
    /// s.clear();
    /// assert!(s.is_empty() && s.capacity() >= 4);
    /// ```
    #[inline]
    pub fn clear(&mut self) {
        self.vec.clear();
    }

    /// Inserts a character at byte index `idx`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("ac", &chunk);
    /// s.insert(1, 'b');
    /// assert_eq!(s, "abc");
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `idx` is past the end or not on a character boundary.
    pub fn insert(&mut self, idx: usize, ch: char) {
        self.insert_str(idx, ch.encode_utf8(&mut [0; 4]));
    }

    /// Inserts a string slice at byte index `idx`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let mut s = perfloc::String::from_str_in("Hello!", &chunk);
    /// s.insert_str(5, ", chunk");
    /// assert_eq!(s, "Hello, chunk!");
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if `idx` is past the end or not on a character boundary.
    pub fn insert_str(&mut self, idx: usize, s: &str) {
        assert!(
            self.as_str().is_char_boundary(idx),
            "perfloc::String::insert_str: {idx} is not a char boundary"
        );
        let len = self.len();
        let amt = s.len();
        self.vec.reserve(amt);
        // SAFETY: `idx <= len` (a char boundary), and room for `amt` more bytes was
        // reserved: the tail `idx..len` moves to `idx + amt..len + amt` inside the
        // allocation, then `s` (which cannot alias it, we hold `&mut self`) fills the gap.
        // A `str` inserted at a char boundary keeps the whole valid UTF-8.
        unsafe {
            let p = self.vec.as_mut_ptr();
            ptr::copy(p.add(idx), p.add(idx + amt), len - idx);
            ptr::copy_nonoverlapping(s.as_ptr(), p.add(idx), amt);
            self.vec.set_len(len + amt);
        }
    }
}

impl<'c, K: BumpState> String<&'c ProcessChunk<'_, K>> {
    /// Leaks the string into its chunk: its text stays there, as a `&mut str`, until the
    /// chunk is reset or dropped (bumpalo's `into_bump_str`). Spare capacity is given back
    /// when the string is still the chunk's newest allocation.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let name: &str = {
    ///     let mut s = perfloc::String::new_in(&chunk);
    ///     s.push_str("request-");
    ///     s.push('7');
    ///     s.into_str()
    /// };
    /// assert_eq!(name, "request-7");
    /// ```
    ///
    /// Sound because the chunk outlives `'c`, and resetting or dropping it needs it by
    /// `&mut` or by value, impossible while the `&'c mut str` lives:
    ///
    /// ```compile_fail,E0502
    /// let mut chunk = perfloc::chunk();
    /// let s = perfloc::String::from_str_in("x", &chunk).into_str();
    /// chunk.reset();
    /// assert_eq!(s, "x");
    /// ```
    #[inline]
    pub fn into_str(self) -> &'c mut str {
        let mut vec = self.vec;
        if vec.capacity() != vec.len() {
            vec.shrink_to_fit();
        }
        let bytes = vec.leak();
        // SAFETY: the bytes are valid UTF-8 (the field's invariant).
        unsafe { core::str::from_utf8_unchecked_mut(bytes) }
    }
}

impl<A: Allocator + Default> Default for String<A> {
    /// An empty string in `A::default()` (for `Global`: `String::default()`).
    fn default() -> Self {
        String::new_in(A::default())
    }
}

impl<A: Allocator> Deref for String<A> {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<A: Allocator> DerefMut for String<A> {
    #[inline]
    fn deref_mut(&mut self) -> &mut str {
        self.as_mut_str()
    }
}

impl<A: Allocator> AsRef<str> for String<A> {
    #[inline]
    fn as_ref(&self) -> &str {
        self
    }
}

impl<A: Allocator> AsMut<str> for String<A> {
    #[inline]
    fn as_mut(&mut self) -> &mut str {
        self
    }
}

impl<A: Allocator> AsRef<[u8]> for String<A> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<A: Allocator> Borrow<str> for String<A> {
    #[inline]
    fn borrow(&self) -> &str {
        self
    }
}

impl<A: Allocator> BorrowMut<str> for String<A> {
    #[inline]
    fn borrow_mut(&mut self) -> &mut str {
        self
    }
}

/// `write!` into a string: text that does not fit (the allocator refuses to grow the
/// string, say at a chunk's limit) is `fmt::Error`, never an abort, and the string keeps
/// what was written before.
///
/// ```
/// use core::fmt::Write;
///
/// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
/// let chunk = pool.chunk();
/// let mut s = perfloc::String::new_in(&chunk);
/// assert!(write!(s, "{}", 42).is_ok());
/// assert!(write!(s, "{}", "x".repeat(100 << 10)).is_err());
/// assert!(s.starts_with("42"));
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
impl<A: Allocator> fmt::Write for String<A> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.try_push_str(s).map_err(|_| fmt::Error)
    }

    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        self.try_push(c).map_err(|_| fmt::Error)
    }
}

/// A `fmt::Write` into a string that reports a failed growth as `fmt::Error` and remembers
/// it, to tell it apart from an error of a formatting-trait implementation.
pub(crate) struct TextWriter<A: Allocator> {
    pub(crate) string: String<A>,
    /// Set when the string could not grow.
    pub(crate) out_of_memory: bool,
}

impl<A: Allocator> TextWriter<A> {
    /// Formats `args` into `string`: `Err(AllocError)` if the string could not grow (it
    /// keeps what fitted); a formatting-trait implementation's own error panics, as
    /// `std::format!` does.
    #[track_caller]
    pub(crate) fn format(
        string: String<A>,
        args: fmt::Arguments<'_>,
    ) -> Result<String<A>, AllocError> {
        let mut out = TextWriter { string, out_of_memory: false };
        if fmt::write(&mut out, args).is_err() {
            if out.out_of_memory {
                return Err(AllocError);
            }
            format_error();
        }
        Ok(out.string)
    }
}

impl<A: Allocator> fmt::Write for TextWriter<A> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.string.try_push_str(s) {
            Ok(()) => Ok(()),
            Err(_) => self.failed(),
        }
    }

    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        match self.string.try_push(c) {
            Ok(()) => Ok(()),
            Err(_) => self.failed(),
        }
    }
}

impl<A: Allocator> TextWriter<A> {
    #[cold]
    fn failed(&mut self) -> fmt::Result {
        self.out_of_memory = true;
        Err(fmt::Error)
    }
}

impl<A: Allocator> fmt::Display for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl<A: Allocator> fmt::Debug for String<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<A: Allocator, B: Allocator> PartialEq<String<B>> for String<A> {
    #[inline]
    fn eq(&self, other: &String<B>) -> bool {
        self.as_str() == other.as_str()
    }
}

impl<A: Allocator> Eq for String<A> {}

impl<A: Allocator, B: Allocator> PartialOrd<String<B>> for String<A> {
    #[inline]
    fn partial_cmp(&self, other: &String<B>) -> Option<core::cmp::Ordering> {
        self.as_str().partial_cmp(other.as_str())
    }
}

impl<A: Allocator> Ord for String<A> {
    #[inline]
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<A: Allocator> Hash for String<A> {
    /// Hashes as the `str` it holds, so maps keyed by `String` can be looked up with `&str`.
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

/// `String == str`-like comparisons, both ways.
macro_rules! eq_with {
    ($($other:ty),*) => {$(
        impl<A: Allocator> PartialEq<$other> for String<A> {
            #[inline]
            fn eq(&self, other: &$other) -> bool {
                self.as_str() == &other[..]
            }
        }

        impl<A: Allocator> PartialEq<String<A>> for $other {
            #[inline]
            fn eq(&self, other: &String<A>) -> bool {
                &self[..] == other.as_str()
            }
        }
    )*};
}

eq_with!(str, &str, std::string::String);

impl<A: Allocator + Clone> Clone for String<A> {
    fn clone(&self) -> Self {
        String { vec: self.vec.clone() }
    }
}

impl<A: Allocator> Extend<char> for String<A> {
    fn extend<I: IntoIterator<Item = char>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        self.reserve(iter.size_hint().0);
        iter.for_each(|ch| self.push(ch));
    }
}

impl<'a, A: Allocator> Extend<&'a char> for String<A> {
    fn extend<I: IntoIterator<Item = &'a char>>(&mut self, iter: I) {
        self.extend(iter.into_iter().copied());
    }
}

impl<'a, A: Allocator> Extend<&'a str> for String<A> {
    fn extend<I: IntoIterator<Item = &'a str>>(&mut self, iter: I) {
        iter.into_iter().for_each(|s| self.push_str(s));
    }
}

/// The error of [`String::from_utf8_in`]: the bytes, which are not valid UTF-8, and where
/// they fail. No byte is lost: [`FromUtf8Error::into_bytes`] gives them back.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let chunk = perfloc::chunk();
/// let mut bytes = Vec::new_in(&chunk);
/// bytes.extend_from_slice(&[b'o', b'k', 0xff]);
/// let err = perfloc::String::from_utf8_in(bytes).unwrap_err();
/// assert_eq!(err.as_bytes(), &[b'o', b'k', 0xff]);
/// assert_eq!(err.to_string(), "invalid utf-8 sequence of 1 bytes from index 2");
/// ```
pub struct FromUtf8Error<A: Allocator = Global> {
    bytes: Vec<u8, A>,
    error: Utf8Error,
}

impl<A: Allocator> FromUtf8Error<A> {
    /// The bytes that were not valid UTF-8.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let bytes = perfloc::vec_in![in &chunk; 0xc0u8];
    /// let err = perfloc::String::from_utf8_in(bytes).unwrap_err();
    /// assert_eq!(err.as_bytes(), &[0xc0]);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Gives the bytes back, in their allocation.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let bytes = perfloc::vec_in![in &chunk; b'a', 0x80];
    /// let back = perfloc::String::from_utf8_in(bytes).unwrap_err().into_bytes();
    /// assert_eq!(back, [b'a', 0x80]);
    /// ```
    pub fn into_bytes(self) -> Vec<u8, A> {
        self.bytes
    }

    /// Where and why the bytes are not UTF-8.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// let bytes = perfloc::vec_in![in &chunk; b'a', 0x80];
    /// let err = perfloc::String::from_utf8_in(bytes).unwrap_err();
    /// assert_eq!(err.utf8_error().valid_up_to(), 1);
    /// ```
    pub fn utf8_error(&self) -> Utf8Error {
        self.error
    }
}

impl<A: Allocator> fmt::Debug for FromUtf8Error<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromUtf8Error")
            .field("bytes", &self.bytes.as_slice())
            .field("error", &self.error)
            .finish()
    }
}

impl<A: Allocator> fmt::Display for FromUtf8Error<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<A: Allocator> core::error::Error for FromUtf8Error<A> {}

/// Formats `args` into a fresh string in `alloc`; what [`format_in!`](crate::format_in)
/// expands to. A literal without arguments is copied at once.
///
/// # Panics
///
/// Panics if a `Display` (or other formatting trait) implementation returns an error, as
/// `std::format!` does; out of memory behaves as [`String::push_str`].
#[doc(hidden)]
#[inline]
#[track_caller]
pub fn format_in<A: Allocator>(alloc: A, args: fmt::Arguments<'_>) -> String<A> {
    if let Some(s) = args.as_str() {
        return String::from_str_in(s, alloc);
    }
    let mut string = String::new_in(alloc);
    if fmt::write(&mut Aborting(&mut string), args).is_err() {
        format_error();
    }
    string
}

/// `format_in!`'s writer: grows as `push_str` does, which aborts when the allocator
/// refuses, as `std::format!` does. The fallible growth of `String`'s own `fmt::Write`
/// (for `try_format_in!` and `write!`) costs `format_in!` 8% more instructions.
struct Aborting<'s, A: Allocator>(&'s mut String<A>);

impl<A: Allocator> fmt::Write for Aborting<'_, A> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(s);
        Ok(())
    }

    #[inline]
    fn write_char(&mut self, c: char) -> fmt::Result {
        self.0.push(c);
        Ok(())
    }
}

/// Formats `args` into a fresh string in `alloc`, or `AllocError` if it cannot grow; what
/// [`try_format_in!`](crate::try_format_in) expands to.
#[doc(hidden)]
#[inline]
#[track_caller]
pub fn try_format_in<A: Allocator>(
    alloc: A,
    args: fmt::Arguments<'_>,
) -> Result<String<A>, AllocError> {
    let string = String::new_in(alloc);
    match args.as_str() {
        Some(s) => {
            let mut string = string;
            string.try_push_str(s).map_err(|_| AllocError)?;
            Ok(string)
        }
        None => TextWriter::format(string, args),
    }
}

/// What a formatting-trait implementation that returned an error gets: a panic, as from
/// `std::format!` (a `String` never fails to take text).
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn format_error() -> ! {
    panic!("a Display implementation returned an error unexpectedly")
}

/// Formats into a string in an allocator, as `format!` does on the global heap:
/// `format_in!(alloc, "{}…", args…)` returns a [`String<A>`](String) for an allocator
/// expression of type `A` (`&chunk`, `&sync_chunk`, `Global`, …).
///
/// ```
/// use perfloc::{Chunk, String, format_in};
///
/// let chunk = perfloc::chunk();
/// let (user, id, ms) = ("ada", 42, 1.5);
/// let line: String<&Chunk> = format_in!(&chunk, "{user} #{id}: {ms:.1} ms");
/// assert_eq!(line, "ada #42: 1.5 ms");
///
/// let global = format_in!(allocator_api2::alloc::Global, "{}-{}", 1, 2);
/// assert_eq!(global, "1-2");
/// ```
///
/// # Panics
///
/// Panics if a formatting-trait implementation returns an error (as `format!` does). Out
/// of memory aborts the process, as for `format!` and [`String::push_str`]: in a chunk
/// with a limit, where a request's input decides the size, use
/// [`try_format_in!`](crate::try_format_in).
#[macro_export]
macro_rules! format_in {
    ($alloc:expr, $($arg:tt)*) => {
        $crate::__format_in($alloc, ::core::format_args!($($arg)*))
    };
}

/// [`format_in!`](crate::format_in) that returns `Err(AllocError)` when the string cannot
/// grow (a chunk's limit, the pool's, the OS), never an abort or a panic.
///
/// ```
/// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
/// let chunk = pool.chunk();
/// let ok = perfloc::try_format_in!(&chunk, "{}-{}", 1, 2).unwrap();
/// assert_eq!(ok, "1-2");
/// let big = "x".repeat(100 << 10);
/// assert!(perfloc::try_format_in!(&chunk, "{big}").is_err());
/// assert!(chunk.refused(), "the chunk says its limit was reached");
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
///
/// # Panics
///
/// Panics if a formatting-trait implementation returns an error of its own (as `format!`
/// does): only a want of memory is an `Err`.
#[macro_export]
macro_rules! try_format_in {
    ($alloc:expr, $($arg:tt)*) => {
        $crate::__try_format_in($alloc, ::core::format_args!($($arg)*))
    };
}
