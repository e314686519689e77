//! The answer to a ranged request, built from bytes the worker checked.
//!
//! The intercept's whole phase fetched the whole object without `Range`
//! and checked it ([`crate::intercept`]); this builds what the client asked
//! for from those bytes, with the whole object's headers: `206` with
//! `Content-Range` for one range, `206 multipart/byteranges` for several,
//! `416` with `Content-Range: bytes */N` when none can be satisfied, and
//! `200` with the whole body when the `Range` is ignored or `If-Range` does
//! not hold ([`crate::range`] decides which). If the whole object came with
//! a `Content-Encoding`, the checked bytes are decoded and no longer that
//! representation, so the answer is the whole decoded body (`200`, no
//! `Content-Encoding`), which a server may always send for a `Range`.

use wasm_bindgen::JsValue;
use web_sys::{Headers, Request, Response, ResponseInit};

use crate::range::{self, Answer};
use crate::runtime::{header, uuid};

/// Response headers that describe the whole object's bytes as sent, not
/// the answer's.
const DROP: [&str; 4] = [
    "content-length",
    "content-range",
    "content-encoding",
    "transfer-encoding",
];

/// The answer to `request` from `bytes`, the checked body of the whole
/// object whose response headers are `whole`.
pub fn answer(request: &Request, whole: &Headers, bytes: &[u8]) -> Result<Response, JsValue> {
    let headers = Headers::new_with_headers(whole)?;
    for name in DROP {
        headers.delete(name)?;
    }
    let encoded = header(whole, "content-encoding")
        .is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"));
    let total = bytes.len() as u64;
    let asked = request.headers();
    let plan = if encoded {
        Answer::Whole
    } else {
        range::plan(
            header(&asked, "range").as_deref(),
            header(&asked, "if-range").as_deref(),
            header(whole, "etag").as_deref(),
            header(whole, "last-modified").as_deref(),
            total,
        )
    };
    match plan {
        Answer::Whole => build(200, "OK", &headers, bytes),
        Answer::Unsatisfiable => {
            headers.set("Content-Range", &format!("bytes */{total}"))?;
            build(416, "Range Not Satisfiable", &headers, &[])
        }
        Answer::Partial(ranges) => match ranges.as_slice() {
            [one] => {
                headers.set("Content-Range", &one.content_range(total))?;
                build(206, "Partial Content", &headers, range::slice(bytes, *one))
            }
            _ => {
                let boundary = format!("hashgate-{}", uuid().replace('-', ""));
                let content_type = header(whole, "content-type");
                let body = range::multipart(bytes, &ranges, content_type.as_deref(), &boundary);
                headers.set(
                    "Content-Type",
                    &format!("multipart/byteranges; boundary={boundary}"),
                )?;
                build(206, "Partial Content", &headers, &body)
            }
        },
    }
}

fn build(status: u16, text: &str, headers: &Headers, body: &[u8]) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(text);
    init.set_headers(headers);
    let bytes = js_sys::Uint8Array::new_with_length(body.len() as u32);
    bytes.copy_from(body);
    Response::new_with_opt_buffer_source_and_init(Some(&bytes), &init)
}
