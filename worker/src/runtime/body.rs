//! Reading a body for scanning: under a cap, and only as far as needed.
//!
//! The caller reads from a *clone* of the request or response (the runtime
//! tees the stream), so the original stays intact and can be passed on
//! untouched whatever happens here: after a peek that found no image, after
//! the cap was hit, or after a clean verdict. A peek reads only the first
//! chunk or two; a body over the cap is abandoned as soon as that is known
//! (from `Content-Length` before reading anything, or while reading).
//!
//! A body that ends before its `Content-Length` (an origin that closed the
//! connection mid-body) or runs past it is a [`ScanError::Body`], never a
//! complete image: hashing a partial image could call a listed image clean,
//! and the verdict cache would then remember that for the URL.
//!
//! Every byte kept is first reserved against the isolate's memory budget
//! ([`crate::budget`]): at once when the length is known, as the buffer
//! grows when it is not. A body the runtime left content-encoded
//! ([`crate::encoding`]) is decoded here, under the same cap and budget; a
//! peek decodes just enough of it to see its first bytes.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

use crate::budget::Reservation;
use crate::encoding::{self, Coding};
use crate::error::ScanError;
use crate::runtime::js_error_text;
use crate::sniff::{self, Inspect, SNIFF_BYTES};

/// How much of an encoded body a peek reads to decode its first bytes.
const ENCODED_PEEK_BYTES: usize = 64 * 1024;

/// What reading found.
#[derive(Debug)]
pub enum BodyRead {
    /// A peek found no image: leave the body alone.
    NotImage,
    /// The whole body, within the cap (decoded).
    Complete(Vec<u8>),
}

/// How to read one body.
pub struct ReadPlan<'a> {
    /// [`Inspect::Read`] or [`Inspect::Peek`].
    pub inspect: Inspect,
    /// The `Content-Length`, if any.
    pub declared: Option<u64>,
    /// `declared` counts the bytes the stream yields (the runtime decoded
    /// no `Content-Encoding`), so a body of another length is an error.
    pub exact: bool,
    /// The route's `max_bytes`, for the bytes read and for the decoded body.
    pub cap: usize,
    /// Codings the bytes still carry ([`encoding::remaining`]).
    pub codings: &'a [Coding],
    /// For a peek: whether the first (decoded) bytes are worth reading on
    /// ([`is_image`] for responses; uploads also read on for text, which may
    /// embed an image).
    pub worth_reading: fn(&[u8]) -> bool,
}

/// Whether the first bytes are an image: what a response peek reads on for.
pub fn is_image(prefix: &[u8]) -> bool {
    sniff::sniff(prefix).is_some()
}

/// Reads `stream` for scanning; every byte kept is held in `reservation`,
/// which the caller keeps until it is done with the bytes.
pub async fn read(
    stream: Option<ReadableStream>,
    plan: ReadPlan<'_>,
    reservation: &mut Reservation,
) -> Result<BodyRead, ScanError> {
    let ReadPlan {
        inspect,
        declared,
        exact,
        cap,
        codings,
        worth_reading,
    } = plan;
    let Some(stream) = stream else {
        return Ok(match inspect {
            Inspect::Read => BodyRead::Complete(Vec::new()),
            _ => BodyRead::NotImage,
        });
    };
    let over_declared = declared.is_some_and(|len| len > cap as u64);
    if over_declared && inspect == Inspect::Read {
        let _ = stream.cancel();
        return Err(ScanError::OverCap { cap });
    }
    let reader: ReadableStreamDefaultReader = stream
        .get_reader()
        .dyn_into()
        .map_err(|_| ScanError::Body("stream has no default reader".into()))?;
    let hint = declared.map_or(64 * 1024, |len| (len as usize).min(cap));
    let mut buffer: Vec<u8> = Vec::new();

    if inspect == Inspect::Peek {
        loop {
            let enough = if codings.is_empty() {
                buffer.len() >= SNIFF_BYTES
            } else {
                buffer.len() >= ENCODED_PEEK_BYTES
                    || encoding::decode_prefix(&buffer, codings, SNIFF_BYTES).len() >= SNIFF_BYTES
            };
            if enough {
                break;
            }
            // The cap applies once the peek found an image (below).
            match next_chunk(&reader, &mut buffer, reservation, SNIFF_BYTES, usize::MAX).await {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    cancel(&reader);
                    return Err(e);
                }
            }
        }
        let prefix = if codings.is_empty() {
            buffer.clone()
        } else {
            encoding::decode_prefix(&buffer, codings, SNIFF_BYTES)
        };
        if !worth_reading(&prefix) {
            cancel(&reader);
            return Ok(BodyRead::NotImage);
        }
        if over_declared {
            cancel(&reader);
            return Err(ScanError::OverCap { cap });
        }
    }
    loop {
        if buffer.len() > cap {
            cancel(&reader);
            return Err(ScanError::OverCap { cap });
        }
        match next_chunk(&reader, &mut buffer, reservation, hint, cap).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                cancel(&reader);
                return Err(e);
            }
        }
    }
    if buffer.len() > cap {
        return Err(ScanError::OverCap { cap });
    }
    if let Some(len) = declared.filter(|_| exact) {
        if buffer.len() as u64 != len {
            return Err(ScanError::Body(format!(
                "the body has {} bytes but its Content-Length is {len}",
                buffer.len()
            )));
        }
    }
    if codings.is_empty() {
        return Ok(BodyRead::Complete(buffer));
    }
    // The decoded copy is held next to the encoded one while it is made.
    reservation.grow_to(reservation.held() + cap).await?;
    let decoded = encoding::decode(buffer, codings, cap)?;
    Ok(BodyRead::Complete(decoded))
}

/// Appends the next chunk, first reserving room for it (the buffer grows to
/// at least `hint`, then by doubling, never past `limit`); a chunk that
/// would take the body past `limit` is [`ScanError::OverCap`];
/// `false` at the end of the stream.
async fn next_chunk(
    reader: &ReadableStreamDefaultReader,
    buffer: &mut Vec<u8>,
    reservation: &mut Reservation,
    hint: usize,
    limit: usize,
) -> Result<bool, ScanError> {
    let result = JsFuture::from(reader.read())
        .await
        .map_err(|e| ScanError::Body(js_error_text(&e)))?;
    let done = Reflect::get(&result, &JsValue::from_str("done"))
        .ok()
        .and_then(|d| d.as_bool())
        .unwrap_or(true);
    if done {
        return Ok(false);
    }
    let value = Reflect::get(&result, &JsValue::from_str("value"))
        .map_err(|e| ScanError::Body(js_error_text(&e)))?;
    let chunk: Uint8Array = value
        .dyn_into()
        .map_err(|_| ScanError::Body("stream chunk is not bytes".into()))?;
    let start = buffer.len();
    let needed = start + chunk.length() as usize;
    if needed > limit {
        return Err(ScanError::OverCap { cap: limit });
    }
    if needed > buffer.capacity() {
        let grown = needed
            .max(hint)
            .max(buffer.capacity().saturating_mul(2))
            .min(limit);
        reservation.grow_to(grown).await?;
        buffer.reserve_exact(grown - start);
    }
    buffer.resize(needed, 0);
    chunk.copy_to(&mut buffer[start..]);
    Ok(true)
}

fn cancel(reader: &ReadableStreamDefaultReader) {
    // The clone is abandoned; the original branch of the tee is unaffected.
    let _ = reader.cancel();
}
