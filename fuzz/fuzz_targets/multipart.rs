//! Multipart upload parsing: the `Content-Type` of a `PUT`/`POST`, then the
//! form body, down to the image parts the worker hashes.
//!
//! Uploads come straight from clients, the least trusted input the worker
//! sees. A body the reader refuses makes the route's fail mode apply; one it
//! accepts must hand out every part as a slice of the body.
//!
//! Input: the `Content-Type` value, a NUL byte, then the body.

#![no_main]

use hashgate_worker::multipart;
use hashgate_worker::upload::{images_in_form, plan, UploadPlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"multipart/form-data; boundary=b"[..], data),
    };
    let content_type = String::from_utf8_lossy(content_type);
    let _ = multipart::is_multipart(&content_type);
    let UploadPlan::Multipart { boundary } = plan("POST", Some(&content_type)) else { return };
    assert!(!boundary.is_empty() && boundary.len() <= 70);

    let Ok(parts) = multipart::parse(body, &boundary) else { return };
    assert!(parts.len() <= multipart::MAX_PARTS);
    let range = body.as_ptr_range();
    for part in &parts {
        let slice = part.body.as_ptr_range();
        assert!(range.start <= slice.start && slice.end <= range.end, "a part is a slice of the body");
    }
    let images = images_in_form(body, &boundary).expect("parsed once, parses again");
    assert!(images.len() <= parts.len());
});
