//! Differential: the worker's upload reader against a reference multipart
//! parser (multer, axum's; `worker/tests/reference/multer.rs`). Whenever
//! the reference extracts a part holding an image (its bytes sniff as one,
//! or it declares a raster image type), the worker must check exactly
//! those bytes or refuse the body. `cargo test -p hashgate-worker --test
//! multipart_reference` runs the same property on generated bodies.
//!
//! Input: the `Content-Type` value, a NUL byte, then the body.

#![no_main]

#[path = "../../worker/tests/reference/multer.rs"]
mod reference;

use hashgate_worker::sniff::{inspect_upload, Inspect};
use hashgate_worker::upload::{find_images, sniffs_as_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"multipart/form-data; boundary=b"[..], data),
    };
    let content_type = String::from_utf8_lossy(content_type);
    let findings = find_images(Some(&content_type), body);
    if findings.unreadable.is_some() {
        return;
    }
    for field in reference::fields(&content_type, body) {
        let holds_image = sniffs_as_image(&field.bytes)
            || matches!(inspect_upload(field.content_type.as_deref()), Inspect::Read);
        if holds_image {
            assert!(
                findings.images.iter().any(|i| *i.bytes == field.bytes[..]),
                "multer extracts {} bytes ({:?}) that the worker does not check",
                field.bytes.len(),
                field.content_type
            );
        }
    }
});
