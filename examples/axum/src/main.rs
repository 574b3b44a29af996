//! `cargo run -p perfloc-axum [ADDRESS]`: serves `POST /orders` on ADDRESS
//! (`127.0.0.1:3000` by default), each request's data in a perfloc chunk of its own.
//!
//! ```sh
//! curl -s localhost:3000/orders -d '{"customer":"Ada","items":[{"sku":"x1","category":"tea","qty":2,"cents":450}]}'
//! ```

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("perfloc-axum: POST /orders on http://{}", listener.local_addr()?);
    axum::serve(listener, perfloc_axum::app()).await
}
