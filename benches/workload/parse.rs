//! Parsing a JSON request body (the shape of `examples/server`'s `POST /score`) into a
//! chunk with `#[derive(perfloc::DeserializeIn)]`, against serde's own derive into std
//! types on the global allocator, for `examples/instructions.rs` and `benches/request.rs`.

use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::vec::Vec;
use perfloc::serde::{DeserializeIn, Text};

/// The body: `items` items, each with an id, a category, two tags (one escaped), a price,
/// a quantity and four scores; 20 items make about 4 KB, the server's calm body.
pub fn body(items: usize) -> std::string::String {
    let items: std::vec::Vec<std::string::String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"id":"item-{i:04}","category":"cat-{}","tags":["sale","x\ty"],"price":{}.5,"qty":{},"scores":[0.25,0.5,0.75,{i}]}}"#,
                i % 7,
                i % 50,
                i % 5 + 1
            )
        })
        .collect();
    format!(r#"{{"user":"user-42","region":"eu-west","items":[{}]}}"#, items.join(","))
}

/// The request, in a chunk.
#[derive(perfloc::DeserializeIn)]
pub struct Request<'de, A: Allocator> {
    pub user: Text<'de, A>,
    #[perfloc(default)]
    pub region: Text<'de, A>,
    pub items: Vec<Item<'de, A>, A>,
}

/// One item, in a chunk.
#[derive(perfloc::DeserializeIn)]
pub struct Item<'de, A: Allocator> {
    pub id: Text<'de, A>,
    pub category: Text<'de, A>,
    #[perfloc(default = "Vec::new_in")]
    pub tags: Vec<Text<'de, A>, A>,
    #[perfloc(default)]
    pub price: f64,
    #[perfloc(default)]
    pub qty: u32,
    #[perfloc(default = "Vec::new_in")]
    pub scores: Vec<f64, A>,
}

/// The same request in std types, as a serde user writes it.
#[derive(serde::Deserialize)]
pub struct StdRequest {
    pub user: std::string::String,
    #[serde(default)]
    pub region: std::string::String,
    pub items: std::vec::Vec<StdItem>,
}

/// One item in std types.
#[derive(serde::Deserialize)]
pub struct StdItem {
    pub id: std::string::String,
    pub category: std::string::String,
    #[serde(default)]
    pub tags: std::vec::Vec<std::string::String>,
    #[serde(default)]
    pub price: f64,
    #[serde(default)]
    pub qty: u32,
    #[serde(default)]
    pub scores: std::vec::Vec<f64>,
}

/// Parses `body` into `alloc`; returns a checksum of every field it read.
pub fn perfloc<A: Allocator + Copy>(body: &str, alloc: A) -> usize {
    let mut de = serde_json::Deserializer::from_str(body);
    let request = Request::deserialize_in(alloc, &mut de).expect("a well-formed body");
    let items = request.items.iter().map(|i| {
        let tags = i.tags.len() + i.tags[1].len();
        i.id.len() + i.category.len() + tags + i.price as usize + i.qty as usize + i.scores.len()
    });
    request.user.len() + request.region.len() + items.sum::<usize>()
}

/// Parses `body` into std types on the global allocator; the same checksum.
pub fn std(body: &str) -> usize {
    let request: StdRequest = serde_json::from_str(body).expect("a well-formed body");
    let items = request.items.iter().map(|i| {
        let tags = i.tags.len() + i.tags[1].len();
        i.id.len() + i.category.len() + tags + i.price as usize + i.qty as usize + i.scores.len()
    });
    request.user.len() + request.region.len() + items.sum::<usize>()
}
