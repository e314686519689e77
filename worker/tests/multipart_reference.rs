//! Property: whenever a reference parser (multer, `reference/multer.rs`)
//! extracts a part holding an image from an upload, the worker's upload
//! reader checks exactly those bytes, or refuses the body (fail mode).
//!
//! Bodies are generated from the pieces parsers disagree on: boundary
//! parameters (duplicated, quoted, cased, RFC 2231), CRLF, LF or CR line
//! ends, transport padding, header case and folding, parts with and without
//! file names and types, a missing close delimiter, and random byte edits.
//! The same property runs under cargo-fuzz (`fuzz/fuzz_targets/
//! multipart_reference.rs`) on nightly; this test keeps it in
//! `cargo test -p hashgate-worker` on stable.

#[path = "reference/multer.rs"]
mod reference;

use hashgate_worker::sniff::{inspect_upload, Inspect};
use hashgate_worker::upload::{find_images, sniffs_as_image};
use proptest::prelude::*;

const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00";

/// Whether an origin would treat a field as an image the worker must see.
fn holds_image(field: &reference::Field) -> bool {
    sniffs_as_image(&field.bytes)
        || matches!(inspect_upload(field.content_type.as_deref()), Inspect::Read)
}

/// Checks the property for one body; `Err` describes a counterexample.
pub fn check(content_type: &str, body: &[u8]) -> Result<(), String> {
    let findings = find_images(Some(content_type), body);
    if findings.unreadable.is_some() {
        return Ok(());
    }
    for field in reference::fields(content_type, body) {
        if holds_image(&field) && !findings.images.iter().any(|i| *i.bytes == field.bytes[..]) {
            return Err(format!(
                "multer extracts {} bytes ({:?}) the worker does not check",
                field.bytes.len(),
                field.content_type
            ));
        }
    }
    Ok(())
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("multipart/form-data; boundary=b".to_owned()),
        Just("multipart/form-data; boundary=\"b\"".to_owned()),
        Just("multipart/form-data; BOUNDARY=b".to_owned()),
        Just("multipart/form-data; boundary=decoy; boundary=b".to_owned()),
        Just("multipart/form-data; boundary=b; boundary=decoy".to_owned()),
        Just("multipart/form-data; boundary=\"decoy\"; boundary=b".to_owned()),
        Just("multipart/form-data; boundary=decoy; boundary*=utf-8''b".to_owned()),
        Just("multipart/form-data; boundary*0=b".to_owned()),
        Just("multipart/form-data; charset=utf-8; boundary = b".to_owned()),
        Just("multipart/mixed; boundary=b".to_owned()),
    ]
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("\r\n"), 1 => Just("\n"), 1 => Just("\r")]
}

fn part() -> impl Strategy<Value = Vec<u8>> {
    (
        line_end(),
        prop_oneof![Just(""), Just(" "), Just("\t"), Just("\x0b")],
        prop_oneof![
            Just("Content-Disposition: form-data; name=\"f\"; filename=\"a.jpg\""),
            Just("content-disposition: form-data; name=\"t\""),
            Just("CONTENT-DISPOSITION: form-data;\r\n name=\"f\";\r\n\tfilename=\"a.jpg\""),
            Just(""),
        ],
        prop_oneof![Just(None), Just(Some("image/jpeg")), Just(Some("text/plain")), Just(Some("application/octet-stream"))],
        prop_oneof![
            Just(JPEG.to_vec()),
            Just(b"hello".to_vec()),
            Just(b"text\n--b\nContent-Disposition: form-data; name=\"g\"; filename=\"x.jpg\"\n\n\xff\xd8\xff\xe0".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..24),
        ],
        prop_oneof![Just("b"), Just("decoy")],
    )
        .prop_map(|(nl, pad, disposition, ctype, data, boundary)| {
            let mut out = format!("--{boundary}{pad}{nl}").into_bytes();
            if !disposition.is_empty() {
                out.extend_from_slice(format!("{disposition}{nl}").as_bytes());
            }
            if let Some(t) = ctype {
                out.extend_from_slice(format!("Content-Type: {t}{nl}").as_bytes());
            }
            out.extend_from_slice(nl.as_bytes());
            out.extend_from_slice(&data);
            out.extend_from_slice(nl.as_bytes());
            out
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![
            Just(&b""[..]),
            Just(&b"preamble\r\n"[..]),
            Just(&b"pre"[..])
        ],
        proptest::collection::vec(part(), 0..4),
        prop_oneof![
            Just(&b"--b--\r\n"[..]),
            Just(&b"--b--"[..]),
            Just(&b""[..]),
            Just(&b"--decoy--\r\n"[..]),
            Just(&b"--b  --"[..])
        ],
        proptest::collection::vec(
            (any::<prop::sample::Index>(), any::<u8>(), any::<bool>()),
            0..3,
        ),
    )
        .prop_map(|(preamble, parts, close, edits)| {
            let mut out = preamble.to_vec();
            for p in parts {
                out.extend_from_slice(&p);
            }
            out.extend_from_slice(close);
            for (at, byte, insert) in edits {
                if out.is_empty() {
                    break;
                }
                let i = at.index(out.len());
                if insert {
                    out.insert(i, byte);
                } else {
                    out.remove(i);
                }
            }
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn what_the_reference_extracts_is_checked(ct in content_type(), body in body()) {
        if let Err(problem) = check(&ct, &body) {
            prop_assert!(false, "{problem}\ncontent type: {ct}\nbody: {:?}", String::from_utf8_lossy(&body));
        }
    }
}

/// Inputs the fuzz target found, replayed (input: `Content-Type`, NUL, body).
#[test]
fn fuzz_regressions_hold() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/regressions/multipart_reference");
    let entries = std::fs::read_dir(&dir).expect("fixtures/regressions/multipart_reference");
    let mut replayed = 0;
    for entry in entries.filter_map(Result::ok) {
        let data = std::fs::read(entry.path()).expect("readable");
        let at = data
            .iter()
            .position(|&b| b == 0)
            .expect("a NUL after the Content-Type");
        let content_type = String::from_utf8_lossy(&data[..at]);
        if let Err(problem) = check(&content_type, &data[at + 1..]) {
            panic!("{}: {problem}", entry.path().display());
        }
        replayed += 1;
    }
    assert!(replayed > 0);
}

#[test]
fn the_reference_extracts_files_from_a_plain_form() {
    let body = [
        b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".as_slice(),
        JPEG,
        b"\r\n--b--\r\n",
    ]
    .concat();
    let fields = reference::fields("multipart/form-data; boundary=b", &body);
    assert_eq!(fields.len(), 1);
    assert_eq!(fields[0].bytes, JPEG);
    assert!(check("multipart/form-data; boundary=b", &body).is_ok());
}
