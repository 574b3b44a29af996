//! `GET /stats`: a tiny HTTP/1.1 client, and the pool figures the server reports.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// The pool figures of one `GET /stats` (perfloc's global pool in the server).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStats {
    /// Requests the server has answered.
    pub requests: u64,
    /// `pool.*` figures by name, in the order of [`POOL_FIELDS`].
    pub pool: [u64; POOL_FIELDS.len()],
}

/// The `pool` object's fields.
pub const POOL_FIELDS: [&str; 10] = [
    "mapped_bytes",
    "in_use_bytes",
    "free_bytes",
    "purged_bytes",
    "cached_bytes",
    "peak_mapped_bytes",
    "live_chunks",
    "mmap_calls",
    "munmap_calls",
    "madvise_calls",
];

impl PoolStats {
    /// The pool figure called `name` (one of [`POOL_FIELDS`]).
    pub fn get(&self, name: &str) -> u64 {
        POOL_FIELDS.iter().position(|f| *f == name).map_or(0, |i| self.pool[i])
    }

    /// Reads `{"requests":N,"pool":{...}}`; every pool field must be there.
    pub fn from_json(v: &Value) -> Result<PoolStats, String> {
        let mut stats = PoolStats {
            requests: v["requests"].as_u64().ok_or("/stats: no \"requests\" number")?,
            ..PoolStats::default()
        };
        for (slot, name) in stats.pool.iter_mut().zip(POOL_FIELDS) {
            *slot = v["pool"][name].as_u64().ok_or(format!("/stats: no pool.{name} number"))?;
        }
        Ok(stats)
    }

    /// The same figures as JSON, in the server's shape.
    pub fn to_json(&self) -> Value {
        let pool: serde_json::Map<String, Value> =
            POOL_FIELDS.iter().zip(self.pool).map(|(n, v)| (n.to_string(), v.into())).collect();
        serde_json::json!({ "requests": self.requests, "pool": pool })
    }
}

/// The pool's system calls between two readings: (mmap, munmap, madvise).
pub fn syscalls_between(before: &PoolStats, after: &PoolStats) -> [u64; 3] {
    ["mmap_calls", "munmap_calls", "madvise_calls"]
        .map(|name| after.get(name).saturating_sub(before.get(name)))
}

/// `GET /stats` with `Connection: close`.
pub fn fetch(addr: SocketAddr) -> Result<PoolStats, String> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("GET /stats: cannot connect to {addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    // One write: `write!` on the stream would send the request in pieces.
    let request = format!("GET /stats HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("GET /stats: {e}"))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| format!("GET /stats: {e}"))?;
    let body = response_body(&response)?;
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| format!("GET /stats: not JSON ({e})"))?;
    PoolStats::from_json(&json)
}

/// The body of a complete HTTP/1.1 response with status 200 (plain or chunked).
pub fn response_body(response: &[u8]) -> Result<Vec<u8>, String> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("GET /stats: no end of headers in the response")?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("GET /stats answered {status:?}"));
    }
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim() == "transfer-encoding" && value.contains("chunked")
        })
    });
    if chunked { dechunk(body) } else { Ok(body.to_vec()) }
}

/// Joins the chunks of a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("GET /stats: a chunk without its size line")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("GET /stats: bad chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let data = body.get(line_end + 2..line_end + 2 + size).ok_or("GET /stats: short chunk")?;
        out.extend_from_slice(data);
        body = body.get(line_end + 4 + size..).ok_or("GET /stats: short chunk")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = r#"{"handler":"chunk","allocator":"glibc","requests":123,"pool":{"mapped_bytes":8388608,"in_use_bytes":65536,"free_bytes":1,"purged_bytes":2,"cached_bytes":3,"peak_mapped_bytes":4,"live_chunks":5,"mmap_calls":6,"munmap_calls":7,"madvise_calls":8}}"#;

    #[test]
    fn reads_the_stats_json() {
        let stats = PoolStats::from_json(&serde_json::from_str(STATS).unwrap()).unwrap();
        assert_eq!(stats.requests, 123);
        assert_eq!(stats.get("mapped_bytes"), 8388608);
        assert_eq!(stats.get("madvise_calls"), 8);
        assert_eq!(PoolStats::from_json(&stats.to_json()).unwrap(), stats);
        let missing = STATS.replace(r#""munmap_calls":7,"#, "");
        assert!(PoolStats::from_json(&serde_json::from_str(&missing).unwrap()).is_err());
    }

    #[test]
    fn syscalls_are_differences() {
        let mut before = PoolStats::default();
        before.pool[7..].copy_from_slice(&[1, 2, 3]);
        let mut after = before.clone();
        after.pool[7..].copy_from_slice(&[4, 2, 10]);
        assert_eq!(syscalls_between(&before, &after), [3, 0, 7]);
    }

    #[test]
    fn plain_and_chunked_bodies() {
        let plain = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(response_body(plain.as_bytes()).unwrap(), b"hello");
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(response_body(chunked.as_bytes()).unwrap(), b"hello world");
        let not_found = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert!(response_body(not_found.as_bytes()).unwrap_err().contains("404"));
        assert!(response_body(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn fetch_from_a_one_shot_server() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // The whole request before answering: closing with unread bytes would reset
            // the connection under the client's read.
            let (mut request, mut buf) = (Vec::new(), [0u8; 1024]);
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            assert!(request.starts_with(b"GET /stats HTTP/1.1\r\n"));
            write!(conn, "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{STATS}", STATS.len())
                .unwrap();
        });
        assert_eq!(fetch(addr).unwrap().requests, 123);
        server.join().unwrap();
    }
}
