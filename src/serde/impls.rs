//! [`DeserializeIn`] for primitives, borrowed text and bytes, [`String`], allocator-api2's
//! `Vec` and `Box`, hashbrown's `HashMap` and `HashSet`, `Option`, tuples and arrays.
//!
//! Collections grow only through `try_reserve`: a growth the allocator refuses is the
//! deserializer's error ([`out_of_memory`]). A length the input announces is trusted only
//! up to 1 MiB of elements ahead (as serde's own `size_hint::cautious`), so a lying prefix
//! cannot make one request reserve the whole cap at once.

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use ::serde::Deserialize;
use ::serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use allocator_api2::alloc::Allocator;
use allocator_api2::boxed::Box;
use allocator_api2::vec::Vec;
use hashbrown::{HashMap, HashSet};

use super::staging::Staged;
use super::{DeserializeIn, In, out_of_memory};
use crate::String;

/// The type a visitor makes, without owning one.
type Marker<T> = PhantomData<fn() -> T>;

/// Elements to reserve ahead for an announced length: at most 1 MiB of them.
fn cautious<T>(hint: Option<usize>) -> usize {
    const AHEAD: usize = 1 << 20;
    hint.unwrap_or(0).min(AHEAD / size_of::<T>().max(1))
}

/// Types that need no allocator: serde's own `Deserialize`.
macro_rules! plain {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de, A> DeserializeIn<'de, A> for $ty {
            #[inline]
            fn deserialize_in<D: Deserializer<'de>>(_: A, d: D) -> Result<Self, D::Error> {
                <$ty as Deserialize<'de>>::deserialize(d)
            }
        }
    )*};
}

plain!(bool, char, (), i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);
plain!(&'de str, &'de [u8], core::num::NonZeroU32, core::num::NonZeroU64);

impl<'de, A: Allocator> DeserializeIn<'de, A> for String<A> {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct StrVisitor<A>(A);

        impl<'de, A: Allocator> Visitor<'de> for StrVisitor<A> {
            type Value = String<A>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<String<A>, E> {
                let mut s = String::new_in(self.0);
                s.try_push_str(v).map_err(|_| out_of_memory("a String"))?;
                Ok(s)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String<A>, E> {
                match core::str::from_utf8(v) {
                    Ok(v) => self.visit_str(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
        }

        d.deserialize_str(StrVisitor(alloc))
    }
}

impl<'de, T: DeserializeIn<'de, A>, A: Allocator + Copy> DeserializeIn<'de, A> for Vec<T, A> {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct SeqVisitor<A, T>(A, PhantomData<fn() -> T>);

        impl<'de, T: DeserializeIn<'de, A>, A: Allocator + Copy> Visitor<'de> for SeqVisitor<A, T> {
            type Value = Vec<T, A>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Vec<T, A>, S::Error> {
                let hint = seq.size_hint();
                // No length announced: park the elements, then one exact `Vec`.
                let staged = if hint.is_none() { Staged::open() } else { None };
                let mut vec = match staged {
                    Some(mut staged) => loop {
                        let Some(item) = seq.next_element_seed(In::<A, T>::new(self.0))? else {
                            return staged
                                .into_vec(self.0, 0)
                                .ok_or_else(|| out_of_memory("a Vec"));
                        };
                        // No room left on the stack: the rest grows in the chunk.
                        if let Err(item) = staged.push(item) {
                            let extra = staged.len().max(1);
                            let mut vec = staged
                                .into_vec(self.0, extra)
                                .ok_or_else(|| out_of_memory("a Vec"))?;
                            vec.push(item); // room reserved just above
                            break vec;
                        }
                    },
                    None => Vec::new_in(self.0),
                };
                vec.try_reserve(cautious::<T>(hint)).map_err(|_| out_of_memory("a Vec"))?;
                while let Some(item) = seq.next_element_seed(In::<A, T>::new(self.0))? {
                    if vec.len() == vec.capacity() {
                        vec.try_reserve(1).map_err(|_| out_of_memory("a Vec"))?;
                    }
                    vec.push(item); // there is room: never grows, never aborts
                }
                Ok(vec)
            }
        }

        d.deserialize_seq(SeqVisitor(alloc, PhantomData))
    }
}

impl<'de, T: DeserializeIn<'de, A>, A: Allocator + Copy> DeserializeIn<'de, A> for Box<T, A> {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        let value = T::deserialize_in(alloc, d)?;
        Box::try_new_in(value, alloc).map_err(|_| out_of_memory("a Box"))
    }
}

impl<'de, T: DeserializeIn<'de, A>, A: Copy> DeserializeIn<'de, A> for Option<T> {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct OptionVisitor<A, T>(A, PhantomData<fn() -> T>);

        impl<'de, T: DeserializeIn<'de, A>, A: Copy> Visitor<'de> for OptionVisitor<A, T> {
            type Value = Option<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an option")
            }

            fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
                T::deserialize_in(self.0, d).map(Some)
            }
        }

        d.deserialize_option(OptionVisitor(alloc, PhantomData))
    }
}

