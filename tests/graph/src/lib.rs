//! perfloc in a graph where `allocator_api2::alloc::Allocator` is std's
//! `core::alloc::Allocator` (see Cargo.toml). Tests only.

#![cfg_attr(test, feature(allocator_api))]

#[cfg(test)]
mod tests {
    use std::time::Duration;

    fn is_std_allocator<A: core::alloc::Allocator>(_: A) {}

    #[test]
    fn allocator_api2_trait_is_std_and_chunks_implement_it() {
        let chunk = perfloc::chunk();
        is_std_allocator(&chunk);
        is_std_allocator(&perfloc::sync_chunk());
        let v: allocator_api2::vec::Vec<u8, &perfloc::Chunk> =
            allocator_api2::vec::Vec::new_in(&chunk);
        assert!(v.is_empty());
    }

    #[test]
    fn std_vec_and_box_grow_shrink_and_fail_past_the_limit() {
        let pool = perfloc::Pool::builder()
            .limit(4 << 20)
            .decay(Duration::MAX)
            .build()
            .unwrap();
        let chunk = pool.chunk();
        let mut v = Vec::with_capacity_in(16, &chunk);
        v.push(0u64);
        let first = v.as_ptr();
        v.extend(1..16);
        v.reserve_exact(16);
        assert_eq!(v.as_ptr(), first, "grow of the newest allocation moved it");
        let b = Box::new_in([7u8; 64], &chunk);
        v.extend(16..1000);
        assert!(v.iter().copied().eq(0..1000));
        v.truncate(3);
        v.shrink_to_fit();
        assert_eq!((v.as_slice(), b[63]), (&[0, 1, 2][..], 7));
        let mut huge: Vec<u8, _> = Vec::new_in(&chunk);
        assert!(huge.try_reserve(64 << 20).is_err());
    }

    #[test]
    fn hashbrown_maps_and_perfloc_aliases() {
        let chunk = perfloc::chunk();
        let mut m = hashbrown::HashMap::new_in(&chunk);
        for i in 0..1000u32 {
            m.insert(i, i * 2);
        }
        assert_eq!(m[&999], 1998);
        let mut aliased: perfloc::HashMap<&str, u8> = perfloc::HashMap::new_in(&chunk);
        aliased.insert("a", 1);
        let boxed: perfloc::Box<u8> = perfloc::Box::new_in(3, &chunk);
        assert_eq!((aliased["a"], *boxed), (1, 3));
    }

    #[test]
    fn a_sync_chunk_shared_between_threads() {
        let chunk = perfloc::sync_chunk();
        let mut v: Vec<u32, &perfloc::SyncChunk> = Vec::new_in(&chunk);
        std::thread::scope(|s| {
            let other = s.spawn(|| *chunk.alloc(5u32));
            v.extend(0..100);
            assert_eq!(other.join().unwrap(), 5);
        });
        assert_eq!(v.iter().sum::<u32>(), 4950);
    }
}
