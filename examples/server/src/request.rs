//! `POST /score`'s body, parsed by serde_json straight into the request's allocator.
//!
//! The body is
//! `{"user": "..", "region": "..", "items": [{"id": "..", "category": "..", "tags": [".."],
//! "price": 12.5, "qty": 3, "scores": [0.5, ..]}, ..]}` (unknown fields are skipped).
//! serde's derive would put every `Vec` on the global allocator, so the types are filled by
//! hand-written seeds ([`DeserializeSeed`]) that carry the allocator `A`: with a `&SyncChunk`
//! the whole parsed request lives in the request's chunk; with `Global` the same code makes
//! the same vectors on the global allocator. Strings borrow from the body unless the JSON
//! escapes them; an escaped one is copied into `A`.
//!
//! Every allocation is a `try_reserve` first, so a chunk that reaches its limit turns into
//! [`ParseError::OutOfMemory`] (413), never into `handle_alloc_error`.

use core::fmt;
use core::marker::PhantomData;

use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::vec::Vec;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a parse error means for the client.
#[derive(Debug)]
pub enum ParseError {
    /// Not JSON, or not a request's shape: 400.
    Malformed(serde_json::Error),
    /// The request's allocator refused memory (its chunk is at its limit): 413.
    OutOfMemory,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Malformed(err) => write!(f, "malformed request: {err}"),
            ParseError::OutOfMemory => f.write_str(OUT_OF_MEMORY),
        }
    }
}

/// The message of the serde error a seed returns when its allocator refuses memory; serde
/// errors carry only text, so [`parse`] recognises this one by its start.
const OUT_OF_MEMORY: &str = "the request's memory limit was reached";

fn out_of_memory<E: de::Error>() -> E {
    E::custom(OUT_OF_MEMORY)
}

/// Parses `body` into `alloc`.
///
/// # Errors
///
/// [`ParseError::Malformed`] for anything but a request's JSON, [`ParseError::OutOfMemory`]
/// when `alloc` refuses memory.
pub fn parse<'de, A: Allocator + Copy>(
    body: &'de [u8],
    alloc: A,
) -> Result<Request<'de, A>, ParseError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let request = RequestSeed(alloc).deserialize(&mut json).and_then(|request| {
        json.end()?;
        Ok(request)
    });
    request.map_err(|err| {
        if err.to_string().starts_with(OUT_OF_MEMORY) {
            ParseError::OutOfMemory
        } else {
            ParseError::Malformed(err)
        }
    })
}

/// A string of the body: borrowed, or copied into `A` when the JSON escaped it.
pub enum Text<'de, A: Allocator> {
    /// The bytes of the body itself.
    Borrowed(&'de str),
    /// Unescaped into the request's allocator.
    Owned(perfloc::String<A>),
}

impl<A: Allocator> Text<'_, A> {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(text) => text,
            Text::Owned(text) => text.as_str(),
        }
    }
}

/// A parsed `POST /score` body.
pub struct Request<'de, A: Allocator> {
    /// Who asks.
    pub user: Text<'de, A>,
    /// Where from (defaults to empty).
    pub region: Text<'de, A>,
    /// What to score.
    pub items: Vec<Item<'de, A>, A>,
}

/// One item of a request.
pub struct Item<'de, A: Allocator> {
    /// The item's identifier.
    pub id: Text<'de, A>,
    /// Its category, which the response totals by.
    pub category: Text<'de, A>,
    /// Free tags, counted in the response.
    pub tags: Vec<Text<'de, A>, A>,
    /// Unit price (default 0).
    pub price: f64,
    /// Quantity (default 1).
    pub qty: u32,
    /// Signals whose mean weighs the item's score.
    pub scores: Vec<f64, A>,
}

/// Deserializes a [`Text`] into `A`.
#[derive(Clone, Copy)]
struct TextSeed<A>(A);

impl<'de, A: Allocator + Copy> DeserializeSeed<'de> for TextSeed<A> {
    type Value = Text<'de, A>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, A: Allocator + Copy> Visitor<'de> for TextSeed<A> {
    type Value = Text<'de, A>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text::Borrowed(text))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        let mut owned = perfloc::String::new_in(self.0);
        owned.try_reserve(text.len()).map_err(|_| out_of_memory::<E>())?;
        owned.push_str(text);
        Ok(Text::Owned(owned))
    }
}

/// Deserializes a JSON array into a `Vec<S::Value, A>`, one `try_reserve` per element.
#[derive(Clone, Copy)]
struct SeqSeed<S, A> {
    element: S,
    alloc: A,
}

