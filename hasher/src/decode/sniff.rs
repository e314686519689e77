//! Which image format a byte string is, from its first bytes.
//!
//! Content-Type headers lie (missing, generic `application/octet-stream`,
//! or simply wrong), so the worker, the scanner and the decoder all decide
//! by magic numbers instead. Formats that cannot be decoded here (AVIF,
//! HEIF, JPEG XL) are still recognised, so that a caller can tell "an image
//! we cannot read" (a policy decision) from "not an image" (nothing to do).

use serde::Serialize;

/// The image formats hashgate recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    WebP,
    Bmp,
    Ico,
    Tiff,
    /// SVG: not rendered; the raster images embedded in it as `data:` URIs
    /// are hashed.
    Svg,
    /// AVIF (AV1 in HEIF): recognised, not decoded.
    Avif,
    /// HEIF/HEIC (HEVC in HEIF): recognised, not decoded.
    Heif,
    /// JPEG XL: recognised, not decoded.
    Jxl,
}

impl ImageFormat {
    /// Lowercase name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::WebP => "webp",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Ico => "ico",
            ImageFormat::Tiff => "tiff",
            ImageFormat::Svg => "svg",
            ImageFormat::Avif => "avif",
            ImageFormat::Heif => "heif",
            ImageFormat::Jxl => "jxl",
        }
    }

    /// Whether hashgate can decode (or, for SVG, look into) this format.
    /// The others are images all the same: a caller decides by policy what
    /// to do with one it cannot check.
    pub fn is_decodable(self) -> bool {
        !matches!(
            self,
            ImageFormat::Avif | ImageFormat::Heif | ImageFormat::Jxl
        )
    }
}

/// How many leading bytes [`sniff`] needs for every raster format.
pub const SNIFF_LEN: usize = 12;

/// How many leading bytes [`sniff`] looks into to find an SVG's root
/// element behind an XML declaration, comments and a doctype. A caller
/// that peeks at a stream should give it this many (or the whole body).
pub const SVG_SNIFF_LEN: usize = 1024;

/// The format of `bytes`, judged by their first bytes (up to
/// [`SVG_SNIFF_LEN`] for SVG, [`SNIFF_LEN`] for the rest), or `None` when
/// they match no image format hashgate knows.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::WebP)
    } else if bytes.len() >= 14 && bytes.starts_with(b"BM") {
        Some(ImageFormat::Bmp)
    } else if bytes.len() >= 6 && bytes.starts_with(&[0, 0, 1, 0]) && bytes[4..6] != [0, 0] {
        // ICONDIR: reserved 0, type 1 (icon), a non-zero image count.
        Some(ImageFormat::Ico)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| bytes.starts_with(*magic))
    {
        // Classic TIFF and BigTIFF, either byte order.
        Some(ImageFormat::Tiff)
    } else if let Some(format) = iso_bmff(bytes) {
        Some(format)
    } else if bytes.starts_with(&[0xFF, 0x0A]) || bytes.starts_with(b"\0\0\0\x0cJXL \r\n\x87\n") {
        Some(ImageFormat::Jxl)
    } else if is_svg(bytes) {
        Some(ImageFormat::Svg)
    } else {
        None
    }
}

/// AVIF and HEIF: an ISO base media file whose `ftyp` box names an image
/// brand as its major brand.
fn iso_bmff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    match &bytes[8..12] {
        b"avif" | b"avis" => Some(ImageFormat::Avif),
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
            Some(ImageFormat::Heif)
        }
        _ => None,
    }
}

/// Whether the document's first element (after a byte-order mark,
/// whitespace, an XML declaration, comments, processing instructions and a
/// doctype, within [`SVG_SNIFF_LEN`] bytes) is `<svg`.
fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(SVG_SNIFF_LEN)];
    let mut rest = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    loop {
        rest = trim_start(rest);
        if rest.starts_with(b"<svg") {
            return rest
                .get(4)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'>' || *c == b'/');
        }
        let end = if rest.starts_with(b"<?") {
            find(rest, b"?>").map(|i| i + 2)
        } else if rest.starts_with(b"<!--") {
            find(rest, b"-->").map(|i| i + 3)
        } else if rest.len() >= 9 && rest[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            let end = find(rest, b">").map(|i| i + 1);
            // A doctype must name svg: an HTML page is not an SVG.
            let doctype = &rest[..end.unwrap_or(rest.len())];
            let names_svg = find(&doctype.to_ascii_lowercase(), b"svg").is_some_and(|i| i > 0);
            if !names_svg {
                return false;
            }
            end
        } else {
            return false;
        };
        match end {
            Some(end) => rest = &rest[end..],
            None => return false,
        }
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &bytes[skip..]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magic_numbers() {
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(ImageFormat::Png)
        );
        assert_eq!(sniff(b"GIF89a\x01\x00"), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageFormat::WebP));
        assert_eq!(
            sniff(b"BM\x36\0\0\0\0\0\0\0\x36\0\0\0"),
            Some(ImageFormat::Bmp)
        );
        assert_eq!(sniff(b"\0\0\x01\0\x01\0\x10\x10"), Some(ImageFormat::Ico));
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(ImageFormat::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(ImageFormat::Tiff));
        assert_eq!(
            sniff(b"\0\0\0\x1cftypavif\0\0\0\0"),
            Some(ImageFormat::Avif)
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypheic\0\0\0\0"),
            Some(ImageFormat::Heif)
        );
        assert_eq!(sniff(&[0xFF, 0x0A, 0xFA]), Some(ImageFormat::Jxl));
    }

    #[test]
    fn recognises_svg_behind_prologue() {
        for svg in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"[..],
            b"\xEF\xBB\xBF  <svg>",
            b"<?xml version=\"1.0\"?>\n<!-- made by hand -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg width=\"1\">",
        ] {
            assert_eq!(sniff(svg), Some(ImageFormat::Svg), "{svg:?}");
        }
        for other in [
            &b"<!doctype html><svg>"[..],
            b"<?xml version=\"1.0\"?><rss>",
            b"<svgx>",
            b"<html><svg></svg></html>",
        ] {
            assert_eq!(sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn undecodable_formats_are_named() {
        assert!(!ImageFormat::Avif.is_decodable());
        assert!(!ImageFormat::Heif.is_decodable());
        assert!(ImageFormat::Tiff.is_decodable());
        assert!(ImageFormat::Svg.is_decodable());
    }

    #[test]
    fn rejects_other_content() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<!doctype html>"), None);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"BM"), None);
        assert_eq!(sniff(&[0xFF, 0xD8]), None);
        assert_eq!(sniff(b"\0\0\x01\0\0\0"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42\0\0\0\0"), None);
    }
}
