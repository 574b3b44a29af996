//! A real HTTP service for measuring perfloc: hyper 1 on tokio's multi-thread runtime, one
//! endpoint that does a request's typical work, in two forms with the same code.
//!
//! - `POST /score`: a JSON body of a few KB ([`request`]) is parsed into vectors and maps,
//!   each item is scored, and a JSON answer is built ([`score`]). The handler
//!   ([`service`]) runs the same generic code either with a per-request
//!   [`perfloc::SyncChunk`] (`--handler chunk`) or on the global allocator
//!   (`--handler global`). A body over `--max-body` gets 413, a malformed one 400, and a
//!   request whose chunk reaches `--chunk-cap` 413; the server keeps serving.
//! - `GET /stats`: the global pool's figures, system calls included, as JSON.
//!
//! One binary per global allocator (`src/bin/`): `server-glibc`, `server-jemalloc`,
//! `server-mimalloc`. perfloc's contender is `server-glibc --handler chunk`: request data in
//! chunks, glibc for everything else (hyper's buffers, tokio's tasks, the response `Bytes`).
//! The load driver (`src/bin/load/`, run by `load.sh`) runs them under `wrk`.

pub mod bodies;
pub mod body;
pub mod contenders;
pub mod request;
pub mod score;
pub mod service;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use service::{Handler, Service};

/// The server's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--addr`: where to listen (default `127.0.0.1:3000`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// `--handler chunk|global` (default `chunk`).
    pub handler: Handler,
    /// `--threads`: tokio worker threads (default 2, this machine's cores).
    pub threads: usize,
    /// `--max-body`: the largest accepted body in bytes (default 1 MiB).
    pub max_body: usize,
    /// `--chunk-cap`: the most bytes one request's chunk may hold (default 8 MiB).
    pub chunk_cap: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 3000)),
            handler: Handler::Chunk,
            threads: 2,
            max_body: 1 << 20,
            chunk_cap: 8 << 20,
        }
    }
}

impl Options {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    ///
    /// A message naming the flag and the value it refused.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |what: &str| format!("{flag}: {what}, not {value:?}");
            match flag.as_str() {
                "--addr" => {
                    options.addr =
                        value.parse().map_err(|_| bad("an address such as 127.0.0.1:3000"))?
                }
                "--handler" => {
                    options.handler = match value.as_str() {
                        "chunk" => Handler::Chunk,
                        "global" => Handler::Global,
                        _ => return Err(bad("`chunk` or `global`")),
                    }
                }
                "--threads" => {
                    options.threads = value
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| bad("a thread count above 0"))?;
                }
                "--max-body" => {
                    options.max_body = value.parse().map_err(|_| bad("a size in bytes"))?
                }
                "--chunk-cap" => {
                    options.chunk_cap = value
                        .parse()
                        .ok()
                        .filter(|&n| n >= perfloc::MIN_BLOCK_SIZE)
                        .ok_or_else(|| {
                            bad(&format!("a size in bytes of at least {}", perfloc::MIN_BLOCK_SIZE))
                        })?;
                }
                _ => {
                    return Err(format!(
                        "unknown flag {flag}; flags: --addr, --handler, --threads, --max-body, --chunk-cap"
                    ));
                }
            }
        }
        Ok(options)
    }

    /// The shared service these options describe.
    pub fn service(&self, allocator: &'static str) -> Arc<Service> {
        Arc::new(Service {
            handler: self.handler,
            allocator,
            max_body: self.max_body,
            chunk_cap: self.chunk_cap,
            requests: AtomicU64::new(0),
        })
    }
}

/// Serves HTTP/1.1 on `listener` until the task is dropped, one task per connection.
pub async fn serve(listener: TcpListener, service: Arc<Service>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors or a connection reset before accept: keep serving.
            Err(err) => {
                eprintln!("accept: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        // Latency figures without Nagle's delay on small responses.
        let _ = stream.set_nodelay(true);
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let handler = service_fn(move |request| Arc::clone(&service).route(request));
            // A client that breaks off is its own problem; the server goes on.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), handler).await;
        });
    }
}

/// The binaries' `main`: parse the command line, listen, print `listening on ADDR`, serve.
pub fn main(allocator: &'static str) -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("server-{allocator}: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build();
    let result = runtime.and_then(|runtime| {
        runtime.block_on(async {
            let listener = TcpListener::bind(options.addr).await?;
            println!("listening on {}", listener.local_addr()?);
            serve(listener, options.service(allocator)).await;
            Ok(())
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("server-{allocator}: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn flags_set_options() {
        let options = parse(&[
            "--addr",
            "127.0.0.1:0",
            "--handler",
            "global",
            "--threads",
            "4",
            "--max-body",
            "100",
            "--chunk-cap",
            "65536",
        ])
        .unwrap();
        assert_eq!(options.addr, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(
            (options.handler, options.threads, options.max_body, options.chunk_cap),
            (Handler::Global, 4, 100, 65536)
        );
        assert_eq!(parse(&[]).unwrap(), Options::default());
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, named) in [
            (&["--handler", "arena"][..], "--handler"),
            (&["--threads", "0"], "--threads"),
            (&["--chunk-cap", "10"], "--chunk-cap"),
            (&["--addr", "nowhere"], "--addr"),
            (&["--addr"], "--addr needs a value"),
            (&["--port", "1"], "unknown flag --port"),
        ] {
            let message = parse(args).unwrap_err();
            assert!(message.contains(named), "{message}");
        }
    }
}
