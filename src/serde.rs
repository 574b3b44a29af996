//! serde support (feature `serde`): request data into and out of a chunk.
//!
//! **Out**: [`String`] is `Serialize`, and the feature turns on
//! allocator-api2's and hashbrown's `serde` features, so that `Vec`, `Box`, `HashMap` and
//! `HashSet` in a chunk serialize with perfloc as the only dependency. Serialize into a
//! byte vector in the chunk through [`VecWriter`](crate::VecWriter): at a chunk's limit
//! the serializer gets an `io` error instead of the process aborting.
//!
//! ```
//! use perfloc::{CollectIn, VecWriter};
//!
//! let chunk = perfloc::chunk();
//! let mut totals = perfloc::HashMap::new_in(&chunk);
//! totals.insert(perfloc::String::from_str_in("apples", &chunk), 3u32);
//! let ids = [7u64, 8].into_iter().collect_in::<perfloc::Vec<_>>(&chunk);
//! let mut body: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
//! serde_json::to_writer(VecWriter::new(&mut body), &(&ids, &totals))?;
//! assert_eq!(body, br#"[[7,8],{"apples":3}]"#);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! **In**: `#[derive(Deserialize)]` cannot build a `Vec<T, &Chunk>`: serde's `Deserialize`
//! has no way to pass the allocator in. [`DeserializeIn`] does: `T::deserialize_in(alloc,
//! deserializer)` builds a `T` whose collections live in `alloc`. It is implemented for
//! primitives, `&'de str` and `&'de [u8]` (borrowed from the input), [`Text`] (borrowed
//! when it can be, copied into the chunk when it must, as for a JSON string with escapes),
//! [`String`], allocator-api2's `Vec` and `Box`, hashbrown's `HashMap` and
//! `HashSet`, `Option`, tuples and arrays; and, with the feature `derive`,
//! `#[derive(perfloc::DeserializeIn)]` writes it for your structs and enums. Every growth
//! is fallible: at a chunk's limit the deserializer returns an error (and
//! [`ProcessChunk::refused`](crate::ProcessChunk::refused) says so), never an abort.
//!
//! ```
//! # #[cfg(feature = "derive")] {
//! use perfloc::allocator_api2::{alloc::Allocator, vec::Vec};
//! use perfloc::serde::{DeserializeIn, Text};
//!
//! // 'de: the input's lifetime (borrowed text); A: the allocator, `&Chunk` here.
//! #[derive(perfloc::DeserializeIn)]
//! struct Order<'de, A: Allocator> {
//!     id: u64,
//!     #[perfloc(rename = "customer")]
//!     name: Text<'de, A>,
//!     items: Vec<Item<'de>, A>,
//!     #[perfloc(default)]
//!     note: Option<&'de str>,
//! }
//!
//! #[derive(perfloc::DeserializeIn)]
//! struct Item<'de> {
//!     sku: &'de str,
//!     qty: u32,
//! }
//!
//! let chunk = perfloc::chunk();
//! let body = r#"{"id": 7, "customer": "Ada \"A\" L.", "items": [{"sku": "x1", "qty": 2}]}"#;
//! let mut de = serde_json::Deserializer::from_str(body);
//! let order = Order::deserialize_in(&chunk, &mut de)?;
//! assert_eq!((order.id, &*order.name, order.items[0].qty), (7, "Ada \"A\" L.", 2));
//! assert!(order.note.is_none());
//! # }
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! A `Vec` from a sequence of unknown length (JSON announces none) is allocated once, at
//! its exact length: its elements wait on a staging stack of the thread (up to 1 MiB,
//! from the global allocator, kept for the thread's life) and move into the chunk at the
//! end. A chunk takes back only its newest allocation, and while the elements' own fields
//! are allocated after it, a doubling `Vec` would leave each old copy behind. A longer
//! sequence moves into the chunk and grows there, so the chunk's limit still applies.
//!
//! The allocator is any `Copy` handle, `&Chunk` and `&SyncChunk` above all. Where no
//! derive fits, [`In`] is the `DeserializeSeed` of any `DeserializeIn` type, for
//! hand-written visitors.

