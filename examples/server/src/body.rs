//! Reading a request body into the request's allocator, up to a size limit.

use http_body_util::BodyExt;
use hyper::body::Incoming;
use perfloc::allocator_api2::alloc::Allocator;
use perfloc::allocator_api2::vec::Vec;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit (by its `Content-Length`, or once read): 413.
    TooLarge,
    /// The request's allocator refused memory: 413.
    OutOfMemory,
    /// The connection failed while reading: the client is gone or broke the protocol.
    Read(hyper::Error),
}

/// Reads `body` into a vector in `alloc`, refusing more than `max` bytes. A declared
/// `Content-Length` is checked before anything is read and reserved exactly, so the body is
/// copied once; without one the vector grows as frames arrive.
///
/// # Errors
///
/// See [`BodyError`].
pub async fn read<A: Allocator + Copy>(
    mut body: Incoming,
    content_length: Option<u64>,
    max: usize,
    alloc: A,
) -> Result<Vec<u8, A>, BodyError> {
    let mut bytes = Vec::new_in(alloc);
    if let Some(declared) = content_length {
        let declared = usize::try_from(declared).map_err(|_| BodyError::TooLarge)?;
        if declared > max {
            return Err(BodyError::TooLarge);
        }
        bytes.try_reserve_exact(declared).map_err(|_| BodyError::OutOfMemory)?;
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Some(data) = frame.data_ref() else { continue };
        if data.len() > max - bytes.len() {
            return Err(BodyError::TooLarge);
        }
        bytes.try_reserve(data.len()).map_err(|_| BodyError::OutOfMemory)?;
        bytes.extend_from_slice(data);
    }
    Ok(bytes)
}
