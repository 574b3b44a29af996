//! `POST /score`'s body, parsed by serde_json straight into the request's allocator.
//!
//! The body is
//! `{"user": "..", "region": "..", "items": [{"id": "..", "category": "..", "tags": [".."],
//! "price": 12.5, "qty": 3, "scores": [0.5, ..]}, ..]}` (unknown fields are skipped).
//! `#[derive(perfloc::DeserializeIn)]` writes the parser: with a `&SyncChunk` the whole
//! parsed request lives in the request's chunk; with `Global` the same code makes the same
//! vectors on the global allocator. Strings borrow from the body unless the JSON escapes
//! them; an escaped one is copied into `A` ([`Text`]).
//!
//! Every growth is fallible, so a chunk that reaches its limit turns into
//! [`ParseError::OutOfMemory`] (413), never into `handle_alloc_error`; the allocator itself
//! says so ([`Refusals`]), no error text is matched.

use core::fmt;

use perfloc::allocator_api2::alloc::{Allocator, Global};
use perfloc::allocator_api2::vec::Vec;
use perfloc::serde::DeserializeIn;
pub use perfloc::serde::Text;

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
            ParseError::OutOfMemory => f.write_str("the request's memory limit was reached"),
        }
    }
}

/// Whether an allocator refused memory since the request began: a chunk knows
/// ([`perfloc::ProcessChunk::refused`]); the global allocator never refuses (it aborts).
pub trait Refusals {
    /// True if the allocator refused an allocation.
    fn refused(&self) -> bool;
}

impl Refusals for Global {
    fn refused(&self) -> bool {
        false
    }
}

impl<K: perfloc::BumpState> Refusals for &perfloc::ProcessChunk<'_, K> {
    fn refused(&self) -> bool {
        perfloc::ProcessChunk::refused(self)
    }
}

/// Parses `body` into `alloc`.
///
/// # Errors
///
/// [`ParseError::Malformed`] for anything but a request's JSON, [`ParseError::OutOfMemory`]
/// when `alloc` refuses memory.
pub fn parse<'de, A: Allocator + Copy + Refusals>(
    body: &'de [u8],
    alloc: A,
) -> Result<Request<'de, A>, ParseError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let request = Request::deserialize_in(alloc, &mut json).and_then(|request| {
        json.end()?;
        Ok(request)
    });
    request.map_err(|err| {
        if alloc.refused() { ParseError::OutOfMemory } else { ParseError::Malformed(err) }
    })
}

/// A parsed `POST /score` body.
#[derive(perfloc::DeserializeIn)]
pub struct Request<'de, A: Allocator> {
    /// Who asks.
    pub user: Text<'de, A>,
    /// Where from (defaults to empty).
    #[perfloc(default)]
    pub region: Text<'de, A>,
    /// What to score.
    pub items: Vec<Item<'de, A>, A>,
}

/// One item of a request.
#[derive(perfloc::DeserializeIn)]
pub struct Item<'de, A: Allocator> {
    /// The item's identifier.
    pub id: Text<'de, A>,
    /// Its category, which the response totals by.
    pub category: Text<'de, A>,
    /// Free tags, counted in the response.
    #[perfloc(default = "Vec::new_in")]
    pub tags: Vec<Text<'de, A>, A>,
    /// Unit price (default 0).
    #[perfloc(default)]
    pub price: f64,
    /// Quantity (default 1).
    #[perfloc(default = "one")]
    pub qty: u32,
    /// Signals whose mean weighs the item's score.
    #[perfloc(default = "Vec::new_in")]
    pub scores: Vec<f64, A>,
}

/// An item's quantity when the body gives none.
fn one<A>(_: A) -> u32 {
    1
}

#[cfg(test)]
mod tests {
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
