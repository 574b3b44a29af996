//! Routing and the two forms of the `POST /score` handler.
//!
//! Both forms run [`handle`], the same generic code, with a different allocator:
//! - [`Handler::Chunk`]: a [`perfloc::SyncChunk`] per request, made when the request arrives
//!   and dropped when its response is built. The body, the parsed request, the maps, the
//!   ranking and the response text are all in it, and they live across the handler's
//!   `.await`s (reading the body; the downstream call), so the chunk must be `Sync` for the
//!   future to be `Send` and run on tokio's multi-thread runtime.
//! - [`Handler::Global`]: `Global`, the process's global allocator, which is what std's
//!   collections use; the binaries set it to glibc, jemalloc or mimalloc.
//!
//! In both, the finished response is copied once into a `Bytes` on the global allocator,
//! because hyper writes it after the handler (and the chunk) are gone.

use core::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use perfloc::allocator_api2::alloc::{Allocator, Global};

use crate::body::{self, BodyError};
use crate::request::{self, ParseError};
use crate::score::{self, OutOfMemory};

/// Where a request's data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// In a per-request perfloc chunk.
    Chunk,
    /// On the global allocator.
    Global,
}

/// The service's settings and counters, shared by every connection.
#[derive(Debug)]
pub struct Service {
    /// Where request data lives.
    pub handler: Handler,
    /// The global allocator's name, for `GET /stats`.
    pub allocator: &'static str,
    /// The largest body `POST /score` accepts, in bytes (larger: 413).
    pub max_body: usize,
    /// The most bytes one request's chunk may hold ([`Handler::Chunk`] only; more: 413).
    pub chunk_cap: usize,
    /// Requests answered by `POST /score`, whatever their status.
    pub requests: AtomicU64,
}

/// The response body type.
pub type Body = Full<Bytes>;

impl Service {
    /// Answers one request.
    ///
    /// # Errors
    ///
    /// Never: every failure is a response.
    pub async fn route(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        Ok(match (request.method(), request.uri().path()) {
            (&Method::POST, "/score") => {
                let response = self.score(request).await;
                self.requests.fetch_add(1, Ordering::Relaxed);
                response
            }
            (&Method::GET, "/stats") => json(StatusCode::OK, self.stats()),
            (_, "/score" | "/stats") => {
                text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        })
    }

    async fn score(&self, request: Request<Incoming>) -> Response<Body> {
        let length = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse().ok());
        let body = request.into_body();
        match self.handler {
            Handler::Chunk => {
                let chunk = perfloc::sync_chunk();
                chunk.set_limit(Some(self.chunk_cap));
                handle(body, length, self.max_body, &chunk).await
            }
            Handler::Global => handle(body, length, self.max_body, Global).await,
        }
    }

    /// `GET /stats`: the handler, the allocator, the request count and the global pool's
    /// figures (which stay at zero for [`Handler::Global`]), with how much of its memory in
    /// use and free is resident (`mincore`, one call per 16 MiB mapped).
    fn stats(&self) -> std::string::String {
        let pool = perfloc::Pool::global().stats();
        format!(
            concat!(
                "{{\"handler\":\"{}\",\"allocator\":\"{}\",\"requests\":{},\"pool\":{{",
                "\"mapped_bytes\":{},\"in_use_bytes\":{},\"resident_in_use_bytes\":{},",
                "\"free_bytes\":{},\"resident_free_bytes\":{},\"purged_bytes\":{},",
                "\"cached_bytes\":{},\"peak_mapped_bytes\":{},\"peak_lent_bytes\":{},",
                "\"live_chunks\":{},",
                "\"mmap_calls\":{},\"munmap_calls\":{},\"madvise_calls\":{}}}}}\n"
            ),
            match self.handler {
                Handler::Chunk => "chunk",
                Handler::Global => "global",
            },
            self.allocator,
            self.requests.load(Ordering::Relaxed),
            pool.mapped_bytes,
            pool.in_use_bytes,
            pool.resident_in_use_bytes,
            pool.free_bytes,
            pool.resident_free_bytes,
            pool.purged_bytes,
            pool.cached_bytes,
            pool.peak_mapped_bytes,
            pool.peak_lent_bytes,
            pool.live_chunks,
            pool.mmap_calls,
            pool.munmap_calls,
            pool.madvise_calls,
        )
    }
}

/// `POST /score` in `alloc`: read the body, parse it, wait for the downstream call, score.
async fn handle<A: Allocator + Copy + Send + Sync + request::Refusals>(
    body: Incoming,
    length: Option<u64>,
    max_body: usize,
    alloc: A,
) -> Response<Body> {
    let bytes = match body::read(body, length, max_body, alloc).await {
        Ok(bytes) => bytes,
        Err(BodyError::TooLarge) => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, &format!("body over {max_body} bytes\n"));
        }
        Err(BodyError::OutOfMemory) => return too_large(),
        Err(BodyError::Read(err)) => return text(StatusCode::BAD_REQUEST, &format!("{err}\n")),
    };
    let request = match request::parse(&bytes, alloc) {
        Ok(request) => request,
        Err(ParseError::OutOfMemory) => return too_large(),
        Err(err @ ParseError::Malformed(_)) => {
            return text(StatusCode::BAD_REQUEST, &format!("{err}\n"));
        }
    };
    downstream().await;
    match score::score(&request, alloc) {
        Ok(response) => json(StatusCode::OK, response.as_str()),
        Err(OutOfMemory) => too_large(),
    }
}

/// Stands in for the asynchronous call a real handler makes between parsing and answering
/// (a cache or a database): the task yields, and may resume on another worker thread with
/// all its request data alive.
async fn downstream() {
    tokio::task::yield_now().await;
}

fn too_large() -> Response<Body> {
    text(StatusCode::PAYLOAD_TOO_LARGE, "the request needs more memory than its cap\n")
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

fn json(status: StatusCode, body: impl AsRef<str>) -> Response<Body> {
    respond(status, "application/json", body.as_ref())
}

fn respond(status: StatusCode, content_type: &'static str, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
