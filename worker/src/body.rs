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

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

use crate::error::ScanError;
use crate::runtime::js_error_text;
use crate::sniff::{self, Inspect, SNIFF_BYTES};

/// What reading found.
#[derive(Debug)]
pub enum BodyRead {
    /// A peek found no image: leave the body alone.
    NotImage,
    /// The whole body, within the cap.
    Complete(Vec<u8>),
}

/// Reads `stream` for scanning. `inspect` is [`Inspect::Read`] or
/// [`Inspect::Peek`]; `declared` is the `Content-Length`, if any;
/// `exact` says it counts the bytes the stream yields (no
/// `Content-Encoding` the runtime decodes), so a body of another length is
/// an error.
pub async fn read(
    stream: Option<ReadableStream>,
    inspect: Inspect,
    declared: Option<u64>,
    exact: bool,
    cap: usize,
) -> Result<BodyRead, ScanError> {
    read_if(stream, inspect, declared, exact, cap, |prefix| {
        sniff::sniff(prefix).is_some()
    })
    .await
}

/// [`read`], where a peek reads on when `worth_reading` says so of the
/// first bytes (uploads also read on for text, which may embed an image).
pub async fn read_if(
    stream: Option<ReadableStream>,
    inspect: Inspect,
    declared: Option<u64>,
    exact: bool,
    cap: usize,
    worth_reading: impl Fn(&[u8]) -> bool,
) -> Result<BodyRead, ScanError> {
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
    let capacity = declared.map_or(64 * 1024, |len| (len as usize).min(cap));
    let mut buffer: Vec<u8> = Vec::with_capacity(capacity);

    if inspect == Inspect::Peek {
        while buffer.len() < SNIFF_BYTES {
            if !next_chunk(&reader, &mut buffer).await? {
                break;
            }
        }
        if !worth_reading(&buffer) {
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
        if !next_chunk(&reader, &mut buffer).await? {
            break;
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
    Ok(BodyRead::Complete(buffer))
}

/// Appends the next chunk; `false` at the end of the stream.
async fn next_chunk(
    reader: &ReadableStreamDefaultReader,
    buffer: &mut Vec<u8>,
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
    buffer.resize(start + chunk.length() as usize, 0);
    chunk.copy_to(&mut buffer[start..]);
    Ok(true)
}

fn cancel(reader: &ReadableStreamDefaultReader) {
    // The clone is abandoned; the original branch of the tee is unaffected.
    let _ = reader.cancel();
}
