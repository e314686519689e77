//! Images carried as text in an upload: `data:` URIs and base64 strings in
//! JSON, in `application/x-www-form-urlencoded` values, in form fields, in
//! SVG, and parts with a base64 or quoted-printable transfer encoding.
//!
//! An application behind the worker may decode such a string and store the
//! image it holds, so a scanning route decodes it too. The rule is the same
//! for every body, whatever its declared type: each run of base64 (standard
//! or URL-safe alphabet, line breaks and spaces allowed inside, at least
//! [`MIN_BASE64`] characters) and each `data:` payload is decoded from the
//! start of every token, and kept when its first bytes are an image
//! ([`crate::upload::sniffs_as_image`]); a decoded run is not decoded again.
//! The body is read raw, percent-decoded (form values; `+` kept, as the
//! many applications that re-read `+` in base64 do) and with JSON string
//! escapes undone (`\/`, `\n`, `\uXXXX`), so an encoder's escaping does not
//! hide a string. Values of a urlencoded form that are raw image bytes are
//! kept too. Only the first bytes of a token are decoded unless they are an
//! image, so text costs one linear pass.

use crate::upload::sniffs_as_image;

/// Shortest base64 run looked at: 24 characters, 18 bytes, enough to
/// recognise every image format.
pub const MIN_BASE64: usize = 24;

/// The images embedded as text in `text`, decoded, without duplicates.
pub fn images_in_text(text: &[u8]) -> Vec<Vec<u8>> {
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut keep = |image: Vec<u8>| {
        if !found.contains(&image) {
            found.push(image);
        }
    };
    let percent = text.contains(&b'%').then(|| percent_decode(text));
    let json = text.contains(&b'\\').then(|| json_unescape(text));
    for view in [Some(text), percent.as_deref(), json.as_deref()]
        .into_iter()
        .flatten()
    {
        base64_runs(view, &mut keep);
        data_uris(view, &mut keep);
    }
    // Raw image bytes as a form value (`photo=<bytes>` or `photo=%FF%D8...`).
    for pair in text.split(|&b| b == b'&') {
        let value = pair
            .iter()
            .position(|&b| b == b'=')
            .map_or(pair, |at| &pair[at + 1..]);
        let value = form_decode(value);
        if sniffs_as_image(&value) {
            keep(value);
        }
    }
    found
}

fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

fn is_space(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b' ' | b'\t')
}

fn sextet(b: u8) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// Decodes base64 from `start` up to `=` or any other character, or once
/// `limit` bytes are out; returns the bytes and where decoding stopped.
/// Spaces and line breaks are skipped where a line of whole quads ends
/// (wrapped base64); one run keeps to one alphabet (`+/` or `-_`), so
/// what follows it (`--boundary`) is not read as more of it.
fn decode_base64(text: &[u8], start: usize, limit: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut sextets = 0usize;
    let mut url_safe: Option<bool> = None;
    let mut i = start;
    while i < text.len() && out.len() < limit {
        let b = text[i];
        let class = match b {
            b'+' | b'/' => Some(false),
            b'-' | b'_' => Some(true),
            _ => None,
        };
        if let Some(class) = class {
            if *url_safe.get_or_insert(class) != class {
                break;
            }
        }
        if is_space(b) && !sextets.is_multiple_of(4) {
            break;
        }
        if let Some(v) = sextet(b) {
            sextets += 1;
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        } else if !is_space(b) {
            break;
        }
        i += 1;
    }
    (out, i)
}

