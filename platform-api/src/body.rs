//! Reading a request body within a cap, for platform routes: a declared `Content-Length` over
//! the cap is refused before reading anything, and reading stops as soon as the cap is passed.
use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{BytesMut, Payload};
use futures_util::StreamExt;

/// Why a body was not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Over the cap (answer 413).
    TooLarge,
    /// The connection broke or the body was malformed on the wire (answer 400).
    Broken,
}

/// Reads the whole body of `req`, at most `max` bytes.
pub async fn read_capped(
    req: &HttpRequest,
    payload: &mut Payload,
    max: usize,
) -> Result<BytesMut, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(2048).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
