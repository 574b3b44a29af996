//! The service over real sockets on loopback: answers, bad input, caps, and `GET /stats`.

use std::net::SocketAddr;

use perfloc_server::{Handler, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a server with `options` (on a free loopback port) on the test's runtime.
async fn start(handler: Handler, change: impl FnOnce(&mut Options)) -> SocketAddr {
    let mut options = Options { handler, ..Options::default() };
    change(&mut options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(perfloc_server::serve(listener, options.service("test")));
    addr
}

/// Sends raw HTTP/1.1 `head` + `body` and returns the status and the response body.
async fn send(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) and close before it has read everything.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8(response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

async fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    let head = format!(
        "POST /score HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    send(addr, &head, body.as_bytes()).await
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    send(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"), b"")
        .await
}

const BODY: &str = r#"{"user":"u-1","region":"eu","items":[
    {"id":"a","category":"toys","tags":["sale","caf\u00e9"],"price":10,"qty":2,"scores":[0.5,1.0]},
    {"id":"b","category":"books","tags":["new"],"price":5,"qty":1,"scores":[1.0]}]}"#;

/// A well-formed body of `items` items, about 60 bytes each.
fn body_of(items: usize) -> String {
    let items: Vec<String> = (0..items)
        .map(|i| {
            format!(
                r#"{{"id":"item-{i}","category":"c{}","tags":["t{}"],"price":1.5,"scores":[1,2]}}"#,
                i % 7,
                i % 5
            )
        })
        .collect();
    format!(r#"{{"user":"u","items":[{}]}}"#, items.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_handlers_answer_alike() {
    let chunk = start(Handler::Chunk, |_| {}).await;
    let global = start(Handler::Global, |_| {}).await;
    let (status, in_chunk) = post(chunk, BODY).await;
    assert_eq!(status, 200, "{in_chunk}");
    assert_eq!(post(global, BODY).await, (200, in_chunk.clone()));
    let json: serde_json::Value = serde_json::from_str(&in_chunk).unwrap();
    assert_eq!(json["total_value"], 25.0);
    assert_eq!(json["top"][0]["id"], "a");
    assert_eq!(json["tags"]["café"], 1);
    // A body of about 130 KB, which arrives in several frames.
    let big = body_of(2000);
    let (status, answer) = post(chunk, &big).await;
    assert_eq!((status, &answer), (200, &post(global, &big).await.1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_serving_goes_on() {
    for handler in [Handler::Chunk, Handler::Global] {
        let addr = start(handler, |options| options.max_body = 1000).await;
        let (status, message) = post(addr, r#"{"user":"u","items":[{"id":1}]}"#).await;
        assert_eq!(status, 400);
        // The error names the field where the body went wrong.
        let expected = "malformed request: field `items`: field `id`: invalid type: integer `1`";
        assert!(message.starts_with(expected), "{message}");
        assert_eq!(post(addr, "not json").await.0, 400);

        // Over the limit by its Content-Length: refused before it is read.
        let (status, message) = post(addr, &body_of(40)).await;
        assert_eq!((status, message.as_str()), (413, "body over 1000 bytes\n"));
        // Over the limit without a declared length (chunked): refused as it arrives.
        let big = body_of(40);
        let head = "POST /score HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
        assert_eq!(send(addr, head, chunked.as_bytes()).await.0, 413);

        assert_eq!(get(addr, "/nowhere").await.0, 404);
        assert_eq!(get(addr, "/score").await.0, 405);
        assert_eq!(post(addr, BODY).await.0, 200, "still serving");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_chunk_cap_gets_413_and_the_others_do_not_notice() {
    let addr = start(Handler::Chunk, |options| options.chunk_cap = 64 << 10).await;
    let big = body_of(3000); // about 200 KB: more than its chunk may hold
    let small: Vec<_> = (0..20).map(|_| tokio::spawn(post(addr, BODY))).collect();
    let (status, message) = post(addr, &big).await;
    assert_eq!((status, message.as_str()), (413, "the request needs more memory than its cap\n"));
    for request in small {
        assert_eq!(request.await.unwrap().0, 200);
    }
    assert_eq!(post(addr, BODY).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_report_the_pool_and_the_requests() {
    let addr = start(Handler::Chunk, |_| {}).await;
    for _ in 0..5 {
        assert_eq!(post(addr, BODY).await.0, 200);
    }
    let (status, stats) = get(addr, "/stats").await;
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(
        (stats["handler"].as_str(), stats["allocator"].as_str()),
        (Some("chunk"), Some("test"))
    );
    assert_eq!(stats["requests"], 5);
    let pool = &stats["pool"];
    assert!(pool["mapped_bytes"].as_u64().unwrap() >= 1 << 20, "{pool}");
    assert!(pool["mmap_calls"].as_u64().unwrap() >= 1, "{pool}");
    for field in [
        "in_use_bytes",
        "resident_in_use_bytes",
        "free_bytes",
        "resident_free_bytes",
        "purged_bytes",
        "cached_bytes",
        "peak_mapped_bytes",
        "peak_lent_bytes",
        "live_chunks",
        "munmap_calls",
        "madvise_calls",
    ] {
        assert!(pool[field].is_u64(), "{field} in {pool}");
    }
}
