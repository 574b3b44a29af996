//! At a chunk's limit, every documented fallible path returns an error value: never an
//! abort (allocator-api2's `handle_alloc_error`, exit 134, every connection gone), never a
//! panic. Each path runs against a 1 MiB hostile body in a chunk capped at 256 KiB, in a
//! child process of its own: an abort would end the test binary, so the parent checks
//! that each child exits normally having seen the error, and that the chunk says it
//! refused (`refused`), which tells "cap reached" from "malformed" without error text.

#![cfg(not(miri))] // Miri cannot spawn processes

use std::process::Command;

/// The child tests, one per documented path.
const PATHS: &[&str] = &[
    "child::deserialize",
    "child::serialize_into_a_chunk_buffer",
    "child::format",
    "child::collect",
    "child::io_writer",
    "child::string",
    "child::direct",
];

#[test]
fn every_fallible_path_returns_an_error_at_the_cap() {
    for name in PATHS {
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", name, "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {:?}\n{stdout}\n{stderr}", output.status);
        assert!(stdout.contains("1 passed"), "{name} did not run:\n{stdout}");
    }
}

/// The children: each runs only when the parent test starts it.
mod child {
    use core::fmt::Write as _;
    use std::io::Write as _;

    use perfloc::{AllocOrInitError, CollectIn, Pool, VecWriter};

    /// The hostile body's size and the chunk's cap.
    const BODY: usize = 1 << 20;
    const CAP: usize = 256 << 10;

    fn capped() -> Pool {
        Pool::builder().chunk_limit(CAP).build().unwrap()
    }

    fn body() -> String {
        "a".repeat(BODY)
    }

    #[derive(serde::Serialize)]
    struct Order<'a> {
        id: u64,
        name: &'a str,
    }

    #[derive(perfloc::DeserializeIn)]
    #[allow(dead_code)] // only parsed, to fail
    struct Request<'de, A: perfloc::allocator_api2::alloc::Allocator> {
        id: u64,
        names: perfloc::allocator_api2::vec::Vec<perfloc::serde::Text<'de, A>, A>,
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn deserialize() {
        use perfloc::serde::DeserializeIn;
        let pool = capped();
        // A 1 MiB body of short escaped names: each one copied into the chunk.
        let name = r#""a\tb""#;
        let names = vec![name; BODY / (name.len() + 1)].join(",");
        let json = format!(r#"{{"id": 1, "names": [{names}]}}"#);
        assert!(json.len() >= BODY - 64);
        let chunk = pool.chunk();
        let mut de = serde_json::Deserializer::from_str(&json);
        let err = Request::deserialize_in(&chunk, &mut de).err().expect("the cap stops it");
        assert!(err.to_string().contains("out of memory"), "{err}");
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn serialize_into_a_chunk_buffer() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        let mut out: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
        let order = Order { id: 7, name: &body };
        let err = serde_json::to_writer(VecWriter::new(&mut out), &order).unwrap_err();
        assert!(err.is_io(), "{err}");
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn format() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        assert!(perfloc::try_format_in!(&chunk, "{body}").is_err());
        let mut s = perfloc::String::new_in(&chunk);
        assert!(write!(s, "{body}").is_err());
        assert!(chunk.try_alloc_fmt(format_args!("{body}")).is_err());
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn collect() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        assert!(body.bytes().try_collect_in::<perfloc::Vec<u8>>(&chunk).is_err());
        assert!(body.chars().try_collect_in::<perfloc::String<_>>(&chunk).is_err());
        let pieces = body.as_bytes().chunks(4096).map(|p| core::str::from_utf8(p).unwrap());
        assert!(pieces.try_collect_in::<perfloc::String<_>>(&chunk).is_err());
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn io_writer() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        let mut out: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
        // A body read in pieces, with no size known up front.
        let err = std::io::copy(&mut body.as_bytes(), &mut VecWriter::new(&mut out)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        assert!(out.len() < CAP, "it kept what fitted");
        let err = VecWriter::new(&mut out).write_all(body.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn string() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        let mut s = perfloc::String::new_in(&chunk);
        assert!(s.try_push_str(&body).is_err());
        assert!(s.try_reserve(BODY).is_err());
        for _ in 0..BODY {
            if s.try_push('é').is_err() {
                break;
            }
        }
        assert!(s.len() < CAP, "pushes stop at the cap: {}", s.len());
        let mut v: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
        assert!(v.try_reserve(BODY).is_err());
        assert!(chunk.refused());
    }

    #[test]
    #[ignore = "run by every_fallible_path_returns_an_error_at_the_cap"]
    fn direct() {
        let (pool, body) = (capped(), body());
        let chunk = pool.chunk();
        assert!(chunk.try_alloc_slice_copy(body.as_bytes()).is_err());
        assert!(chunk.try_alloc_str(&body).is_err());
        assert!(chunk.try_alloc_zeroed_slice(BODY).is_err());
        assert!(chunk.try_alloc_uninit_slice::<u8>(BODY).is_err());
        let filled = chunk.try_alloc_slice_try_fill_with(BODY, |i| Ok::<_, ()>(i as u8));
        assert!(matches!(filled, Err(AllocOrInitError::Alloc(_))));
        let big = chunk.try_alloc_try_with(|| Ok::<_, ()>([0u8; CAP + 4096]));
        assert!(matches!(big, Err(AllocOrInitError::Alloc(_))));
        assert!(chunk.refused());
        // And the chunk goes on serving what fits.
        assert_eq!(chunk.alloc_str("ok"), "ok");
    }
}