/// Every base64 run that decodes to an image.
fn base64_runs(text: &[u8], keep: &mut impl FnMut(Vec<u8>)) {
    let mut i = 0;
    while i < text.len() {
        let token_start = is_base64(text[i]) && (i == 0 || !is_base64(text[i - 1]));
        if !token_start {
            i += 1;
            continue;
        }
        let (prefix, _) = decode_base64(text, i, MIN_BASE64 / 4 * 3);
        if prefix.len() == MIN_BASE64 / 4 * 3 && sniffs_as_image(&prefix) {
            let (image, end) = decode_base64(text, i, usize::MAX);
            keep(image);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
}

/// `data:` URIs whose payload is percent-encoded (base64 payloads are runs).
fn data_uris(text: &[u8], keep: &mut impl FnMut(Vec<u8>)) {
    let mut from = 0;
    while let Some(at) = find_ignore_case(text, b"data:", from) {
        from = at + 5;
        let header_end = text[from..]
            .iter()
            .take(256)
            .position(|&b| b == b',' || b == b'"' || b == b'\'' || is_space(b));
        let Some(comma) = header_end.filter(|&n| text[from + n] == b',') else {
            continue;
        };
        let payload_start = from + comma + 1;
        let payload_end = text[payload_start..]
            .iter()
            .position(|&b| {
                matches!(b, b'"' | b'\'' | b'&' | b')' | b'<' | b'>' | b'\\') || is_space(b)
            })
            .map_or(text.len(), |n| payload_start + n);
        let payload = &text[payload_start..payload_end];
        // A payload already decoded (raw bytes) belongs to another view.
        let textual = payload.iter().all(|&b| b.is_ascii_graphic());
        let image = percent_decode(payload);
        if textual && sniffs_as_image(&image) {
            keep(image);
        }
        from = payload_end;
    }
}

fn find_ignore_case(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    (from..=haystack.len().checked_sub(needle.len())?)
        .find(|&i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` escapes decoded; everything else (`+` included) as it is.
pub fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            if let (Some(h), Some(l)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// A urlencoded form value: `+` is a space, `%XX` a byte.
fn form_decode(text: &[u8]) -> Vec<u8> {
    let plus: Vec<u8> = text
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus)
}

/// JSON string escapes undone wherever they are (the body need not be
/// valid JSON): `\"`, `\\`, `\/`, `\b\f\n\r\t`, `\uXXXX`.
fn json_unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'\\' || i + 1 >= text.len() {
            out.push(text[i]);
            i += 1;
            continue;
        }
        let escaped = text[i + 1];
        i += 2;
        match escaped {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let code = text
                    .get(i..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                match code {
                    Some(code) => {
                        let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        i += 4;
                    }
                    None => out.extend_from_slice(b"\\u"),
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Quoted-printable (RFC 2045): `=XX` is a byte, `=` at a line end a soft
/// break; anything else as it is.
pub fn quoted_printable_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' {
            if let (Some(h), Some(l)) = (
                text.get(i + 1).copied().and_then(hex),
                text.get(i + 2).copied().and_then(hex),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
            let mut j = i + 1;
            while matches!(text.get(j), Some(b' ' | b'\t')) {
                j += 1;
            }
            match text.get(j..).unwrap_or_default() {
                [b'\r', b'\n', ..] => {
                    i = j + 2;
                    continue;
                }
                [b'\n', ..] => {
                    i = j + 1;
                    continue;
                }
                _ => {}
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Base64 as a transfer encoding: every alphabet character up to `=`,
/// anything else skipped (as Python's `b64decode` does by default).
pub fn base64_decode_lenient(text: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = text
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .filter(|&b| is_base64(b))
        .collect();
    decode_base64(&clean, 0, usize::MAX).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    const JPEG: &[u8] =
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00 the rest of a jpeg";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn data_uris_and_base64_in_json() {
        let body = format!(r#"{{"a":"data:image/jpeg;base64,{}","b":"x"}}"#, b64(JPEG));
        assert_eq!(images_in_text(body.as_bytes()), vec![JPEG.to_vec()]);
        let bare = format!(r#"{{"photo": "{}"}}"#, b64(JPEG));
        assert_eq!(images_in_text(bare.as_bytes()), vec![JPEG.to_vec()]);
        // PHP's json_encode escapes slashes; JSON may break lines.
        let escaped = format!(r#"{{"p":"{}"}}"#, b64(JPEG).replace('/', "\\/"));
        assert_eq!(images_in_text(escaped.as_bytes()), vec![JPEG.to_vec()]);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(JPEG);
        assert_eq!(images_in_text(url_safe.as_bytes()), vec![JPEG.to_vec()]);
    }

    #[test]
    fn urlencoded_values() {
        let encoded: String = b64(JPEG)
            .bytes()
            .map(|b| match b {
                b'/' => "%2F".to_owned(),
                b'+' => "%2B".to_owned(),
                b'=' => "%3D".to_owned(),
                b => (b as char).to_string(),
            })
            .collect();
        let body = format!("title=x&photo=data%3Aimage%2Fjpeg%3Bbase64%2C{encoded}&n=1");
        assert_eq!(images_in_text(body.as_bytes()), vec![JPEG.to_vec()]);
        let raw: Vec<u8> = [b"a=1&photo=".as_slice(), JPEG].concat();
        assert_eq!(images_in_text(&raw), vec![JPEG.to_vec()]);
        let percent: String = JPEG.iter().map(|b| format!("%{b:02X}")).collect();
        let body = format!("photo=data:image/jpeg,{percent}");
        assert_eq!(images_in_text(body.as_bytes()), vec![JPEG.to_vec()]);
    }

    #[test]
    fn wrapped_base64_after_text() {
        let wrapped: String = b64(JPEG)
            .as_bytes()
            .chunks(16)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n");
        let body = format!("see attached photo {wrapped}\r\nthanks");
        let found = images_in_text(body.as_bytes());
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(JPEG),
            "the image, then what follows it decoded"
        );
    }

    #[test]
    fn ordinary_text_holds_no_images() {
        let text = b"{\"id\":\"f3a9c0d2e8b74c51a6e2d9f0b1c3a5e7\",\"name\":\"BMW 3 series, sold 2019\",\"path\":\"/9j/a\"}";
        assert!(images_in_text(text).is_empty());
        assert!(images_in_text(b"").is_empty());
        assert!(images_in_text(b"%").is_empty());
    }

    #[test]
    fn transfer_encodings() {
        assert_eq!(
            quoted_printable_decode(b"=FF=D8=\r\n=ffab=\nc= x"),
            b"\xff\xd8\xffabc= x"
        );
        assert_eq!(
            base64_decode_lenient(b"/9j/\r\n4A==junk"),
            b"\xff\xd8\xff\xe0"
        );
    }
}
