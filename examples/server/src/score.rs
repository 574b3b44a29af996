//! The work `POST /score` does on a parsed [`Request`], and its JSON response, all in the
//! request's allocator `A`.
//!
//! Per item: its value (`price × qty`), the mean of its scores, and a score that weighs the
//! two (with a boost for the `sale` tag). Then totals per category (a hash map keyed by the
//! body's strings), tag counts (another), the ten best items (a vector sorted in place) and
//! the response text. Categories and tags are written in name order, so the response does
//! not depend on hash order and both handler forms answer byte for byte the same.

use core::fmt::{self, Write};

use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::vec::Vec;
use perfloc::hashbrown::{DefaultHashBuilder, HashMap};

use crate::request::Request;

/// The request's allocator refused memory while scoring: 413.
#[derive(Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// How many of the best items the response lists.
const TOP: usize = 10;

/// Totals of one category.
#[derive(Default)]
struct Category {
    items: u32,
    value: f64,
    score: f64,
}

/// Scores `request` and writes the response into a string in `alloc`.
///
/// # Errors
///
/// [`OutOfMemory`] when `alloc` refuses memory.
pub fn score<'r, A: Allocator + Copy>(
    request: &'r Request<'_, A>,
    alloc: A,
) -> Result<perfloc::String<A>, OutOfMemory> {
    let items = &request.items;
    let mut categories: HashMap<&'r str, Category, DefaultHashBuilder, A> = HashMap::new_in(alloc);
    let mut tags: HashMap<&'r str, u32, DefaultHashBuilder, A> = HashMap::new_in(alloc);
    let mut ranked: Vec<(f64, usize), A> = Vec::new_in(alloc);
    ranked.try_reserve_exact(items.len()).map_err(|_| OutOfMemory)?;
    let mut total = 0.0;
    for (index, item) in items.iter().enumerate() {
        let value = item.price * f64::from(item.qty);
        let mean = if item.scores.is_empty() {
            0.0
        } else {
            item.scores.iter().sum::<f64>() / item.scores.len() as f64
        };
        let sale = item.tags.iter().any(|tag| tag.as_str() == "sale");
        let score = mean * value.ln_1p() * if sale { 1.1 } else { 1.0 };
        total += value;
        ranked.push((score, index));
        categories.try_reserve(1).map_err(|_| OutOfMemory)?;
        let category = categories.entry(item.category.as_str()).or_default();
        category.items += 1;
        category.value += value;
        category.score += score;
        for tag in &item.tags {
            tags.try_reserve(1).map_err(|_| OutOfMemory)?;
            *tags.entry(tag.as_str()).or_default() += 1;
        }
    }
    ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let by_name = |map_len: usize| {
        let mut names: Vec<&str, A> = Vec::new_in(alloc);
        names.try_reserve_exact(map_len).map(|()| names).map_err(|_| OutOfMemory)
    };
    let mut category_names = by_name(categories.len())?;
    category_names.extend(categories.keys().copied());
    category_names.sort_unstable();
    let mut tag_names = by_name(tags.len())?;
    tag_names.extend(tags.keys().copied());
    tag_names.sort_unstable();

    let mut out = Out(perfloc::String::new_in(alloc));
    let written = (|| -> fmt::Result {
        out.write_str("{\"user\":")?;
        out.json_str(request.user.as_str())?;
        out.write_str(",\"region\":")?;
        out.json_str(request.region.as_str())?;
        write!(out, ",\"items\":{},\"total_value\":{total:.2},\"categories\":[", items.len())?;
        for (i, name) in category_names.iter().enumerate() {
            let category = &categories[name];
            out.write_str(if i == 0 { "{\"name\":" } else { ",{\"name\":" })?;
            out.json_str(name)?;
            write!(
                out,
                ",\"items\":{},\"value\":{:.2},\"mean_score\":{:.4}}}",
                category.items,
                category.value,
                category.score / f64::from(category.items)
            )?;
        }
        out.write_str("],\"top\":[")?;
        for (i, &(score, index)) in ranked.iter().take(TOP).enumerate() {
            out.write_str(if i == 0 { "{\"id\":" } else { ",{\"id\":" })?;
            out.json_str(items[index].id.as_str())?;
            write!(out, ",\"score\":{score:.4}}}")?;
        }
        out.write_str("],\"tags\":{")?;
        for (i, name) in tag_names.iter().enumerate() {
            if i > 0 {
                out.write_str(",")?;
            }
            out.json_str(name)?;
            write!(out, ":{}", tags[name])?;
        }
        out.write_str("}}")
    })();
    written.map(|()| out.0).map_err(|fmt::Error| OutOfMemory)
}

/// A string that reports a refused allocation as `fmt::Error` instead of aborting.
struct Out<A: Allocator>(perfloc::String<A>);

impl<A: Allocator> Write for Out<A> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| fmt::Error)?;
        self.0.push_str(s);
        Ok(())
    }
}

impl<A: Allocator> Out<A> {
    /// Writes `s` as a JSON string literal.
    fn json_str(&mut self, s: &str) -> fmt::Result {
        self.write_str("\"")?;
        let mut rest = s;
        while let Some(at) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
            self.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '"' => self.write_str("\\\"")?,
                '\\' => self.write_str("\\\\")?,
                '\n' => self.write_str("\\n")?,
                _ => write!(self, "\\u{:04x}", u32::from(c))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.write_str(rest)?;
        self.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use perfloc::allocator_api2::alloc::Global;

    use super::*;
    use crate::request::parse;

    const BODY: &[u8] = br#"{"user":"u\"1","region":"eu","items":[
        {"id":"a","category":"toys","tags":["sale","new"],"price":10,"qty":2,"scores":[0.5,1.0]},
        {"id":"b","category":"books","tags":["new"],"price":5,"qty":1,"scores":[1.0]},
        {"id":"c","category":"toys","price":1,"qty":1}]}"#;

    #[test]
    fn totals_ranking_and_escapes() {
        let request = parse(BODY, Global).unwrap();
        let response = score(&request, Global).unwrap();
        let json: serde_json::Value = serde_json::from_str(&response).unwrap();
        assert_eq!(json["user"], "u\"1");
        assert_eq!(json["items"], 3);
        assert_eq!(json["total_value"], 26.0);
        assert_eq!(json["categories"][0]["name"], "books");
        assert_eq!(json["categories"][1]["items"], 2);
        assert_eq!(json["top"][0]["id"], "a");
        assert_eq!(json["top"][2]["id"], "c");
        assert_eq!(json["tags"]["new"], 2);
        assert_eq!(json["tags"]["sale"], 1);
    }

    #[test]
    fn a_chunk_and_the_global_allocator_answer_the_same() {
        let chunk = perfloc::sync_chunk();
        let in_chunk = score(&parse(BODY, &chunk).unwrap(), &chunk).unwrap();
        let global = score(&parse(BODY, Global).unwrap(), Global).unwrap();
        assert_eq!(in_chunk.as_str(), global.as_str());
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = Out(perfloc::String::new_in(Global));
        out.json_str("a\nb\u{1}\\").unwrap();
        assert_eq!(out.0.as_str(), r#""a\nb\u0001\\""#);
    }
}
