//! Finding the images in an upload, before it reaches the origin.
//!
//! Any request with a body, whatever its method (`PUT`, `POST`, `PATCH`,
//! `DELETE`...), on a route that scans uploads is looked at. The rule: every
//! image some origin could extract from the body is checked, or the body is
//! refused through the route's fail mode; an upload is never passed as
//! clean because the worker read it differently from the origin.
//!
//! * [`plan`]: from the headers, whether to read the body whole (a declared
//!   image, any form, JSON, text, SVG, any `Content-Encoding`) or to peek at
//!   its first bytes and read on only if they are an image or text
//!   ([`worth_reading`]); binary non-image bodies (video, archives) stream
//!   through untouched.
//! * [`crate::encoding`]: a compressed body is decoded (under the cap)
//!   before anything else.
//! * [`find_images`]: the candidates to check, deduplicated:
//!   - the body itself, when it is an image by its bytes or declared type;
//!   - for `multipart/*`, every part of every reading in [`crate::multipart`]
//!     (each boundary candidate, four dialects) whose bytes are an image, or
//!     that declares a raster image type in an exact (not loose) reading
//!     (such a part that does not decode is a failure, not a pass); parts
//!     with `Content-Transfer-Encoding: base64` or `quoted-printable` are
//!     decoded; nested `multipart/*` parts are read the same way, up to
//!     [`MAX_DEPTH`] deep;
//!   - images embedded as text ([`crate::embedded`]): `data:` URIs and
//!     base64 strings in a text body (declared JSON, urlencoded, text, XML,
//!     or starting as UTF-8 text) and in every text part of a form. Binary
//!     bodies and parts are not searched for text (no copies of them).
//!
//! A form that no reading can complete (no boundary, no closing delimiter)
//! is reported as unreadable *after* its candidates are found, so a listed
//! image in it is still refused with 451, and anything else gets the fail
//! mode. More than [`MAX_IMAGES`] candidates is unreadable too.

use std::borrow::Cow;
use std::collections::HashSet;

use thiserror::Error;

use crate::embedded;
use crate::multipart::{self, Dialect, MultipartError, Part};
use crate::sniff::{self, Inspect, SkipReason};

/// At most this many images are checked in one upload; more is a failure.
pub const MAX_IMAGES: usize = 64;
/// How deep `multipart/*` parts inside parts are read.
pub const MAX_DEPTH: usize = 3;

/// How to look at a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPlan {
    /// No body: nothing to check.
    Skip(SkipReason),
    /// Read the body whole ([`Inspect::Read`]) or peek first
    /// ([`Inspect::Peek`], reading on when [`worth_reading`]).
    Read(Inspect),
}