impl<'de, S, A> DeserializeSeed<'de> for SeqSeed<S, A>
where
    S: DeserializeSeed<'de> + Copy,
    A: Allocator + Copy,
{
    type Value = Vec<S::Value, A>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S, A> Visitor<'de> for SeqSeed<S, A>
where
    S: DeserializeSeed<'de> + Copy,
    A: Allocator + Copy,
{
    type Value = Vec<S::Value, A>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<Q: SeqAccess<'de>>(self, mut seq: Q) -> Result<Self::Value, Q::Error> {
        let mut elements = Vec::new_in(self.alloc);
        while let Some(element) = seq.next_element_seed(self.element)? {
            elements.try_reserve(1).map_err(|_| out_of_memory::<Q::Error>())?;
            elements.push(element);
        }
        Ok(elements)
    }
}

/// Deserializes one [`Item`].
#[derive(Clone, Copy)]
struct ItemSeed<A>(A);

impl<'de, A: Allocator + Copy> DeserializeSeed<'de> for ItemSeed<A> {
    type Value = Item<'de, A>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, A: Allocator + Copy> Visitor<'de> for ItemSeed<A> {
    type Value = Item<'de, A>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let alloc = self.0;
        let (mut id, mut category) = (None, None);
        let mut tags = Vec::new_in(alloc);
        let mut scores = Vec::new_in(alloc);
        let (mut price, mut qty) = (0.0, 1);
        while let Some(key) = map.next_key_seed(TextSeed(alloc))? {
            match key.as_str() {
                "id" => id = Some(map.next_value_seed(TextSeed(alloc))?),
                "category" => category = Some(map.next_value_seed(TextSeed(alloc))?),
                "tags" => {
                    tags = map.next_value_seed(SeqSeed { element: TextSeed(alloc), alloc })?
                }
                "price" => price = map.next_value()?,
                "qty" => qty = map.next_value()?,
                "scores" => {
                    scores = map.next_value_seed(SeqSeed { element: PhantomData::<f64>, alloc })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Item {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            category: category.ok_or_else(|| de::Error::missing_field("category"))?,
            tags,
            price,
            qty,
            scores,
        })
    }
}

/// Deserializes the whole [`Request`].
struct RequestSeed<A>(A);

impl<'de, A: Allocator + Copy> DeserializeSeed<'de> for RequestSeed<A> {
    type Value = Request<'de, A>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, A: Allocator + Copy> Visitor<'de> for RequestSeed<A> {
    type Value = Request<'de, A>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let alloc = self.0;
        let (mut user, mut region, mut items) = (None, None, None);
        while let Some(key) = map.next_key_seed(TextSeed(alloc))? {
            match key.as_str() {
                "user" => user = Some(map.next_value_seed(TextSeed(alloc))?),
                "region" => region = Some(map.next_value_seed(TextSeed(alloc))?),
                "items" => {
                    items = Some(map.next_value_seed(SeqSeed { element: ItemSeed(alloc), alloc })?)
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Request {
            user: user.ok_or_else(|| de::Error::missing_field("user"))?,
            region: region.unwrap_or(Text::Borrowed("")),
            items: items.ok_or_else(|| de::Error::missing_field("items"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use perfloc::allocator_api2::alloc::Global;

    use super::*;

    #[test]
    fn strings_borrow_from_the_body_unless_escaped() {
        let body = br#"{"user":"caf\u00e9","items":[{"id":"a","category":"b\"c","tags":["x"],"price":2.5,"qty":4,"scores":[1,2],"extra":{"deep":[1]}}]}"#;
        let request = parse(body, Global).unwrap();
        assert!(matches!(request.user, Text::Owned(_)));
        assert_eq!(request.user.as_str(), "café");
        assert_eq!(request.region.as_str(), "");
        let item = &request.items[0];
        assert!(matches!(item.id, Text::Borrowed("a")));
        assert_eq!(item.category.as_str(), "b\"c");
        assert_eq!((item.price, item.qty, &item.scores[..]), (2.5, 4, &[1.0, 2.0][..]));
        assert_eq!(item.tags[0].as_str(), "x");
    }

    #[test]
    fn malformed_bodies_are_malformed() {
        for body in [
            &b"{"[..],
            b"[]",
            br#"{"user":"u"}"#,
            br#"{"user":"u","items":[{"category":"c"}]}"#,
            br#"{"user":"u","items":[{"id":"i","category":"c","qty":-1}]}"#,
            br#"{"user":"u","items":[]} trailing"#,
        ] {
            assert!(matches!(parse(body, Global), Err(ParseError::Malformed(_))), "{body:?}");
        }
    }

    #[test]
    fn a_full_chunk_is_out_of_memory_not_malformed() {
        let pool = perfloc::Pool::builder().chunk_limit(16 << 10).build().unwrap();
        let chunk = pool.sync_chunk();
        let mut body = std::string::String::from(r#"{"user":"u","items":["#);
        for i in 0..2000 {
            body.push_str(&format!(r#"{{"id":"i{i}","category":"c","scores":[1,2,3]}},"#));
        }
        body.pop();
        body.push_str("]}");
        assert!(matches!(parse(body.as_bytes(), &chunk), Err(ParseError::OutOfMemory)));
        // The chunk still serves what fits.
        assert!(parse(br#"{"user":"u","items":[]}"#, &chunk).is_ok());
    }
}
