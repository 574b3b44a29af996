//! Collecting into a chunk: [`CollectIn`] (`iter.collect_in::<Vec<_, _>>(&chunk)`), the
//! [`FromIteratorIn`] trait behind it, and the [`vec_in!`](crate::vec_in) macro.

use allocator_api2::alloc::Allocator;
use allocator_api2::collections::TryReserveError;
use allocator_api2::vec::Vec;

use crate::String;

/// A collection that can be built from an iterator in a given allocator: `FromIterator`
/// with an allocator (bumpalo's trait of the same name). Implemented for
/// `allocator_api2::vec::Vec<T, A>` and for [`String<A>`](String) from `char`, `&char`
/// and `&str`.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use perfloc::FromIteratorIn;
///
/// let chunk = perfloc::chunk();
/// let v = Vec::from_iter_in([1, 2, 3], &chunk);
/// assert_eq!(v, [1, 2, 3]);
/// ```
pub trait FromIteratorIn<T>: Sized {
    /// The allocator the collection lives in.
    type Alloc: Allocator;

    /// The collection of `iter`'s items, in `alloc`.
    ///
    /// ```
    /// use perfloc::FromIteratorIn;
    ///
    /// let chunk = perfloc::chunk();
    /// let s = perfloc::String::from_iter_in(['o', 'k'], &chunk);
    /// assert_eq!(s, "ok");
    /// ```
    fn from_iter_in<I: IntoIterator<Item = T>>(iter: I, alloc: Self::Alloc) -> Self;
}

impl<T, A: Allocator> FromIteratorIn<T> for Vec<T, A> {
    type Alloc = A;

    #[inline]
    fn from_iter_in<I: IntoIterator<Item = T>>(iter: I, alloc: A) -> Self {
        let mut vec = Vec::new_in(alloc);
        vec.extend(iter);
        vec
    }
}

impl<A: Allocator> FromIteratorIn<char> for String<A> {
    type Alloc = A;

    #[inline]
    fn from_iter_in<I: IntoIterator<Item = char>>(iter: I, alloc: A) -> Self {
        let mut s = String::new_in(alloc);
        s.extend(iter);
        s
    }
}

impl<'a, A: Allocator> FromIteratorIn<&'a char> for String<A> {
    type Alloc = A;

    #[inline]
    fn from_iter_in<I: IntoIterator<Item = &'a char>>(iter: I, alloc: A) -> Self {
        let mut s = String::new_in(alloc);
        s.extend(iter);
        s
    }
}

impl<'a, A: Allocator> FromIteratorIn<&'a str> for String<A> {
    type Alloc = A;

    #[inline]
    fn from_iter_in<I: IntoIterator<Item = &'a str>>(iter: I, alloc: A) -> Self {
        let mut s = String::new_in(alloc);
        s.extend(iter);
        s
    }
}

/// [`FromIteratorIn`] that never aborts: growth is fallible, and when the allocator refuses
/// (a chunk's limit, say) the items taken so far are dropped and the error returned.
/// Implemented for `allocator_api2::vec::Vec<T, A>` and [`String<A>`](String) from `char`
/// and `&str`; [`CollectIn::try_collect_in`] calls it.
pub trait TryFromIteratorIn<T>: Sized {
    /// The allocator the collection lives in.
    type Alloc: Allocator;

    /// The collection of `iter`'s items, in `alloc`, or the error of the growth that
    /// failed.
    fn try_from_iter_in<I: IntoIterator<Item = T>>(
        iter: I,
        alloc: Self::Alloc,
    ) -> Result<Self, TryReserveError>;
}

impl<T, A: Allocator> TryFromIteratorIn<T> for Vec<T, A> {
    type Alloc = A;

    fn try_from_iter_in<I: IntoIterator<Item = T>>(
        iter: I,
        alloc: A,
    ) -> Result<Self, TryReserveError> {
        let iter = iter.into_iter();
        let mut vec = Vec::new_in(alloc);
        vec.try_reserve(iter.size_hint().0)?;
        for item in iter {
            if vec.len() == vec.capacity() {
                vec.try_reserve(1)?;
            }
            vec.push(item); // never grows: there is room
        }
        Ok(vec)
    }
}

impl<A: Allocator> TryFromIteratorIn<char> for String<A> {
    type Alloc = A;

    fn try_from_iter_in<I: IntoIterator<Item = char>>(
        iter: I,
        alloc: A,
    ) -> Result<Self, TryReserveError> {
        let mut s = String::new_in(alloc);
        for ch in iter {
            s.try_push(ch)?;
        }
        Ok(s)
    }
}

