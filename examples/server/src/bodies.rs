//! The request bodies of the load driver and the instruction counter: deterministic
//! `POST /score` JSON, calm (about 24 items, 4 KB) and spike (about 1,500 items, 256 KB),
//! written to files that the wrk script reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// How many bodies of each kind wrk rotates through.
pub const BODIES_PER_KIND: usize = 16;

/// The two kinds of body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// About 24 items, about 4 KB.
    Calm,
    /// About 1,500 items, about 256 KB.
    Spike,
}

impl Kind {
    /// The file names' prefix.
    fn name(self) -> &'static str {
        match self {
            Kind::Calm => "calm",
            Kind::Spike => "spike",
        }
    }

    /// The items in one body: a base count and a spread of ± a few.
    fn items(self, rng: &mut XorShift) -> usize {
        match self {
            Kind::Calm => 22 + rng.below(5),
            Kind::Spike => 1480 + rng.below(41),
        }
    }
}

/// A xorshift64* generator: enough variety for test data, the same every run.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a seed (any seed; zero is replaced, xorshift needs a set bit).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `choices`.
    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }
}

/// Item tags, as JSON string contents. Two carry escapes, so that the server's
/// copy-on-escape path runs (a `\u` escape and an escaped quote).
#[rustfmt::skip]
const TAGS: [&str; 30] = [
    "new", "sale", "popular", "limited", "eco", "gift", "bundle", "clearance", "premium",
    "budget", "local", "imported", "handmade", "organic", "vintage", "refurbished", "bestseller",
    "seasonal", "exclusive", "kids", "outdoor", "indoor", "wireless", "compact", "large",
    "classic", "modern", "travel", r"caf\u00e9", r#"a\"b"#,
];

/// Item categories, as JSON string contents; one carries a `\u` escape.
#[rustfmt::skip]
const CATEGORIES: [&str; 12] = [
    "books", "music", "games", "toys", "garden", "kitchen", "sports", "beauty", "tools",
    "electronics", "clothing", r"home \u0026 living",
];

/// The users' regions.
const REGIONS: [&str; 6] = ["eu-west", "eu-central", "us-east", "us-west", "ap-south", "sa-east"];

/// Scores per item.
const SCORES: usize = 8;

/// One body: `{"user":..,"region":..,"items":[{"id","category","tags","price","qty","scores"}]}`.
pub fn body(kind: Kind, index: usize) -> String {
    let seed = match kind {
        Kind::Calm => 0xC0FF_EE00,
        Kind::Spike => 0x5B1C_E000,
    } + index as u64;
    let mut rng = XorShift::new(seed);
    let items = kind.items(&mut rng);
    let mut out = String::with_capacity(items * 220 + 64);
    let user = rng.below(1000);
    let region = rng.pick(&REGIONS);
    let _ = write!(out, r#"{{"user":"user-{user}","region":"{region}","items":["#);
    for i in 0..items {
        if i > 0 {
            out.push(',');
        }
        let id = rng.below(1_000_000);
        let category = rng.pick(&CATEGORIES);
        let _ = write!(out, r#"{{"id":"sku-{id:06}","category":"{category}","tags":["#);
        for t in 0..2 + rng.below(4) {
            let sep = if t > 0 { "," } else { "" };
            let _ = write!(out, r#"{sep}"{}""#, rng.pick(&TAGS));
        }
        let price = (100 + rng.below(20_000)) as f64 / 100.0;
        let qty = 1 + rng.below(9);
        let _ = write!(out, r#"],"price":{price:.2},"qty":{qty},"scores":["#);
        for s in 0..SCORES {
            let sep = if s > 0 { "," } else { "" };
            let _ = write!(out, "{sep}{:.4}", rng.below(10_000) as f64 / 10_000.0);
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// Writes [`BODIES_PER_KIND`] bodies of `kind` into `dir`; returns their paths and mean size
/// in bytes.
pub fn write(kind: Kind, dir: &Path) -> std::io::Result<(Vec<PathBuf>, usize)> {
    let mut paths = Vec::with_capacity(BODIES_PER_KIND);
    let mut total = 0;
    for index in 0..BODIES_PER_KIND {
        let body = body(kind, index);
        total += body.len();
        let path = dir.join(format!("{}-{index:02}.json", kind.name()));
        std::fs::write(&path, body)?;
        paths.push(path);
    }
    Ok((paths, total / BODIES_PER_KIND))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_body_is_valid_json_of_the_right_shape_and_size() {
        for (kind, sizes) in [(Kind::Calm, 3_500..4_700), (Kind::Spike, 230_000..280_000)] {
            for index in 0..BODIES_PER_KIND {
                let text = body(kind, index);
                assert!(sizes.contains(&text.len()), "{kind:?} {index}: {} bytes", text.len());
                let v: Value = serde_json::from_str(&text).expect("valid JSON");
                assert!(v["user"].as_str().unwrap().starts_with("user-"));
                assert!(REGIONS.contains(&v["region"].as_str().unwrap()));
                for item in v["items"].as_array().unwrap() {
                    assert!(item["id"].as_str().unwrap().starts_with("sku-"));
                    assert!(item["category"].is_string());
                    assert!((2..=5).contains(&item["tags"].as_array().unwrap().len()));
                    assert!(item["price"].is_f64() || item["price"].is_u64());
                    assert!(item["qty"].is_u64());
                    assert_eq!(item["scores"].as_array().unwrap().len(), SCORES);
                }
            }
        }
    }

    #[test]
    fn bodies_are_deterministic_and_distinct() {
        assert_eq!(body(Kind::Calm, 3), body(Kind::Calm, 3));
        assert_ne!(body(Kind::Calm, 3), body(Kind::Calm, 4));
        assert_ne!(body(Kind::Spike, 0), body(Kind::Spike, 1));
    }

    #[test]
    fn escapes_reach_the_server_and_decode() {
        let all: String = (0..BODIES_PER_KIND).map(|i| body(Kind::Calm, i)).collect();
        for escaped in [r"caf\u00e9", r#"a\"b"#, r"\u0026"] {
            assert!(all.contains(escaped), "no body carries {escaped}");
        }
        let v: Value = serde_json::from_str(&body(Kind::Spike, 0)).unwrap();
        let tags: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| i["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()))
            .collect();
        assert!(tags.contains(&"café") && tags.contains(&"a\"b"));
    }

    #[test]
    fn write_puts_the_files_in_the_directory() {
        let dir = std::env::temp_dir().join(format!("perfloc-bodies-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (paths, mean) = write(Kind::Calm, &dir).unwrap();
        assert_eq!(paths.len(), BODIES_PER_KIND);
        assert_eq!(std::fs::read_to_string(&paths[5]).unwrap(), body(Kind::Calm, 5));
        assert!((3_500..4_700).contains(&mean));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
