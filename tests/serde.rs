//! Request data into a chunk with `#[derive(perfloc::DeserializeIn)]`, from JSON
//! (serde_json) and from a binary format (postcard): borrowed and copied text, nested
//! collections, `rename`, `default`, `skip`, unknown fields, enums (unit and newtype
//! variants, externally tagged), errors that name the field, and growth that fails with an
//! error (never an abort) at a chunk's limit.

use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::boxed::Box;
use perfloc::allocator_api2::vec::Vec;
use perfloc::hashbrown::{DefaultHashBuilder, HashMap, HashSet};
use perfloc::serde::{DeserializeIn, Text};
use perfloc::{Chunk, Pool};

#[derive(perfloc::DeserializeIn, Debug)]
struct Order<'de, A: Allocator> {
    id: u64,
    #[perfloc(rename = "customer")]
    name: Text<'de, A>,
    items: Vec<Item<'de, A>, A>,
    #[perfloc(default)]
    priority: u8,
    note: Option<&'de str>,
    #[perfloc(skip)]
    total_cents: u64,
    tags: HashSet<&'de str, DefaultHashBuilder, A>,
    prices: HashMap<Text<'de, A>, u32, DefaultHashBuilder, A>,
    shipping: Shipping<'de, A>,
    origin: (f32, f32),
    flags: [bool; 3],
    gift: Option<Box<Gift<'de>, A>>,
}

#[derive(perfloc::DeserializeIn, Debug)]
struct Item<'de, A: Allocator> {
    sku: &'de str,
    qty: u32,
    options: Vec<perfloc::String<A>, A>,
}

#[derive(perfloc::DeserializeIn, Debug, PartialEq)]
struct Gift<'de> {
    message: &'de str,
}

#[derive(perfloc::DeserializeIn, Debug)]
enum Shipping<'de, A: Allocator> {
    Pickup,
    #[perfloc(rename = "post")]
    Post(Text<'de, A>),
    Courier(u32),
}

/// The same order as std types, to write it with serde's own derive (for postcard).
#[derive(serde::Serialize)]
struct WireOrder<'a> {
    id: u64,
    name: &'a str,
    items: std::vec::Vec<WireItem<'a>>,
    priority: u8,
    note: Option<&'a str>,
    tags: std::vec::Vec<&'a str>,
    prices: std::collections::BTreeMap<&'a str, u32>,
    shipping: WireShipping<'a>,
    origin: (f32, f32),
    flags: [bool; 3],
    gift: Option<WireGift<'a>>,
}

#[derive(serde::Serialize)]
struct WireItem<'a> {
    sku: &'a str,
    qty: u32,
    options: std::vec::Vec<&'a str>,
}

#[derive(serde::Serialize)]
struct WireGift<'a> {
    message: &'a str,
}

#[derive(serde::Serialize)]
#[allow(dead_code)] // the wire form of every variant `Shipping` reads
enum WireShipping<'a> {
    Pickup,
    #[serde(rename = "post")]
    Post(&'a str),
    Courier(u32),
}

const JSON: &str = r#"{
    "id": 42,
    "customer": "Ada \"the first\" Lovelace",
    "unknown": {"ignored": [1, 2, {"deep": true}]},
    "items": [
        {"sku": "x1", "qty": 2, "options": ["red", "large\u0021"]},
        {"sku": "y2", "qty": 1, "options": []}
    ],
    "note": null,
    "total_cents": 999,
    "tags": ["new", "vip"],
    "prices": {"x1": 250, "y\u0032": 100},
    "shipping": {"post": "12 Main St"},
    "origin": [1.5, -2.25],
    "flags": [true, false, true],
    "gift": {"message": "happy birthday"}
}"#;

