//! A strict, allocation-light `multipart/form-data` reader (RFC 7578 on
//! RFC 2046's framing), enough to find the files in an upload.
//!
//! Why our own: the runtime's `request.formData()` would parse the body in
//! JavaScript and copy every file into a `File`, and it is not testable
//! natively. This reader works on the bytes already read under the cap and
//! hands out slices. It is strict where leniency could hide a file from the
//! scan (a body without its closing delimiter is an error, and the caller
//! applies the route's fail mode) and tolerant where browsers and HTTP
//! clients differ harmlessly (preamble, epilogue, transport padding, header
//! case, quoted or bare parameters).

use thiserror::Error;

/// At most this many parts; more is treated as malformed.
pub const MAX_PARTS: usize = 1000;
/// At most this many bytes of headers per part.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Why a multipart body could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MultipartError {
    #[error("Content-Type has no boundary parameter")]
    NoBoundary,
    #[error("boundary is {0} bytes; RFC 2046 allows 1 to 70")]
    BadBoundary(usize),
    #[error("the body does not start with the boundary")]
    NoOpeningDelimiter,
    #[error("part {0} has no end of headers (blank line) within {MAX_HEADER_BYTES} bytes")]
    HeadersUnterminated(usize),
    #[error("part {0} is not followed by a boundary (body truncated?)")]
    Unterminated(usize),
    #[error("a delimiter is followed by {0:?} instead of a line end")]
    BadDelimiterLine(String),
    #[error("more than {MAX_PARTS} parts")]
    TooManyParts,
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The form field name (`Content-Disposition: form-data; name=...`).
    pub name: Option<String>,
    /// The file name, when the part is a file.
    pub filename: Option<String>,
    /// The part's `Content-Type`, as sent.
    pub content_type: Option<String>,
    pub body: &'a [u8],
}

/// The `boundary` parameter of a `multipart/*` content type.
pub fn boundary(content_type: &str) -> Result<String, MultipartError> {
    let value = params(content_type)
        .find(|(name, _)| name.eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value)
        .ok_or(MultipartError::NoBoundary)?;
    if value.is_empty() || value.len() > 70 {
        return Err(MultipartError::BadBoundary(value.len()));
    }
    Ok(value)
}

/// Whether a content type is `multipart/form-data` (or another
/// `multipart/*` a client might send an upload as).
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("multipart/"))
}

/// Splits `body` into its parts.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let delimiter = [b"\r\n".as_slice(), &dash_boundary].concat();

    // The first delimiter may open the body or follow a preamble.
    let mut pos = if body.starts_with(&dash_boundary) {
        dash_boundary.len()
    } else {
        find(body, &delimiter, 0).ok_or(MultipartError::NoOpeningDelimiter)? + delimiter.len()
    };

    let mut parts = Vec::new();
    loop {
        // After a delimiter: `--` closes the body; otherwise optional
        // transport padding, then CRLF.
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            let shown: String = String::from_utf8_lossy(&rest[..rest.len().min(16)]).into_owned();
            return Err(MultipartError::BadDelimiterLine(shown));
        }
        pos += padding + 2;
        if parts.len() == MAX_PARTS {
            return Err(MultipartError::TooManyParts);
        }
        let index = parts.len();

        // Headers end at a blank line (a part may have none: it then starts
        // with the blank line itself).
        let (headers, body_start) = if body[pos..].starts_with(b"\r\n") {
            (&body[pos..pos], pos + 2)
        } else {
            let window_end = body.len().min(pos + MAX_HEADER_BYTES + 4);
            let end = find(&body[..window_end], b"\r\n\r\n", pos)
                .ok_or(MultipartError::HeadersUnterminated(index))?;
            (&body[pos..end], end + 4)
        };
        let body_end =
            find(body, &delimiter, body_start).ok_or(MultipartError::Unterminated(index))?;
        let mut part = Part {
            name: None,
            filename: None,
            content_type: None,
            body: &body[body_start..body_end],
        };
        for line in headers.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let Some((name, value)) = line.trim_end_matches('\r').split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.trim().eq_ignore_ascii_case("content-disposition") {
                for (param, param_value) in params(value) {
                    if param.eq_ignore_ascii_case("name") {
                        part.name = Some(param_value);
                    } else if param.eq_ignore_ascii_case("filename") {
                        part.filename = Some(param_value);
                    }
                }
            } else if name.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(value.to_owned());
            }
        }
        parts.push(part);
        pos = body_end + delimiter.len();
    }
}

