//! The optional `Allocator` impls and the `serde` support, each behind its feature:
//!
//! - `cargo test --features allocator-api2-03,allocator-api2-04,serde --test features`
//!
//! Without features only the allocator-api2 0.2 case runs. The `nightly` feature is tested
//! by `tests/graph/` (`cargo +nightly test --manifest-path tests/graph/Cargo.toml
//! --features perfloc-nightly`), a crate of its own: with `nightly` on, allocator-api2's
//! trait is std's, and this package's dev-dependency bumpalo 3.20 does not compile then.

use std::time::Duration;

/// Exercises one allocator-api2 version's `Vec` and `Box` over `&Chunk` and `&SyncChunk`:
/// growth in place, a moving grow, shrink, and a failure past the pool's `limit` arriving
/// as that version's error.
macro_rules! exercise {
    ($krate:path) => {{
        use $krate::{boxed::Box, vec::Vec};

        let pool = perfloc::Pool::builder()
            .first_top_chunk_size(1 << 20)
            .limit(4 << 20)
            .decay(Duration::MAX)
            .build()
            .unwrap();
        let chunk = pool.chunk();
        let mut v = Vec::with_capacity_in(16, &chunk);
        v.push(0u64);
        let first = v.as_ptr();
        v.extend(1..16);
        v.reserve_exact(16); // the newest allocation: grows in place
        assert_eq!(v.as_ptr(), first, "grow of the newest allocation moved it");
        v.extend(16..32);
        let other = Box::new_in([7u8; 64], &chunk); // now `v` is not the newest
        v.extend(32..1000);
        assert_ne!(v.as_ptr(), first, "an older allocation cannot grow in place");
        assert!(v.iter().copied().eq(0..1000));
        v.truncate(10);
        v.shrink_to_fit();
        assert_eq!(v, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(*other, [7; 64]);
        let mut huge: Vec<u8, _> = Vec::new_in(&chunk);
        assert!(huge.try_reserve(64 << 20).is_err(), "past the limit: an error, not a panic");
        drop((v, other, huge));

        let shared = pool.sync_chunk();
        let mut w = Vec::new_in(&shared);
        std::thread::scope(|s| {
            s.spawn(|| shared.alloc(1u32));
            w.extend(0..100u32);
        });
        assert_eq!(w.iter().sum::<u32>(), 4950);
        let b = Box::new_in(5u16, &shared);
        assert_eq!(*b, 5);
    }};
}

#[test]
fn allocator_api2_02() {
    exercise!(perfloc::allocator_api2);
}

#[cfg(feature = "allocator-api2-03")]
#[test]
fn allocator_api2_03() {
    exercise!(perfloc::allocator_api2_03);
    // The re-export is the crate itself, not a copy of it.
    let chunk = perfloc::chunk();
    let v: allocator_api2_03::vec::Vec<u8, &perfloc::Chunk> =
        perfloc::allocator_api2_03::vec::Vec::new_in(&chunk);
    assert!(v.is_empty());
}

#[cfg(feature = "allocator-api2-04")]
#[test]
fn allocator_api2_04() {
    exercise!(perfloc::allocator_api2_04);
    let chunk = perfloc::chunk();
    let v: allocator_api2_04::vec::Vec<u8, &perfloc::Chunk> =
        perfloc::allocator_api2_04::vec::Vec::new_in(&chunk);
    assert!(v.is_empty());
}

/// All three traits at once on one chunk: each version's `Vec` uses its own impl.
#[cfg(all(feature = "allocator-api2-03", feature = "allocator-api2-04"))]
#[test]
fn three_versions_in_one_chunk() {
    let chunk = perfloc::chunk();
    let mut a = allocator_api2::vec::Vec::new_in(&chunk);
    let mut b = allocator_api2_03::vec::Vec::new_in(&chunk);
    let mut c = allocator_api2_04::vec::Vec::new_in(&chunk);
    for i in 0..1000u32 {
        a.push(i);
        b.push(i * 2);
        c.push(i * 3);
    }
    assert_eq!((a[999], b[999], c[999]), (999, 1998, 2997));
}

/// Feature `serde`: a `perfloc::String`, and `Vec`, `Box`, `HashMap` and `HashSet` in a
/// chunk serialize with perfloc as the only dependency (its feature turns on
/// allocator-api2's and hashbrown's), into a chunk buffer through `VecWriter`.
#[cfg(feature = "serde")]
#[test]
fn serde_serializes_collections_in_a_chunk() {
    use perfloc::{String, VecWriter};

    let chunk = perfloc::sync_chunk();
    let name = String::from_str_in("Ada \"the first\"", &chunk);
    let ids = perfloc::vec_in![in &chunk; 1u32, 2, 3];
    let boxed = perfloc::Box::new_in(9u8, &chunk);
    let mut totals = perfloc::HashMap::new_in(&chunk);
    totals.insert(String::from_str_in("k", &chunk), 1.5f64);
    let mut tags = perfloc::HashSet::new_in(&chunk);
    tags.insert("new");
    let mut out = perfloc::allocator_api2::vec::Vec::new_in(&chunk);
    serde_json::to_writer(VecWriter::new(&mut out), &(&name, &ids, &boxed, &totals, &tags))
        .unwrap();
    assert_eq!(out, br#"["Ada \"the first\"",[1,2,3],9,{"k":1.5},["new"]]"#);
    assert_eq!(serde_json::to_string(&name).unwrap(), serde_json::to_string(&*name).unwrap());
}