fn check_order<A: Allocator>(order: &Order<'_, A>) {
    assert_eq!(order.id, 42);
    assert_eq!(order.name, "Ada \"the first\" Lovelace");
    assert_eq!(order.items.len(), 2);
    assert_eq!((order.items[0].sku, order.items[0].qty), ("x1", 2));
    assert_eq!(order.items[0].options[1], "large!");
    assert!(order.items[1].options.is_empty());
    assert_eq!(order.priority, 0, "default");
    assert_eq!(order.total_cents, 0, "skipped: left at its default");
    assert!(order.tags.contains("vip") && order.tags.len() == 2);
    assert_eq!(order.prices.get("y2"), Some(&100));
    assert!(matches!(&order.shipping, Shipping::Post(street) if street == "12 Main St"));
    assert_eq!(order.origin, (1.5, -2.25));
    assert_eq!(order.flags, [true, false, true]);
    assert_eq!(order.gift.as_deref(), Some(&Gift { message: "happy birthday" }));
}

fn from_json<'de>(
    chunk: &'de Chunk<'_>,
    json: &'de str,
) -> serde_json::Result<Order<'de, &'de Chunk<'de>>> {
    let mut de = serde_json::Deserializer::from_str(json);
    let order = Order::deserialize_in(chunk, &mut de)?;
    de.end()?;
    Ok(order)
}

#[test]
fn json_into_a_chunk() {
    let pool = Pool::new();
    let chunk = pool.chunk();
    let order = from_json(&chunk, JSON).unwrap();
    check_order(&order);
    assert!(order.note.is_none());
    // Escapes decoded into the chunk, plain text borrowed from the input.
    assert!(matches!(order.name, Text::Owned(_)));
    assert!(matches!(&order.shipping, Shipping::Post(Text::Borrowed(_))));
    let used = chunk.stats().used_bytes;
    assert!(used > 0 && used < 8 << 10, "{used}");
}

#[test]
fn a_binary_format_into_a_chunk() {
    let wire = WireOrder {
        id: 42,
        name: "Ada \"the first\" Lovelace",
        items: vec![
            WireItem { sku: "x1", qty: 2, options: vec!["red", "large!"] },
            WireItem { sku: "y2", qty: 1, options: vec![] },
        ],
        priority: 0,
        note: Some("ring twice"),
        tags: vec!["new", "vip"],
        prices: [("x1", 250), ("y2", 100)].into_iter().collect(),
        shipping: WireShipping::Post("12 Main St"),
        origin: (1.5, -2.25),
        flags: [true, false, true],
        gift: Some(WireGift { message: "happy birthday" }),
    };
    let bytes = postcard::to_allocvec(&wire).unwrap();
    let chunk = perfloc::sync_chunk();
    let mut de = postcard::Deserializer::from_bytes(&bytes);
    let order = Order::deserialize_in(&chunk, &mut de).unwrap();
    check_order(&order);
    assert_eq!(order.note, Some("ring twice"));
    // postcard hands out slices of its input: nothing copied.
    assert!(matches!(order.name, Text::Borrowed(_)));
    let courier = postcard::to_allocvec(&WireShipping::Courier(7)).unwrap();
    let shipping =
        Shipping::deserialize_in(&chunk, &mut postcard::Deserializer::from_bytes(&courier));
    assert!(matches!(shipping, Ok(Shipping::Courier(7))));
}