/// `; name=value` parameters after the first `;`, values unquoted.
fn params(header: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut rest = header.split_once(';').map_or("", |(_, r)| r);
    std::iter::from_fn(move || loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return None;
        }
        let eq = rest.find(['=', ';']);
        let Some(eq) = eq.filter(|&i| rest.as_bytes()[i] == b'=') else {
            // A bare token without a value: skip it.
            rest = rest.find(';').map_or("", |i| &rest[i..]);
            continue;
        };
        let name = rest[..eq].trim().to_owned();
        let after = &rest[eq + 1..];
        if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            return Some((name, value));
        }
        let end = after.find(';').unwrap_or(after.len());
        let value = after[..end].trim().to_owned();
        rest = &after[end..];
        return Some((name, value));
    })
}

/// Position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= haystack.len() {
        let offset = haystack[i..haystack.len() - needle.len() + 1]
            .iter()
            .position(|&b| b == first)?;
        i += offset;
        if haystack[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=XyZ";

    fn body(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (headers, content) in parts {
            out.extend_from_slice(b"--XyZ\r\n");
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(content);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--XyZ--\r\n");
        out
    }

    #[test]
    fn reads_fields_and_files() {
        let data = body(&[
            ("Content-Disposition: form-data; name=\"title\"", b"hello"),
            (
                "content-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".jpg\"\r\nContent-Type: image/jpeg",
                b"\xff\xd8\xff\r\n--Xy not a delimiter",
            ),
        ]);
        let b = boundary(CT).unwrap();
        let parts = parse(&data, &b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("title"));
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].body, b"hello");
        assert_eq!(parts[1].name.as_deref(), Some("file"));
        assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".jpg"));
        assert_eq!(parts[1].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(parts[1].body, b"\xff\xd8\xff\r\n--Xy not a delimiter");
    }

    #[test]
    fn preamble_padding_epilogue_and_empty_headers() {
        let data = b"preamble\r\n--XyZ  \r\n\r\nno headers\r\n--XyZ\r\nContent-Type: text/plain\r\n\r\n\r\n--XyZ--epilogue";
        let parts = parse(data, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].body, b"no headers");
        assert_eq!(parts[1].body, b"");
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(parse(b"--XyZ--", "XyZ").unwrap(), vec![]);
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").unwrap(),
            "a b"
        );
        assert_eq!(
            boundary("multipart/form-data;charset=utf-8; BOUNDARY=abc").unwrap(),
            "abc"
        );
        assert_eq!(
            boundary("multipart/form-data"),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            boundary("multipart/form-data; boundary="),
            Err(MultipartError::BadBoundary(0))
        );
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            Err(MultipartError::BadBoundary(71))
        );
        assert!(is_multipart("Multipart/Form-Data; boundary=x"));
        assert!(!is_multipart("application/json"));
    }

    #[test]
    fn rejects_truncated_and_malformed_bodies() {
        let data = body(&[("Content-Disposition: form-data; name=\"f\"", b"0123456789")]);
        // Cut before the closing delimiter.
        let cut = &data[..data.len() - 12];
        assert_eq!(parse(cut, "XyZ"), Err(MultipartError::Unterminated(0)));
        assert_eq!(
            parse(b"no boundary here", "XyZ"),
            Err(MultipartError::NoOpeningDelimiter)
        );
        assert_eq!(
            parse(b"--XyZ\r\nContent-Type: x", "XyZ"),
            Err(MultipartError::HeadersUnterminated(0))
        );
        assert!(matches!(
            parse(b"--XyZjunk\r\n", "XyZ"),
            Err(MultipartError::BadDelimiterLine(_))
        ));
        let long_headers = format!(
            "--XyZ\r\nX: {}\r\n\r\nbody\r\n--XyZ--",
            "a".repeat(MAX_HEADER_BYTES + 10)
        );
        assert_eq!(
            parse(long_headers.as_bytes(), "XyZ"),
            Err(MultipartError::HeadersUnterminated(0))
        );
    }

    #[test]
    fn too_many_parts() {
        let one: &[(&str, &[u8])] = &[("Content-Disposition: form-data; name=\"x\"", b"1")];
        let mut data = Vec::new();
        for _ in 0..=MAX_PARTS {
            let mut part = body(one);
            part.truncate(part.len() - b"--XyZ--\r\n".len());
            data.extend_from_slice(&part);
        }
        data.extend_from_slice(b"--XyZ--");
        assert_eq!(parse(&data, "XyZ"), Err(MultipartError::TooManyParts));
    }

    #[test]
    fn find_works_at_edges() {
        assert_eq!(find(b"abc", b"abc", 0), Some(0));
        assert_eq!(find(b"xxabc", b"abc", 0), Some(2));
        assert_eq!(find(b"abcabc", b"abc", 1), Some(3));
        assert_eq!(find(b"ab", b"abc", 0), None);
        assert_eq!(find(b"abc", b"", 0), None);
    }
}