impl<'a, A: Allocator> TryFromIteratorIn<&'a str> for String<A> {
    type Alloc = A;

    fn try_from_iter_in<I: IntoIterator<Item = &'a str>>(
        iter: I,
        alloc: A,
    ) -> Result<Self, TryReserveError> {
        let mut s = String::new_in(alloc);
        for part in iter {
            s.try_push_str(part)?;
        }
        Ok(s)
    }
}

/// `collect` into a collection in an allocator: `iter.collect_in::<C>(alloc)` for any
/// [`FromIteratorIn`] collection `C`. Implemented for every iterator.
///
/// ```
/// use allocator_api2::vec::Vec;
/// use perfloc::{CollectIn, String};
///
/// let chunk = perfloc::chunk();
/// let lens = ["GET", "/", "HTTP/1.1"].iter().map(|w| w.len()).collect_in::<Vec<_, _>>(&chunk);
/// assert_eq!(lens, [3, 1, 8]);
/// let upper = "get".chars().map(|c| c.to_ascii_uppercase()).collect_in::<String<_>>(&chunk);
/// assert_eq!(upper, "GET");
/// ```
pub trait CollectIn: Iterator + Sized {
    /// Collects the items into a `C` in `alloc`.
    ///
    /// ```
    /// use perfloc::CollectIn;
    ///
    /// let chunk = perfloc::sync_chunk();
    /// let path = ["api", "v1", "users"].into_iter().collect_in::<perfloc::String<_>>(&chunk);
    /// assert_eq!(path, "apiv1users");
    /// ```
    #[inline]
    fn collect_in<C: FromIteratorIn<Self::Item>>(self, alloc: C::Alloc) -> C {
        C::from_iter_in(self, alloc)
    }

    /// Collects the items into a `C` in `alloc`, or returns the error of a growth the
    /// allocator refused: `collect_in` that never aborts at a chunk's limit.
    ///
    /// ```
    /// use perfloc::CollectIn;
    ///
    /// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// let small = (0..100u32).try_collect_in::<perfloc::Vec<_>>(&chunk);
    /// assert_eq!(small.unwrap().len(), 100);
    /// let huge = (0..1_000_000u32).try_collect_in::<perfloc::Vec<_>>(&chunk);
    /// assert!(huge.is_err() && chunk.refused());
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[inline]
    fn try_collect_in<C: TryFromIteratorIn<Self::Item>>(
        self,
        alloc: C::Alloc,
    ) -> Result<C, TryReserveError> {
        C::try_from_iter_in(self, alloc)
    }
}

impl<I: Iterator> CollectIn for I {}

/// Creates an `allocator_api2::vec::Vec` in an allocator, with `vec!`'s syntax:
/// `vec_in![in alloc; a, b, c]`, `vec_in![in alloc; elem; n]` (`n` clones of `elem`, as
/// `vec!` does) or `vec_in![in alloc]` (empty). Use it rather than allocator-api2 0.2's
/// `vec![in alloc; a, b]`, whose list form only compiles for `Global`; it also works when
/// allocator-api2 forwards to the standard library (its `nightly` feature), and needs no
/// dependency on allocator-api2 in the caller.
///
/// ```
/// use perfloc::vec_in;
///
/// let chunk = perfloc::chunk();
/// let ports = vec_in![in &chunk; 80u16, 443, 8080];
/// assert_eq!(ports, [80, 443, 8080]);
/// let zeros = vec_in![in &chunk; 0u8; 16];
/// assert_eq!(zeros.len(), 16);
/// let mut empty = vec_in![in &chunk];
/// empty.push('x');
/// assert_eq!(empty, ['x']);
/// ```
#[macro_export]
macro_rules! vec_in {
    (in $alloc:expr $(;)?) => {
        $crate::__private::Vec::new_in($alloc)
    };
    (in $alloc:expr; $elem:expr; $n:expr) => {{
        let n: usize = $n;
        let mut vec = $crate::__private::Vec::with_capacity_in(n, $alloc);
        vec.resize(n, $elem);
        vec
    }};
    (in $alloc:expr; $($x:expr),+ $(,)?) => {{
        let mut vec = $crate::__private::Vec::with_capacity_in(
            <[()]>::len(&[$($crate::vec_in!(@unit $x)),+]),
            $alloc,
        );
        $(vec.push($x);)+
        vec
    }};
    (@unit $x:expr) => {
        ()
    };
}