#[test]
fn enums_are_externally_tagged() {
    let chunk = perfloc::chunk();
    let parse = |json: &'static str| {
        Shipping::deserialize_in(&chunk, &mut serde_json::Deserializer::from_str(json))
    };
    assert!(matches!(parse(r#""Pickup""#), Ok(Shipping::Pickup)));
    assert!(matches!(parse(r#"{"Courier": 3}"#), Ok(Shipping::Courier(3))));
    let err = parse(r#""Drone""#).unwrap_err().to_string();
    assert!(err.contains("unknown variant `Drone`"), "{err}");
    let err = parse(r#"{"Courier": "fast"}"#).unwrap_err().to_string();
    assert!(err.contains("field `Courier`"), "{err}");
}

#[test]
fn errors_name_the_field() {
    let chunk = perfloc::chunk();
    let err = |json: &str| from_json(&chunk, json).map(drop).unwrap_err().to_string();
    let missing = err(&JSON.replace(r#""id": 42,"#, ""));
    assert!(missing.contains("missing field `id`"), "{missing}");
    let nested = err(&JSON.replace(r#""qty": 2"#, r#""qty": "two""#));
    assert!(nested.contains("field `items`") && nested.contains("field `qty`"), "{nested}");
    assert!(nested.contains("line"), "the format's position is kept: {nested}");
    let duplicate = err(&JSON.replace(r#""id": 42,"#, r#""id": 42, "id": 43,"#));
    assert!(duplicate.contains("duplicate field `id`"), "{duplicate}");
    let short = err(&JSON.replace("[true, false, true]", "[true]"));
    assert!(short.contains("field `flags`"), "{short}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "20,000 strings parsed: minutes under Miri; tests/never_abort.rs runs it natively"
)]
fn the_cap_is_an_error_and_the_chunk_says_so() {
    let pool = Pool::builder().chunk_limit(256 << 10).build().unwrap();
    let chunk = pool.chunk();
    let options: std::vec::Vec<String> = (0..20_000).map(|i| format!("\"option\\t{i}\"")).collect();
    let hostile = JSON.replace(r#"["red", "large\u0021"]"#, &format!("[{}]", options.join(",")));
    assert!(hostile.len() > 256 << 10);
    let err = from_json(&chunk, &hostile).map(drop).unwrap_err().to_string();
    assert!(err.contains("out of memory"), "{err}");
    assert!(chunk.refused(), "413, not 400");
    // Malformed input is another error, and the chunk did not refuse anything.
    let fresh = pool.chunk();
    assert!(from_json(&fresh, "{\"id\": }").is_err());
    assert!(!fresh.refused());
}

#[test]
fn every_documented_type_deserializes_in_a_chunk() {
    type In<'c> = &'c Chunk<'c>;
    type Map<'c> =
        HashMap<perfloc::String<In<'c>>, Vec<Option<u16>, In<'c>>, DefaultHashBuilder, In<'c>>;
    let chunk = perfloc::chunk();
    let json = r#"[[1, -2, 3.5, true, "c", "borrowed"], [1, 2], {"k": [null, 7]}, [[1, 9]], "b"]"#;
    let mut de = serde_json::Deserializer::from_str(json);
    #[allow(clippy::type_complexity)]
    let (flat, array, map, boxes, bytes): (
        (u8, i64, f64, bool, char, &str),
        [u8; 2],
        Map<'_>,
        Vec<(u32, Box<u8, In<'_>>), In<'_>>,
        perfloc::String<In<'_>>,
    ) = DeserializeIn::deserialize_in(&chunk, &mut de).unwrap();
    assert_eq!(flat, (1, -2, 3.5, true, 'c', "borrowed"));
    assert_eq!(array, [1, 2]);
    assert_eq!(map.get("k").map(|v| v.as_slice()), Some(&[None, Some(7)][..]));
    assert_eq!((boxes[0].0, *boxes[0].1), (1, 9));
    assert_eq!(bytes, "b");
}

/// No lifetime and no type parameter: the derive makes both up, so it builds anywhere.
#[derive(perfloc::DeserializeIn, Debug, PartialEq)]
struct Plain {
    n: u32,
}

/// Two type parameters: `alloc` names the allocator; the other is generic data.
#[derive(perfloc::DeserializeIn)]
#[perfloc(alloc = "A")]
struct Tagged<T, A: Allocator> {
    value: T,
    history: Vec<T, A>,
}

#[test]
fn the_derive_finds_or_makes_its_parameters() {
    let chunk = perfloc::chunk();
    let plain =
        Plain::deserialize_in(&chunk, &mut serde_json::Deserializer::from_str(r#"{"n":3}"#));
    assert_eq!(plain.unwrap(), Plain { n: 3 });
    let json = r#"{"value": 5, "history": [1, 2]}"#;
    let tagged: Tagged<u16, &Chunk> =
        DeserializeIn::deserialize_in(&chunk, &mut serde_json::Deserializer::from_str(json))
            .unwrap();
    assert_eq!((tagged.value, &tagged.history[..]), (5, &[1, 2][..]));
}

#[derive(perfloc::DeserializeIn, Debug)]
struct Row<'de, A: Allocator> {
    name: &'de str,
    values: Vec<u32, A>,
}

#[test]
fn a_vec_of_unknown_length_is_allocated_once_at_its_length() {
    // JSON announces no length: without the staging stack, `rows` doubles while each
    // row's `values` is allocated after it, and every doubling strands its old copy.
    let rows: std::vec::Vec<String> =
        (0..20).map(|i| format!(r#"{{"name":"row-{i}","values":[{i},2,3]}}"#)).collect();
    let json = format!("[{}]", rows.join(","));
    let pool = Pool::new();
    let chunk = pool.chunk();
    let mut de = serde_json::Deserializer::from_str(&json);
    let rows = Vec::<Row<'_, &Chunk<'_>>, _>::deserialize_in(&chunk, &mut de).unwrap();
    assert_eq!((rows.len(), rows.capacity()), (20, 20));
    assert!(rows.iter().all(|row| row.values.capacity() == 3), "inner vectors too");
    assert_eq!((rows[7].name, &rows[7].values[..]), ("row-7", &[7, 2, 3][..]));
    let stats = chunk.stats();
    assert_eq!(stats.freed_bytes, 0, "no copy left behind: {stats}");
    let exact = 20 * size_of::<Row<'_, &Chunk<'_>>>() + 20 * 16; // 12 bytes, to a word
    assert_eq!(stats.used_bytes, exact, "{stats}");
}

#[test]
#[cfg_attr(miri, ignore = "300,000 numbers parsed: minutes under Miri")]
fn a_sequence_past_the_staging_stack_spills_into_the_chunk() {
    // 1.2 MB of elements: more than the thread's 1 MiB stack, so they move into the chunk
    // and grow there.
    let numbers: std::vec::Vec<String> = (0..300_000u32).map(|i| i.to_string()).collect();
    let json = format!("[{}]", numbers.join(","));
    let pool = Pool::new();
    let chunk = pool.chunk();
    let mut de = serde_json::Deserializer::from_str(&json);
    let values = Vec::<u32, _>::deserialize_in(&chunk, &mut de).unwrap();
    assert!(values.iter().enumerate().all(|(i, &v)| v == i as u32));
    // At a cap, the spilled growth is refused with an error, and the chunk says so.
    let capped = Pool::builder().chunk_limit(512 << 10).build().unwrap();
    let small = capped.chunk();
    let mut de = serde_json::Deserializer::from_str(&json);
    let err = Vec::<u32, _>::deserialize_in(&small, &mut de).unwrap_err().to_string();
    assert!(err.contains("out of memory") && small.refused(), "{err}");
    // The stack is whole again: the next sequence is exact.
    let mut de = serde_json::Deserializer::from_str("[1,2,3]");
    assert_eq!(Vec::<u32, _>::deserialize_in(&chunk, &mut de).unwrap().capacity(), 3);
}

/// An element that counts its drops.
#[derive(Debug)]
struct Counted(u32);

static DROPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<'de, A> DeserializeIn<'de, A> for Counted {
    fn deserialize_in<D: serde::Deserializer<'de>>(alloc: A, d: D) -> Result<Self, D::Error> {
        u32::deserialize_in(alloc, d).map(Counted)
    }
}

#[test]
fn an_error_mid_sequence_drops_what_was_staged() {
    let chunk = perfloc::chunk();
    // Nested: the inner sequences are staged above the outer one, and the error comes in
    // the third inner sequence, with two inner and two outer elements staged.
    let json = r#"[[1,2],[3,4],[5,6,"seven"]]"#;
    let mut de = serde_json::Deserializer::from_str(json);
    let result = Vec::<Vec<Counted, _>, _>::deserialize_in(&chunk, &mut de);
    assert!(result.unwrap_err().to_string().contains("invalid type"));
    assert_eq!(DROPPED.load(std::sync::atomic::Ordering::Relaxed), 6, "1 to 6, once each");
    // The stack is whole again.
    let mut de = serde_json::Deserializer::from_str("[[1],[2,3]]");
    let ok = Vec::<Vec<Counted, _>, _>::deserialize_in(&chunk, &mut de).unwrap();
    assert_eq!(
        ok.iter().map(|v| (v.len(), v.capacity())).collect::<std::vec::Vec<_>>(),
        [(1, 1), (2, 2)]
    );
    assert_eq!(ok[1][1].0, 3);
}
