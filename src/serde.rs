//! serde support (feature `serde`): [`String`] is `Serialize`, and the feature turns on
//! allocator-api2's and hashbrown's `serde` features, so that `Vec`, `Box`, `HashMap` and
//! `HashSet` in a chunk serialize with perfloc as the only dependency.
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
//! Serialize into a byte vector in the chunk through [`VecWriter`](crate::VecWriter): at a
//! chunk's limit the serializer gets an `io` error instead of the process aborting.

use allocator_api2::alloc::Allocator;
use serde::{Serialize, Serializer};

use crate::String;

/// As a string, like `std::string::String`.
impl<A: Allocator> Serialize for String<A> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}
