//! SVG: the raster images embedded in it.
//!
//! hashgate does not render vectors. But an SVG is also a common wrapper
//! around a raster: `<image href="data:image/png;base64,...">` shows the
//! PNG, and the SVG's own bytes say nothing about it. This module finds
//! every `data:` URI in the document (in `href`, `xlink:href`, `style`
//! `url(...)`, a `<style>` sheet, anywhere) after decoding XML character
//! references (`&#100;ata:` is `data:` to a browser), decodes it as a
//! browser does (percent-decoding, then forgiving base64 when marked
//! `;base64`), and keeps the payloads whose first bytes are an image,
//! whatever media type the URI claims. The caller hashes each one.
//!
//! Bounds: the output is at most the input's size (a payload is never
//! longer than its URI), at most [`MAX_EMBEDDED`] images are returned, and
//! the caller limits nesting (an SVG inside an SVG) to
//! [`MAX_NESTING`] levels.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::sniff::sniff;

/// Most embedded images taken from one SVG (in document order).
pub const MAX_EMBEDDED: usize = 8;

/// Most levels of SVG inside SVG that are opened.
pub const MAX_NESTING: u32 = 2;

/// What [`embedded_images`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Embedded {
    /// The images' bytes, in document order.
    pub images: Vec<Vec<u8>>,
    /// Whether more images than [`MAX_EMBEDDED`] were there.
    pub truncated: bool,
}

/// The images in `svg`'s `data:` URIs.
pub fn embedded_images(svg: &[u8]) -> Embedded {
    let text = decode_character_references(svg);
    let mut found = Embedded::default();
    let mut at = 0;
    while let Some(start) = find_data_uri(&text, at) {
        let uri_start = start + b"data:".len();
        let (image, end) = data_uri_payload(&text, uri_start);
        at = end.max(uri_start);
        let Some(image) = image else { continue };
        if sniff(&image).is_none() {
            continue;
        }
        if found.images.len() == MAX_EMBEDDED {
            found.truncated = true;
            break;
        }
        found.images.push(image);
    }
    found
}

/// The next `data:` (any case) at or after `from`.
fn find_data_uri(text: &[u8], from: usize) -> Option<usize> {
    text.get(from..)?
        .windows(5)
        .position(|w| w.eq_ignore_ascii_case(b"data:"))
        .map(|i| from + i)
}

/// Decodes the data URI whose media type starts at `start`; the decoded
/// bytes (if it is well formed) and where it ends.
fn data_uri_payload(text: &[u8], start: usize) -> (Option<Vec<u8>>, usize) {
    let is_end = |b: &u8| matches!(b, b'"' | b'\'' | b')' | b'<' | b'>');
    let end = text[start..]
        .iter()
        .position(is_end)
        .map_or(text.len(), |i| start + i);
    let uri = &text[start..end];
    let Some(comma) = uri.iter().position(|b| *b == b',') else {
        return (None, end);
    };
    let header: Vec<u8> = uri[..comma]
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(u8::to_ascii_lowercase)
        .collect();
    let payload = percent_decode(&uri[comma + 1..]);
    if header.ends_with(b";base64") {
        let clean: Vec<u8> = payload
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        (FORGIVING.decode(clean).ok(), end)
    } else {
        (Some(payload), end)
    }
}

/// Base64 as browsers read `data:` URIs: padding optional.
const FORGIVING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Replaces XML character references (`&#100;`, `&#x64;`) and the
/// predefined entities by the ASCII characters they stand for; anything
/// else stays as it is. Never longer than the input.
fn decode_character_references(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'&' {
            let rest = &text[i + 1..];
            if let Some(semi) = rest.iter().take(12).position(|b| *b == b';') {
                let name = &rest[..semi];
                let value: Option<u32> = match name {
                    b"amp" => Some(u32::from(b'&')),
                    b"lt" => Some(u32::from(b'<')),
                    b"gt" => Some(u32::from(b'>')),
                    b"quot" => Some(u32::from(b'"')),
                    b"apos" => Some(u32::from(b'\'')),
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok()),
                    [b'#', dec @ ..] => std::str::from_utf8(dec).ok().and_then(|d| d.parse().ok()),
                    _ => None,
                };
                let value = value.filter(|v| *v < 0x80);
                if let Some(value) = value {
                    out.push(value as u8);
                    i += semi + 2;
                    continue;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_1X1: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\x00\x01\x01\x00\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn finds_images_however_they_are_referenced() {
        let data = b64(PNG_1X1);
        let (head, tail) = data.split_at(10);
        for svg in [
            format!(r#"<svg><image href="data:image/png;base64,{data}"/></svg>"#),
            format!(
                r#"<svg><image xlink:href='DATA:image/PNG;BASE64,{head}
                {tail}'/></svg>"#
            ),
            format!(
                r#"<svg><rect style="fill:url(data:application/octet-stream;base64,{data})"/></svg>"#
            ),
            format!(
                r#"<svg><image href="&#100;ata:image/png;base64,{}"/></svg>"#,
                data.trim_end_matches('=')
            ),
            format!(
                r#"<svg><image href="data:image/png;base64,{}"/></svg>"#,
                data.replace('+', "%2B")
            ),
        ] {
            let found = embedded_images(svg.as_bytes());
            assert_eq!(found.images, vec![PNG_1X1.to_vec()], "{svg}");
        }
    }

    #[test]
    fn percent_encoded_and_nested() {
        let inner = format!(
            r#"<svg><image href="data:image/png;base64,{}"/></svg>"#,
            b64(PNG_1X1)
        );
        let outer = format!(
            r#"<svg><image href="data:image/svg+xml;base64,{}"/><use href="data:image/svg+xml,%3Csvg%3E%3C/svg%3E"/></svg>"#,
            b64(inner.as_bytes())
        );
        let found = embedded_images(outer.as_bytes());
        assert_eq!(found.images.len(), 2);
        assert_eq!(found.images[0], inner.as_bytes());
        assert_eq!(found.images[1], b"<svg></svg>");
    }

    #[test]
    fn ignores_what_is_not_an_image_and_caps_the_count() {
        let text = r#"<svg><a href="data:text/plain,hello"/><image href="data:image/png;base64,!!!"/></svg>"#;
        assert_eq!(embedded_images(text.as_bytes()), Embedded::default());
        let one = format!(r#"<image href="data:image/png;base64,{}"/>"#, b64(PNG_1X1));
        let many = format!("<svg>{}</svg>", one.repeat(MAX_EMBEDDED + 3));
        let found = embedded_images(many.as_bytes());
        assert_eq!(found.images.len(), MAX_EMBEDDED);
        assert!(found.truncated);
    }
}