/// Decides from the request's headers how to check its body.
pub fn plan(
    has_body: bool,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> UploadPlan {
    if !has_body {
        return UploadPlan::Skip(SkipReason::NoBody);
    }
    if !crate::encoding::is_identity(content_encoding) {
        return UploadPlan::Read(Inspect::Read);
    }
    let whole = match sniff::media_type(content_type).as_deref() {
        Some(t) => {
            t.starts_with("multipart/")
                || t.starts_with("image/")
                || t.starts_with("text/")
                || t == "application/json"
                || t.ends_with("+json")
                || t == "application/x-www-form-urlencoded"
        }
        None => false,
    };
    UploadPlan::Read(if whole { Inspect::Read } else { Inspect::Peek })
}

/// Whether a peeked body is worth reading whole: an image, or text (which
/// may embed one, or be a form sent without its type).
pub fn worth_reading(prefix: &[u8]) -> bool {
    sniffs_as_image(prefix) || is_text(prefix)
}

/// A type whose body is text an application may parse (JSON, forms,
/// text, SVG and other XML).
fn declared_text(content_type: Option<&str>) -> bool {
    sniff::media_type(content_type).is_some_and(|t| {
        t.starts_with("text/")
            || t.ends_with("json")
            || t.ends_with("xml")
            || t == "application/x-www-form-urlencoded"
    })
}

/// The first bytes are UTF-8 text without control characters other than
/// tab, line ends and form feed.
fn is_text(prefix: &[u8]) -> bool {
    let prefix = &prefix[..prefix.len().min(64)];
    if prefix.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(prefix) {
        Ok(s) => s,
        // A character cut by the end of the prefix is fine.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&prefix[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !valid.is_empty()
        && valid
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// Whether bytes start like an image the hasher decodes. A BMP must also
/// have a plausible header, since "BM" starts plenty of text.
pub fn sniffs_as_image(bytes: &[u8]) -> bool {
    match sniff::sniff(bytes) {
        Some(hashgate::ImageFormat::Bmp) => {
            let reserved_zero = bytes.get(6..10) == Some(&[0, 0, 0, 0][..]);
            let dib = bytes
                .get(14..18)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            reserved_zero && matches!(dib, Some(12 | 16 | 40 | 52 | 56 | 64 | 108 | 124))
        }
        Some(_) => true,
        None => false,
    }
}

/// One image found in an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormImage<'a> {
    pub field: Option<String>,
    pub filename: Option<String>,
    pub bytes: Cow<'a, [u8]>,
}

/// Why an upload could not be read in full.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum UploadError {
    #[error(transparent)]
    Multipart(#[from] MultipartError),
    #[error("more than {MAX_IMAGES} images in one upload")]
    TooManyImages,
}

/// What [`find_images`] found.
#[derive(Debug, Default)]
pub struct Findings<'a> {
    /// Every candidate, in the order found.
    pub images: Vec<FormImage<'a>>,
    /// Why the body could not be read in full, if so: after checking
    /// `images`, the route's fail mode applies.
    pub unreadable: Option<UploadError>,
}

/// The images to check in a (decoded) upload body.
pub fn find_images<'a>(content_type: Option<&str>, body: &'a [u8]) -> Findings<'a> {
    let mut found = Collector::default();
    let whole_is_image = sniffs_as_image(body);
    match content_type.filter(|ct| multipart::is_multipart(ct)) {
        Some(ct) => match multipart::boundaries(ct) {
            Ok(mut candidates) => {
                if let Some(b) = multipart::boundary_from_body(body) {
                    if !candidates.contains(&b) && candidates.len() < multipart::MAX_BOUNDARIES {
                        candidates.push(b);
                    }
                }
                if let Err(e) = found.form(body, &candidates, 0) {
                    found.fail(e.into());
                }
            }
            Err(e) => found.fail(e.into()),
        },
        None => {
            if whole_is_image || matches!(sniff::inspect_upload(content_type), Inspect::Read) {
                found.push(None, None, Cow::Borrowed(body));
            } else if let Some(b) = multipart::boundary_from_body(body) {
                // A form sent without its type: what parts it has.
                let _ = found.form(body, &[b], 0);
            }
        }
    }
    let multipart = content_type.is_some_and(multipart::is_multipart);
    if !multipart && !whole_is_image && (declared_text(content_type) || is_text(body)) {
        for image in embedded::images_in_text(body) {
            found.push(None, None, Cow::Owned(image));
        }
    }
    if found.findings.images.len() > MAX_IMAGES {
        found.findings.images.truncate(MAX_IMAGES);
        found.fail(UploadError::TooManyImages);
    }
    found.findings
}

/// A part's identity across readings: where its body is, how long, whether
/// the reading is exact, and its headers.
type PartKey = (usize, usize, bool, Vec<(String, String)>);

#[derive(Default)]
struct Collector<'a> {
    findings: Findings<'a>,
    /// Parts already looked at (body position, length, headers): readings
    /// that agree on a part do not decode or descend into it again.
    seen: HashSet<PartKey>,
}

impl<'a> Collector<'a> {
    fn fail(&mut self, error: UploadError) {
        self.findings.unreadable.get_or_insert(error);
    }

    fn push(&mut self, field: Option<String>, filename: Option<String>, bytes: Cow<'a, [u8]>) {
        let seen = self
            .findings
            .images
            .iter()
            .any(|i| match (&i.bytes, &bytes) {
                (Cow::Borrowed(a), Cow::Borrowed(b)) => a.as_ptr_range() == b.as_ptr_range(),
                (a, b) => a.len() == b.len() && a == b,
            });
        if !seen && self.findings.images.len() <= MAX_IMAGES {
            self.findings.images.push(FormImage {
                field,
                filename,
                bytes,
            });
        }
    }

