//! Upload reading: the `Content-Type` of a request, then its body, down to
//! the images the worker hashes (multipart readings, transfer encodings,
//! nested forms, images embedded as text).
//!
//! Uploads come straight from clients, the least trusted input the worker
//! sees. Whatever the body, reading it must not panic, every reading's
//! parts must be slices of the body, and the candidates are bounded.
//!
//! Input: the `Content-Type` value, a NUL byte, then the body.

#![no_main]

use hashgate_worker::multipart::{self, Dialect};
use hashgate_worker::upload::{find_images, plan, UploadPlan, MAX_IMAGES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"multipart/form-data; boundary=b"[..], data),
    };
    let content_type = String::from_utf8_lossy(content_type);
    assert!(matches!(plan(true, Some(&content_type), None), UploadPlan::Read(_)));

    if multipart::is_multipart(&content_type) {
        if let Ok(boundaries) = multipart::boundaries(&content_type) {
            assert!(!boundaries.is_empty() && boundaries.len() <= multipart::MAX_BOUNDARIES);
            let range = body.as_ptr_range();
            for boundary in &boundaries {
                for dialect in [Dialect::Strict, Dialect::Multer, Dialect::Werkzeug, Dialect::Loose] {
                    let reading = multipart::read(body, boundary, dialect);
                    assert!(reading.parts.len() <= multipart::MAX_PARTS + 1);
                    for part in &reading.parts {
                        let slice = part.body.as_ptr_range();
                        assert!(range.start <= slice.start && slice.end <= range.end, "a part is a slice of the body");
                    }
                }
            }
        }
    }
    let findings = find_images(Some(&content_type), body);
    assert!(findings.images.len() <= MAX_IMAGES);
});