use core::marker::PhantomData;

use ::serde::de::{self, DeserializeSeed, Deserializer};
use ::serde::{Serialize, Serializer};
use allocator_api2::alloc::Allocator;

use crate::String;

mod impls;
mod staging;
mod text;

pub use text::Text;

/// As a string, like `std::string::String`.
impl<A: Allocator> Serialize for String<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

/// A type that can be deserialized with its collections in the allocator `A`: serde's
/// `Deserialize` with an allocator passed in. `'de` is the input's lifetime, which `&'de
/// str` and [`Text`] borrow from.
///
/// ```
/// use perfloc::serde::DeserializeIn;
///
/// let chunk = perfloc::chunk();
/// let mut de = serde_json::Deserializer::from_str("[[1, 2], [3]]");
/// let rows: perfloc::Vec<perfloc::Vec<u8>> = DeserializeIn::deserialize_in(&chunk, &mut de)?;
/// assert_eq!(rows[1], [3]);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub trait DeserializeIn<'de, A>: Sized {
    /// Deserializes a value, its collections in `alloc`.
    ///
    /// # Errors
    ///
    /// The deserializer's error: malformed input, or (as a custom error) a growth the
    /// allocator refused.
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, deserializer: D) -> Result<Self, D::Error>;
}

/// The `DeserializeSeed` of a [`DeserializeIn`] type: carries the allocator into
/// `next_element_seed`, `next_value_seed` and the other seeded calls of a visitor.
///
/// ```
/// use perfloc::serde::In;
/// use serde::de::DeserializeSeed;
///
/// let chunk = perfloc::chunk();
/// let mut de = serde_json::Deserializer::from_str(r#""a\tb""#);
/// let text: perfloc::String<_> = In::new(&chunk).deserialize(&mut de)?;
/// assert_eq!(text, "a\tb");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub struct In<A, T> {
    alloc: A,
    marker: PhantomData<fn() -> T>,
}

impl<A, T> In<A, T> {
    /// The seed of a `T` in `alloc`.
    pub fn new(alloc: A) -> Self {
        In { alloc, marker: PhantomData }
    }
}

impl<'de, A, T: DeserializeIn<'de, A>> DeserializeSeed<'de> for In<A, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize_in(self.alloc, deserializer)
    }
}

/// The error of a growth the allocator refused, as a deserializer's error; the chunk's
/// [`refused`](crate::ProcessChunk::refused) says the same without the text.
pub(crate) fn out_of_memory<E: de::Error>(what: &str) -> E {
    E::custom(format_args!("perfloc: out of memory: the allocator refused to grow {what}"))
}

/// A field absent from the input: `None` for an `Option` (as serde's derive does), else
/// the format's "missing field" error. For the derive; not a public API.
#[doc(hidden)]
pub fn missing_field<'de, A, T: DeserializeIn<'de, A>, E: de::Error>(
    alloc: A,
    field: &'static str,
) -> Result<T, E> {
    T::deserialize_in(alloc, MissingField { field, marker: PhantomData })
}

/// A field's error, with the field's name in front: `field `items`: invalid type ...`.
/// For the derive; not a public API.
#[doc(hidden)]
pub fn in_field<E: de::Error>(field: &'static str, err: E) -> E {
    E::custom(format_args!("field `{field}`: {err}"))
}

/// The deserializer of an absent field: an `Option` gets `None`, anything else the
/// "missing field" error.
struct MissingField<E> {
    field: &'static str,
    marker: PhantomData<E>,
}

impl<'de, E: de::Error> Deserializer<'de> for MissingField<E> {
    type Error = E;

    fn deserialize_any<V: de::Visitor<'de>>(self, _visitor: V) -> Result<V::Value, E> {
        Err(E::missing_field(self.field))
    }

    fn deserialize_option<V: de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, E> {
        visitor.visit_none()
    }

    ::serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}
