//! An axum service whose handler keeps each request's data in a perfloc chunk of its own:
//! the code of the web-service guide (`docs/web-service.md`).
//!
//! `POST /orders` takes a JSON order, totals it by category in a map, and answers JSON:
//!
//! - a middleware ([`chunk_per_request`]) gives every request a [`RequestChunk`], a
//!   `SyncChunk` from a pool whose chunks are capped ([`CHUNK_CAP`]), in the request's
//!   extensions (which need `Clone`: it is an `Arc`);
//! - the handler takes the body as `Bytes`, moves it and the chunk into `spawn_blocking`,
//!   parses the order into the chunk with `#[derive(perfloc::DeserializeIn)]` (text is
//!   borrowed from the body unless it was escaped), builds the totals in the chunk,
//!   serializes the answer into a buffer in the chunk, and copies it out once;
//! - a body that would take the chunk past its cap is `413 Payload Too Large`, told from
//!   malformed input (`400`) by [`perfloc::ProcessChunk::refused`]: no error text is
//!   matched, and nothing aborts;
//! - when the response is built, the last `Arc` drops and the chunk's blocks go back to
//!   the pool at once.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Extension, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::vec::Vec;
use perfloc::serde::{DeserializeIn, Text};
use perfloc::{Pool, SyncChunk, VecWriter};

/// The most bytes of blocks one request's chunk may hold: 256 KiB.
pub const CHUNK_CAP: usize = 256 << 10;

/// The pool every request's chunk comes from, its chunks capped at [`CHUNK_CAP`].
static POOL: LazyLock<Pool> =
    LazyLock::new(|| Pool::builder().chunk_limit(CHUNK_CAP).build().expect("valid settings"));

/// A request's chunk, in its extensions: `Clone` (an `Arc`), `Send + Sync`, `'static`
/// (its pool is a `static`), as axum's extensions require.
#[derive(Clone)]
pub struct RequestChunk(Arc<SyncChunk<'static>>);

impl std::ops::Deref for RequestChunk {
    type Target = SyncChunk<'static>;

    fn deref(&self) -> &SyncChunk<'static> {
        &self.0
    }
}

/// The middleware: a fresh chunk for every request.
pub async fn chunk_per_request(mut request: Request, next: Next) -> Response {
    match POOL.try_sync_chunk() {
        Ok(chunk) => {
            request.extensions_mut().insert(RequestChunk(Arc::new(chunk)));
            next.run(request).await
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "out of memory\n").into_response(),
    }
}

/// The service's routes.
pub fn app() -> Router {
    Router::new().route("/orders", post(orders)).layer(middleware::from_fn(chunk_per_request))
}

/// An order, parsed into the request's chunk.
#[derive(perfloc::DeserializeIn)]
pub struct Order<'de, A: Allocator> {
    /// Who orders.
    pub customer: Text<'de, A>,
    /// What.
    pub items: Vec<Item<'de, A>, A>,
}

/// One line of an order.
#[derive(perfloc::DeserializeIn)]
pub struct Item<'de, A: Allocator> {
    /// The article.
    pub sku: Text<'de, A>,
    /// Its category, which the answer totals by.
    pub category: Text<'de, A>,
    /// How many.
    #[perfloc(default = "one")]
    pub qty: u32,
    /// Unit price in cents.
    pub cents: u64,
}

fn one<A>(_: A) -> u32 {
    1
}

/// The answer, serialized from the chunk.
#[derive(serde::Serialize)]
struct Totals<'a> {
    customer: &'a str,
    items: usize,
    cents: u64,
    by_category: perfloc::HashMap<'a, &'a str, u64, perfloc::SharedBump>,
}

/// `POST /orders`.
async fn orders(Extension(chunk): Extension<RequestChunk>, body: Bytes) -> Response {
    // Parsing and totalling is CPU work: off the async workers, with the chunk moved in.
    let answer = tokio::task::spawn_blocking(move || answer(&chunk, &body)).await;
    match answer {
        Ok(Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Ok(Err((status, message))) => (status, message).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The whole answer, with every allocation in `chunk`; the one copy out is the response's
/// `Bytes`.
fn answer(chunk: &SyncChunk<'static>, body: &[u8]) -> Result<Bytes, (StatusCode, String)> {
    let refused = |err: &dyn std::fmt::Display| {
        if chunk.refused() {
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the order needs more than {CHUNK_CAP} bytes\n"),
            )
        } else {
            (StatusCode::BAD_REQUEST, format!("malformed order: {err}\n"))
        }
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let order = Order::deserialize_in(chunk, &mut json).map_err(|err| refused(&err))?;
    json.end().map_err(|err| refused(&err))?;
    let mut by_category: perfloc::HashMap<'_, &str, u64, _> = perfloc::HashMap::new_in(chunk);
    let mut cents = 0u64;
    for item in &order.items {
        let line = item.cents.saturating_mul(u64::from(item.qty));
        by_category.try_reserve(1).map_err(|_| refused(&"the totals could not grow"))?;
        *by_category.entry(item.category.as_str()).or_insert(0) += line;
        cents = cents.saturating_add(line);
    }
    let totals = Totals { customer: &order.customer, items: order.items.len(), cents, by_category };
    let mut out = Vec::new_in(chunk);
    serde_json::to_writer(VecWriter::new(&mut out), &totals).map_err(|err| refused(&err))?;
    Ok(Bytes::copy_from_slice(&out))
}
