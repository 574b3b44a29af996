//! [`Text`]: a string borrowed from the input when it can be, copied into the chunk when it
//! must be (a JSON string with escapes, a reader-based deserializer).

use core::fmt;
use core::ops::Deref;

use ::serde::de::{self, Deserializer, Visitor};
use ::serde::{Serialize, Serializer};
use allocator_api2::alloc::Allocator;

use super::{DeserializeIn, out_of_memory};
use crate::String;

/// Text from a deserializer: `Borrowed` from the input when the format hands out a slice
/// of it (a JSON string without escapes), else `Owned`, copied into the allocator `A` (a
/// string whose escapes had to be decoded). Either way it dereferences to `str`, and costs
/// no copy when none is needed: the field type for request text.
///
/// ```
/// use perfloc::serde::{DeserializeIn, Text};
///
/// let chunk = perfloc::chunk();
/// let mut de = serde_json::Deserializer::from_str(r#"["plain", "tab\there"]"#);
/// let [plain, escaped]: [Text<'_, _>; 2] = DeserializeIn::deserialize_in(&chunk, &mut de)?;
/// assert!(matches!(plain, Text::Borrowed("plain")));
/// assert!(matches!(escaped, Text::Owned(_)));
/// assert_eq!(&*escaped, "tab\there");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub enum Text<'de, A: Allocator> {
    /// A slice of the input.
    Borrowed(&'de str),
    /// A copy in the allocator.
    Owned(String<A>),
}

impl<A: Allocator> Text<'_, A> {
    /// The text.
    pub fn as_str(&self) -> &str {
        self
    }
}

impl<A: Allocator> Deref for Text<'_, A> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl<A: Allocator> AsRef<str> for Text<'_, A> {
    fn as_ref(&self) -> &str {
        self
    }
}

/// The empty text, borrowed: for `#[perfloc(default)]` fields.
impl<A: Allocator> Default for Text<'_, A> {
    fn default() -> Self {
        Text::Borrowed("")
    }
}

/// Hashes and compares as `str`: a map keyed by `Text` is looked up with a `&str`.
impl<A: Allocator> core::borrow::Borrow<str> for Text<'_, A> {
    fn borrow(&self) -> &str {
        self
    }
}

impl<A: Allocator> fmt::Debug for Text<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<A: Allocator> fmt::Display for Text<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<A: Allocator, B: Allocator> PartialEq<Text<'_, B>> for Text<'_, A> {
    fn eq(&self, other: &Text<'_, B>) -> bool {
        **self == **other
    }
}

impl<A: Allocator> Eq for Text<'_, A> {}

impl<A: Allocator> PartialEq<str> for Text<'_, A> {
    fn eq(&self, other: &str) -> bool {
        &**self == other
    }
}

impl<A: Allocator> PartialEq<&str> for Text<'_, A> {
    fn eq(&self, other: &&str) -> bool {
        &**self == *other
    }
}

impl<A: Allocator> core::hash::Hash for Text<'_, A> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<A: Allocator> Serialize for Text<'_, A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl<'de, A: Allocator> DeserializeIn<'de, A> for Text<'de, A> {
    fn deserialize_in<D: Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        struct TextVisitor<A>(A);

        impl<'de, A: Allocator> Visitor<'de> for TextVisitor<A> {
            type Value = Text<'de, A>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text::Borrowed(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let mut s = String::new_in(self.0);
                s.try_push_str(v).map_err(|_| out_of_memory("a Text"))?;
                Ok(Text::Owned(s))
            }

            fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                match core::str::from_utf8(v) {
                    Ok(v) => Ok(Text::Borrowed(v)),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                match core::str::from_utf8(v) {
                    Ok(v) => self.visit_str(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
        }

        d.deserialize_str(TextVisitor(alloc))
    }
}