    /// Every reading of a form; `Ok` if one of them is complete.
    fn form(
        &mut self,
        body: &'a [u8],
        boundaries: &[String],
        depth: usize,
    ) -> Result<(), MultipartError> {
        let mut complete = false;
        let mut first_error = None;
        for boundary in boundaries {
            for dialect in [
                Dialect::Strict,
                Dialect::Multer,
                Dialect::Werkzeug,
                Dialect::Loose,
            ] {
                let reading = multipart::read(body, boundary, dialect);
                let exact = dialect != Dialect::Loose;
                if exact {
                    match reading.complete {
                        Ok(()) => complete = true,
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                for part in reading.parts {
                    self.part(part, exact, depth);
                }
            }
        }
        match (complete, first_error) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(e),
            (false, None) => Err(MultipartError::NoOpeningDelimiter),
        }
    }

    /// The candidates in one part. `exact`: the reading is one an origin
    /// makes, so a declared raster image must be checked even if its bytes
    /// do not look like one.
    fn part(&mut self, part: Part<'a>, exact: bool, depth: usize) {
        let key = (
            part.body.as_ptr() as usize,
            part.body.len(),
            exact,
            part.headers.clone(),
        );
        if !self.seen.insert(key) {
            return;
        }
        let declared_image = exact
            && part
                .header_values("content-type")
                .any(|t| matches!(sniff::inspect_upload(Some(t)), Inspect::Read));
        let encodings: Vec<String> = part
            .header_values("content-transfer-encoding")
            .map(|e| e.to_ascii_lowercase())
            .collect();
        let mut decoded = Vec::new();
        for encoding in &encodings {
            match encoding.as_str() {
                "base64" => decoded.push(embedded::base64_decode_lenient(part.body)),
                "quoted-printable" => decoded.push(embedded::quoted_printable_decode(part.body)),
                _ => {}
            }
        }
        // Quoted-printable is easy to spot even undeclared: `=FF=D8...`.
        if part.body.first() == Some(&b'=') {
            decoded.push(embedded::quoted_printable_decode(part.body));
        }
        let field = || part.name.clone();
        let filename = || part.filename.clone();
        let transfer_decoded = encodings
            .iter()
            .any(|e| e == "base64" || e == "quoted-printable");
        if sniffs_as_image(part.body) || (declared_image && !transfer_decoded) {
            self.push(field(), filename(), Cow::Borrowed(part.body));
        }
        for bytes in decoded {
            if sniffs_as_image(&bytes) || (declared_image && transfer_decoded) {
                self.push(field(), filename(), Cow::Owned(bytes));
            }
        }
        // Images as text in a text part (a base64 or data: field).
        if !sniffs_as_image(part.body) && is_text(part.body) {
            for image in embedded::images_in_text(part.body) {
                self.push(field(), filename(), Cow::Owned(image));
            }
        }
        // Nested forms (`multipart/mixed` inside `multipart/form-data`).
        let nested: Vec<String> = part
            .header_values("content-type")
            .filter(|t| multipart::is_multipart(t))
            .filter_map(|t| multipart::boundaries(t).ok())
            .flatten()
            .collect();
        if !nested.is_empty() {
            if depth + 1 > MAX_DEPTH {
                self.fail(MultipartError::TooDeep(MAX_DEPTH).into());
            } else {
                // Only what the nested parts hold counts; whether they
                // close is the nested reader's business.
                let _ = self.form(part.body, &nested, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00jpeg";

    fn bytes<'a>(f: &'a Findings) -> Vec<&'a [u8]> {
        f.images.iter().map(|i| &*i.bytes).collect()
    }

    #[test]
    fn plans() {
        assert_eq!(
            plan(false, Some("image/jpeg"), None),
            UploadPlan::Skip(SkipReason::NoBody)
        );
        assert_eq!(
            plan(true, Some("image/jpeg"), None),
            UploadPlan::Read(Inspect::Read)
        );
        assert_eq!(plan(true, None, None), UploadPlan::Read(Inspect::Peek));
        assert_eq!(
            plan(true, Some("application/octet-stream"), None),
            UploadPlan::Read(Inspect::Peek)
        );
        for whole in [
            "application/json",
            "application/ld+json; charset=utf-8",
            "application/x-www-form-urlencoded",
            "text/plain",
            "image/svg+xml",
            "multipart/form-data; boundary=abc",
            "multipart/form-data",
        ] {
            assert_eq!(
                plan(true, Some(whole), None),
                UploadPlan::Read(Inspect::Read),
                "{whole}"
            );
        }
        assert_eq!(
            plan(true, None, Some("gzip")),
            UploadPlan::Read(Inspect::Read)
        );
        assert_eq!(
            plan(true, None, Some("identity")),
            UploadPlan::Read(Inspect::Peek)
        );
    }

    #[test]
    fn peeks_read_on_for_images_and_text() {
        assert!(worth_reading(JPEG));
        assert!(worth_reading(b"{\"photo\": \"data:image/png;base64,"));
        assert!(worth_reading("{\"name\": \"M\u{fc}ller\"".as_bytes()));
        assert!(worth_reading(b"--boundary\r\nContent-Disposition"));
        assert!(!worth_reading(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"));
        assert!(!worth_reading(b"PK\x03\x04\x14\x00\x00\x00"));
        assert!(!worth_reading(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"));
        assert!(!worth_reading(b""));
    }

    #[test]
    fn bmp_needs_a_header() {
        assert!(!sniffs_as_image(b"BMW 3 series, sold in 2019"));
        let bmp = b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0";
        assert!(sniffs_as_image(bmp));
    }

    #[test]
    fn finds_images_by_bytes_or_declared_type() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\ntext\r\n\
--b\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\xff\xd8\xff\xe0jpeg\r\n\
--b\r\nContent-Disposition: form-data; name=\"c\"; filename=\"y.png\"\r\nContent-Type: image/png\r\n\r\nnot really\r\n\
--b\r\nContent-Disposition: form-data; name=\"d\"; filename=\"z.svg\"\r\nContent-Type: image/svg+xml\r\n\r\n<svg/>\r\n--b--";
        let found = find_images(Some("multipart/form-data; boundary=b"), body);
        assert_eq!(found.unreadable, None);
        let fields: Vec<_> = found
            .images
            .iter()
            .map(|i| i.field.as_deref().unwrap_or(""))
            .collect();
        // An SVG is read too, for the rasters it may embed.
        assert_eq!(fields, ["a", "c", "d"]);
        assert_eq!(&*found.images[0].bytes, b"\xff\xd8\xff\xe0jpeg");
        assert_eq!(found.images[1].filename.as_deref(), Some("y.png"));
    }

    #[test]
    fn ambiguous_forms_yield_every_reading() {
        // Two boundaries: the image is only in the form of the second.
        let body = [
            b"--second\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\r\n\r\n"
                .as_slice(),
            JPEG,
            b"\r\n--second--\r\n",
        ]
        .concat();
        let found = find_images(
            Some("multipart/form-data; boundary=first; boundary=second"),
            &body,
        );
        assert_eq!(found.unreadable, None);
        assert_eq!(bytes(&found), [JPEG]);
        // A file part behind bare LF line ends inside a text part.
        let body = [b"--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\n--b\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\n\n".as_slice(), JPEG, b"\n--b--\r\n"].concat();
        let found = find_images(Some("multipart/form-data; boundary=b"), &body);
        assert_eq!(bytes(&found), [JPEG]);
        // No closing delimiter: the image is still a candidate, and the
        // body is unreadable.
        let body = [
            b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".as_slice(),
            JPEG,
        ]
        .concat();
        let found = find_images(Some("multipart/form-data; boundary=b"), &body);
        assert_eq!(bytes(&found), [JPEG]);
        assert_eq!(
            found.unreadable,
            Some(UploadError::Multipart(MultipartError::Unterminated(0)))
        );
    }

    #[test]
    fn transfer_encodings_and_nesting() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(JPEG);
        let qp: String = JPEG.iter().map(|b| format!("={b:02X}")).collect();
        let body = format!(
            "--b\r\nContent-Disposition: form-data; name=\"x\"\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: BASE64\r\n\r\n{b64}\r\n\
--b\r\nContent-Disposition: form-data; name=\"y\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{qp}=\r\n\r\n--b--"
        );
        let found = find_images(Some("multipart/form-data; boundary=b"), body.as_bytes());
        assert_eq!(found.unreadable, None);
        assert_eq!(bytes(&found), [JPEG], "both decode to the same image");
        let inner = [
            b"--inner\r\nContent-Disposition: file; filename=\"a.jpg\"\r\n\r\n".as_slice(),
            JPEG,
            b"\r\n--inner--",
        ]
        .concat();
        let body = [b"--outer\r\nContent-Disposition: form-data; name=\"files\"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n".as_slice(), &inner, b"\r\n--outer--\r\n"].concat();
        let found = find_images(Some("multipart/form-data; boundary=outer"), &body);
        assert_eq!(found.unreadable, None);
        assert_eq!(bytes(&found), [JPEG]);
    }

    #[test]
    fn raw_and_text_bodies() {
        let found = find_images(Some("application/octet-stream"), JPEG);
        assert_eq!(bytes(&found), [JPEG]);
        let found = find_images(Some("image/png"), b"not an image");
        assert_eq!(
            bytes(&found),
            [b"not an image"],
            "declared images are checked"
        );
        use base64::Engine;
        let json = format!(
            "{{\"p\":\"data:image/jpeg;base64,{}\"}}",
            base64::engine::general_purpose::STANDARD.encode(JPEG)
        );
        let found = find_images(Some("application/json"), json.as_bytes());
        assert_eq!(found.images.len(), 1);
        assert_eq!(&*found.images[0].bytes, JPEG);
        let found = find_images(Some("application/json"), b"{\"hello\": \"world\"}");
        assert!(found.images.is_empty() && found.unreadable.is_none());
        let found = find_images(Some("multipart/form-data"), b"--x\r\n\r\n\r\n--x--");
        assert_eq!(
            found.unreadable,
            Some(UploadError::Multipart(MultipartError::NoBoundary))
        );
    }
}
