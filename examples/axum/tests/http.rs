//! The service over real sockets (loopback): an order is answered, malformed input is 400,
//! a body that needs more than the chunk's cap is 413, and serving goes on.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, perfloc_axum::app()).await.unwrap() });
    addr
}

/// Sends `POST /orders` with `body`; returns the status and the response's body.
async fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

const ORDER: &str = r#"{"customer": "Ada \"A\" L.", "items": [
    {"sku": "x1", "category": "tea", "qty": 2, "cents": 450},
    {"sku": "y2", "category": "cake", "cents": 300},
    {"sku": "z3", "category": "tea", "qty": 1, "cents": 100, "note": "ignored"}
]}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_is_totalled_in_its_chunk() {
    let addr = start().await;
    let (status, body) = post(addr, ORDER).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["customer"], "Ada \"A\" L.");
    assert_eq!((json["items"].as_u64(), json["cents"].as_u64()), (Some(3), Some(1300)));
    assert_eq!(json["by_category"]["tea"], 1000);
    assert_eq!(json["by_category"]["cake"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_is_400_and_over_the_cap_is_413_and_serving_goes_on() {
    let addr = start().await;
    let (status, body) = post(addr, r#"{"customer": "Ada", "items": [{"sku": 1}]}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("field `items`: field `sku`"), "{body}");
    assert_eq!(post(addr, "not json").await.0, 400);
    // About 1 MiB of items with escaped text, each copied into the chunk: past the
    // 256 KiB cap. An error for this request only, not an abort.
    let item = r#"{"sku": "a\tb", "category": "c\td", "cents": 1}"#;
    let items = vec![item; (1 << 20) / item.len()].join(",");
    let hostile = format!(r#"{{"customer": "mallory", "items": [{items}]}}"#);
    let (status, body) = post(addr, &hostile).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(post(addr, ORDER).await.0, 200, "the service goes on");
}
