//! Which bodies to look at, from their headers, and what they are, from
//! their first bytes.
//!
//! `Content-Type` is a claim by whoever uploaded or serves the file, so it
//! only decides how much work to do, never whether an image escapes: a
//! declared image is read in full; anything else that could be an image is
//! *peeked* (its first bytes read through a tee, the original streaming on
//! untouched) and read in full only if the magic bytes say image. Bodies
//! that cannot carry a whole image (redirects, errors, partial ranges, HEAD)
//! are never touched.
//!
//! SVG is read like any image: its embedded raster images are hashed
//! (hashgate does not render vectors, so one with none passes unreported).
//! Images the hasher recognises but cannot decode (AVIF, HEIF, JPEG XL)
//! are images all the same: the route's `undecodable` option decides.

use hashgate::ImageFormat;

/// Bytes needed to recognise every format the hasher knows: the raster
/// formats need 12, an SVG's root element may follow an XML declaration,
/// comments and a doctype.
pub const SNIFF_BYTES: usize = hashgate::decode::sniff::SVG_SNIFF_LEN;

/// What to do with a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// Declared as a raster image: read it (under the cap) and hash it.
    Read,
    /// Type missing, generic or not an image: look at the first bytes and
    /// read on only if they are an image.
    Peek,
    /// Leave it alone.
    Skip(SkipReason),
}

/// Why a body is not inspected (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Not a 200 (or a 206 carrying the whole file): redirects, errors,
    /// partial content, not-modified have no whole image to check.
    Status,
    /// A stream that must not wait for bytes (server-sent events).
    Streaming,
    /// No body (HEAD, or a method without one).
    NoBody,
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn media_type(content_type: Option<&str>) -> Option<String> {
    let value = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    (!value.is_empty()).then_some(value)
}

/// Decides from a response's status and headers whether to inspect it.
/// `content_range` is the `Content-Range` header of a 206: a range that is
/// the whole file (`bytes 0-N/N+1`) is as good as a 200 and is checked, so
/// `Range: bytes=0-` does not slip an image past.
pub fn inspect_response(
    status: u16,
    content_type: Option<&str>,
    content_range: Option<&str>,
) -> Inspect {
    let whole = match status {
        200 => true,
        206 => content_range.is_some_and(is_whole_range),
        _ => false,
    };
    if !whole {
        return Inspect::Skip(SkipReason::Status);
    }
    by_type(content_type)
}

/// Decides from an upload's content type how to inspect it (multipart is
/// handled by the caller before this).
pub fn inspect_upload(content_type: Option<&str>) -> Inspect {
    by_type(content_type)
}

fn by_type(content_type: Option<&str>) -> Inspect {
    match media_type(content_type).as_deref() {
        Some("text/event-stream") => Inspect::Skip(SkipReason::Streaming),
        Some(t) if t.starts_with("image/") => Inspect::Read,
        _ => Inspect::Peek,
    }
}

/// `bytes 0-(n-1)/n`: a 206 that holds the whole representation.
fn is_whole_range(value: &str) -> bool {
    let Some(rest) = value.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((range, total)) = rest.split_once('/') else {
        return false;
    };
    let Some((start, end)) = range.split_once('-') else {
        return false;
    };
    match (
        start.trim().parse::<u64>(),
        end.trim().parse::<u64>(),
        total.trim().parse::<u64>(),
    ) {
        (Ok(0), Ok(end), Ok(total)) => end.checked_add(1) == Some(total),
        _ => false,
    }
}

/// The image format of a body, from its first bytes.
pub fn sniff(prefix: &[u8]) -> Option<ImageFormat> {
    hashgate::sniff(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_images_are_read() {
        assert_eq!(
            inspect_response(200, Some("image/jpeg"), None),
            Inspect::Read
        );
        assert_eq!(
            inspect_response(200, Some("IMAGE/PNG; q=1"), None),
            Inspect::Read
        );
        assert_eq!(
            inspect_response(200, Some("image/avif"), None),
            Inspect::Read
        );
        // SVG may wrap a raster image: read, for its embedded images.
        assert_eq!(
            inspect_response(200, Some("image/svg+xml"), None),
            Inspect::Read
        );
    }

    #[test]
    fn missing_generic_and_other_types_are_peeked() {
        assert_eq!(inspect_response(200, None, None), Inspect::Peek);
        assert_eq!(inspect_response(200, Some(""), None), Inspect::Peek);
        assert_eq!(
            inspect_response(200, Some("application/octet-stream"), None),
            Inspect::Peek
        );
        assert_eq!(
            inspect_response(200, Some("text/plain"), None),
            Inspect::Peek
        );
        assert_eq!(
            inspect_response(200, Some("text/event-stream"), None),
            Inspect::Skip(SkipReason::Streaming)
        );
    }

    #[test]
    fn only_whole_bodies_are_inspected() {
        for status in [201, 204, 301, 302, 304, 404, 500, 503] {
            assert_eq!(
                inspect_response(status, Some("image/jpeg"), None),
                Inspect::Skip(SkipReason::Status)
            );
        }
        assert_eq!(
            inspect_response(206, Some("image/jpeg"), Some("bytes 0-99/1000")),
            Inspect::Skip(SkipReason::Status)
        );
        assert_eq!(
            inspect_response(206, Some("image/jpeg"), Some("bytes 100-999/1000")),
            Inspect::Skip(SkipReason::Status)
        );
        assert_eq!(
            inspect_response(206, Some("image/jpeg"), Some("bytes 0-999/1000")),
            Inspect::Read
        );
        assert_eq!(
            inspect_response(206, Some("image/jpeg"), Some("bytes 0-999/*")),
            Inspect::Skip(SkipReason::Status)
        );
        assert_eq!(
            inspect_response(206, Some("image/jpeg"), None),
            Inspect::Skip(SkipReason::Status)
        );
    }

    #[test]
    fn media_type_strips_parameters() {
        assert_eq!(
            media_type(Some(" Text/HTML ; charset=utf-8")).as_deref(),
            Some("text/html")
        );
        assert_eq!(media_type(Some(";")), None);
        assert_eq!(media_type(None), None);
    }
}
