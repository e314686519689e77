//! Finding the images in an upload, before it reaches the origin.
//!
//! A `PUT` or `POST` on a route that scans uploads is either a raw body (the
//! file itself, as with presigned-URL style uploads) or a
//! `multipart/form-data` form (browsers). For a raw body the usual
//! [`crate::sniff`] rules decide whether to read it; a form is read whole
//! (under the cap) and every part that is an image, by its bytes or its
//! declared type, is checked. One listed image refuses the whole request.

use crate::multipart::{self, MultipartError};
use crate::sniff::{self, Inspect, SkipReason};

/// How to look at a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPlan {
    /// Not an upload (other methods), or nothing to check.
    Skip(SkipReason),
    /// A raw body: read or peek it like a response.
    Raw(Inspect),
    /// A form: read it whole and check its image parts.
    Multipart { boundary: String },
    /// A multipart body whose boundary cannot be read: it cannot be checked.
    BadMultipart(MultipartError),
}

/// Decides from the method and `Content-Type` how to check a request body.
pub fn plan(method: &str, content_type: Option<&str>) -> UploadPlan {
    if !(method.eq_ignore_ascii_case("PUT") || method.eq_ignore_ascii_case("POST")) {
        return UploadPlan::Skip(SkipReason::NoBody);
    }
    match content_type {
        Some(ct) if multipart::is_multipart(ct) => match multipart::boundary(ct) {
            Ok(boundary) => UploadPlan::Multipart { boundary },
            Err(e) => UploadPlan::BadMultipart(e),
        },
        other => UploadPlan::Raw(sniff::inspect_upload(other)),
    }
}

/// One image found in a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormImage<'a> {
    pub field: Option<String>,
    pub filename: Option<String>,
    pub bytes: &'a [u8],
}

/// The parts of a form that are images: by magic bytes, or declared as a
/// raster image type (a declared image that does not decode is then a
/// scan failure, not a pass).
pub fn images_in_form<'a>(
    body: &'a [u8],
    boundary: &str,
) -> Result<Vec<FormImage<'a>>, MultipartError> {
    let parts = multipart::parse(body, boundary)?;
    Ok(parts
        .into_iter()
        .filter(|part| {
            sniff::sniff(part.body).is_some()
                || matches!(
                    sniff::inspect_upload(part.content_type.as_deref()),
                    Inspect::Read
                )
        })
        .map(|part| FormImage {
            field: part.name,
            filename: part.filename,
            bytes: part.body,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(
            plan("GET", Some("image/jpeg")),
            UploadPlan::Skip(SkipReason::NoBody)
        );
        assert_eq!(
            plan("put", Some("image/jpeg")),
            UploadPlan::Raw(Inspect::Read)
        );
        assert_eq!(plan("POST", None), UploadPlan::Raw(Inspect::Peek));
        assert_eq!(
            plan("POST", Some("application/json")),
            UploadPlan::Raw(Inspect::Peek)
        );
        assert_eq!(
            plan("POST", Some("multipart/form-data; boundary=abc")),
            UploadPlan::Multipart {
                boundary: "abc".into()
            }
        );
        assert_eq!(
            plan("POST", Some("multipart/form-data")),
            UploadPlan::BadMultipart(MultipartError::NoBoundary)
        );
    }

    #[test]
    fn finds_images_by_bytes_or_declared_type() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\ntext\r\n\
--b\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\xff\xd8\xff\xe0jpeg\r\n\
--b\r\nContent-Disposition: form-data; name=\"c\"; filename=\"y.png\"\r\nContent-Type: image/png\r\n\r\nnot really\r\n\
--b\r\nContent-Disposition: form-data; name=\"d\"; filename=\"z.svg\"\r\nContent-Type: image/svg+xml\r\n\r\n<svg/>\r\n--b--";
        let images = images_in_form(body, "b").unwrap();
        let fields: Vec<_> = images
            .iter()
            .map(|i| i.field.as_deref().unwrap_or(""))
            .collect();
        // An SVG is read too, for the rasters it may embed.
        assert_eq!(fields, ["a", "c", "d"]);
        assert_eq!(images[0].bytes, b"\xff\xd8\xff\xe0jpeg");
        assert_eq!(images[1].filename.as_deref(), Some("y.png"));
    }
}