impl<'de, K, V, S, A> DeserializeIn<'de, A> for HashMap<K, V, S, A>
where
    K: DeserializeIn<'de, A> + Eq + Hash,
    V: DeserializeIn<'de, A>,
    S: BuildHasher + Default,
    A: Allocator + Copy,
{
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct MapVisitor<A, K, V, S>(A, Marker<(K, V, S)>);

        impl<'de, K, V, S, A> Visitor<'de> for MapVisitor<A, K, V, S>
        where
            K: DeserializeIn<'de, A> + Eq + Hash,
            V: DeserializeIn<'de, A>,
            S: BuildHasher + Default,
            A: Allocator + Copy,
        {
            type Value = HashMap<K, V, S, A>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = HashMap::with_hasher_in(S::default(), self.0);
                out.try_reserve(cautious::<(K, V)>(map.size_hint()))
                    .map_err(|_| out_of_memory("a HashMap"))?;
                while let Some((k, v)) =
                    map.next_entry_seed(In::<A, K>::new(self.0), In::<A, V>::new(self.0))?
                {
                    // Room for one more entry first: `insert` then never grows.
                    out.try_reserve(1).map_err(|_| out_of_memory("a HashMap"))?;
                    out.insert(k, v);
                }
                Ok(out)
            }
        }

        d.deserialize_map(MapVisitor(alloc, PhantomData))
    }
}

impl<'de, T, S, A> DeserializeIn<'de, A> for HashSet<T, S, A>
where
    T: DeserializeIn<'de, A> + Eq + Hash,
    S: BuildHasher + Default,
    A: Allocator + Copy,
{
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct SetVisitor<A, T, S>(A, PhantomData<fn() -> (T, S)>);

        impl<'de, T, S, A> Visitor<'de> for SetVisitor<A, T, S>
        where
            T: DeserializeIn<'de, A> + Eq + Hash,
            S: BuildHasher + Default,
            A: Allocator + Copy,
        {
            type Value = HashSet<T, S, A>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<Q: SeqAccess<'de>>(self, mut seq: Q) -> Result<Self::Value, Q::Error> {
                let mut out = HashSet::with_hasher_in(S::default(), self.0);
                out.try_reserve(cautious::<T>(seq.size_hint()))
                    .map_err(|_| out_of_memory("a HashSet"))?;
                while let Some(item) = seq.next_element_seed(In::<A, T>::new(self.0))? {
                    out.try_reserve(1).map_err(|_| out_of_memory("a HashSet"))?;
                    out.insert(item);
                }
                Ok(out)
            }
        }

        d.deserialize_seq(SetVisitor(alloc, PhantomData))
    }
}

impl<'de, T: DeserializeIn<'de, A>, A: Copy, const N: usize> DeserializeIn<'de, A> for [T; N] {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct ArrayVisitor<A, T, const N: usize>(A, PhantomData<fn() -> T>);

        impl<'de, T: DeserializeIn<'de, A>, A: Copy, const N: usize> Visitor<'de>
            for ArrayVisitor<A, T, N>
        {
            type Value = [T; N];

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of {N} elements")
            }

            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<[T; N], S::Error> {
                let mut items: [Option<T>; N] = core::array::from_fn(|_| None);
                for (i, slot) in items.iter_mut().enumerate() {
                    match seq.next_element_seed(In::<A, T>::new(self.0))? {
                        Some(item) => *slot = Some(item),
                        None => return Err(de::Error::invalid_length(i, &self)),
                    }
                }
                Ok(items.map(|item| item.expect("every element was set above")))
            }
        }

        d.deserialize_tuple(N, ArrayVisitor(alloc, PhantomData))
    }
}

/// Tuples up to six elements.
macro_rules! tuple {
    ($len:literal: $($t:ident $v:ident),+) => {
        impl<'de, A: Copy, $($t: DeserializeIn<'de, A>),+> DeserializeIn<'de, A> for ($($t,)+) {
            fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
                struct TupleVisitor<A, $($t),+>(A, PhantomData<fn() -> ($($t,)+)>);

                impl<'de, A: Copy, $($t: DeserializeIn<'de, A>),+> Visitor<'de>
                    for TupleVisitor<A, $($t),+>
                {
                    type Value = ($($t,)+);

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "a tuple of {} elements", $len)
                    }

                    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                        let mut index = 0;
                        $(
                            let $v = match seq.next_element_seed(In::<A, $t>::new(self.0))? {
                                Some(value) => value,
                                None => return Err(de::Error::invalid_length(index, &self)),
                            };
                            index += 1;
                        )+
                        let _ = index;
                        Ok(($($v,)+))
                    }
                }

                d.deserialize_tuple($len, TupleVisitor(alloc, PhantomData))
            }
        }
    };
}

tuple!(1: T0 a);
tuple!(2: T0 a, T1 b);
tuple!(3: T0 a, T1 b, T2 c);
tuple!(4: T0 a, T1 b, T2 c, T3 d);
tuple!(5: T0 a, T1 b, T2 c, T3 d, T4 e);
tuple!(6: T0 a, T1 b, T2 c, T3 d, T4 e, T5 f);
