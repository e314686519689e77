//! Reading `multipart/*` upload bodies (RFC 7578 on RFC 2046's framing) the
//! way the origins behind the worker might read them, to find every part an
//! origin could extract.
//!
//! Why more than one reading: a form is only safe to pass if no origin
//! parser can pull a file out of it that the worker did not see. Parsers
//! disagree on the edges of the format: which of two `boundary` parameters
//! counts (Werkzeug takes the last, most others the first), whether a bare
//! LF or CR may stand for the CRLF before a delimiter (Werkzeug, Go and PHP
//! accept it; RFC 2046 and browsers do not), whether `--boundary` must be
//! followed by a line end, where a part's headers end (`\r\n\r\n`, `\n\n`
//! or `\r\r`), and whether a body without its closing delimiter still
//! yields its parts. So the body is read under every candidate boundary
//! ([`boundaries`]) in four dialects, and the union of their parts is what
//! the caller checks:
//!
//! | dialect | delimiter | headers end | used for |
//! |---|---|---|---|
//! | [`Dialect::Strict`] | CRLF `--b`, padding, CRLF; the first `--b` anywhere | `\r\n\r\n`, or none if the part starts with one CRLF | RFC 2046, browsers |
//! | [`Dialect::Multer`] | as strict | the first `\r\n\r\n` however far (headers up to the first empty line) | multer (axum) |
//! | [`Dialect::Werkzeug`] | CRLF, LF or CR `--b`, padding, line end; the first anywhere | leftmost of `\r\n\r\n`, `\n\n`, `\r\r` | Flask/Werkzeug 3, exactly |
//! | [`Dialect::Loose`] | every `--b`, whatever surrounds it | as Werkzeug | parsers that split on the boundary alone |
//!
//! A body is *read* when some boundary gives a complete reading (its closing
//! delimiter found) in the strict, multer or Werkzeug dialect; otherwise
//! [`read`] reports the error, after collecting the parts it could find, so
//! the caller checks those and then applies the route's fail mode. Part
//! headers are unfolded (a line starting with a space or tab continues the
//! previous one), split on any line end, and matched without regard to
//! case. Nothing here allocates more than the parts' headers: part bodies
//! are slices of the input.

use thiserror::Error;

/// At most this many parts in one reading; more is treated as malformed.
pub const MAX_PARTS: usize = 1000;
/// At most this many bytes of headers per part.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// At most this many distinct boundary candidates in one `Content-Type`.
pub const MAX_BOUNDARIES: usize = 8;
/// The longest boundary read (RFC 2046 allows 70; some clients send more).
pub const MAX_BOUNDARY_LEN: usize = 200;

/// Why a multipart body could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MultipartError {
    #[error("Content-Type has no boundary parameter")]
    NoBoundary,
    #[error("boundary is {0} bytes; at most {MAX_BOUNDARY_LEN} are read")]
    BadBoundary(usize),
    #[error("Content-Type names {0} different boundaries; at most {MAX_BOUNDARIES} are read")]
    TooManyBoundaries(usize),
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
    #[error("multipart bodies nested more than {0} deep")]
    TooDeep(usize),
}

/// How a body is split into parts (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Strict,
    Multer,
    Werkzeug,
    Loose,
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The form field name (`Content-Disposition: form-data; name=...`).
    pub name: Option<String>,
    /// The file name, when the part is a file.
    pub filename: Option<String>,
    /// The part's first `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// Every header, unfolded: lowercased name, trimmed value, in order.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Part<'_> {
    /// The values of every header called `name` (lowercase).
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Every boundary some parser could take from a `Content-Type` value: each
/// `boundary` parameter (any case, quoted or bare, RFC 2231 `boundary*=`
/// and `boundary*0=`... continuations), read both by a quoting-aware
/// tokenizer and by a naive split on `;` and `,` (two `Content-Type`
/// headers arrive joined by a comma). Distinct values, in order.
pub fn boundaries(content_type: &str) -> Result<Vec<String>, MultipartError> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |value: String| {
        if !found.contains(&value) {
            found.push(value);
        }
    };
    let mut continued: Vec<(u32, String)> = Vec::new();
    for (name, value) in params(content_type) {
        let name = name.to_ascii_lowercase();
        if name == "boundary" {
            add(value);
        } else if name == "boundary*" {
            add(rfc2231_value(&value));
        } else if let Some(index) = name.strip_prefix("boundary*") {
            let (index, encoded) = match index.strip_suffix('*') {
                Some(i) => (i, true),
                None => (index, false),
            };
            if let Ok(i) = index.parse::<u32>() {
                let value = if encoded && i == 0 {
                    rfc2231_value(&value)
                } else if encoded {
                    percent_decode(&value)
                } else {
                    value
                };
                continued.push((i, value));
            }
        }
    }
    if !continued.is_empty() {
        continued.sort_by_key(|(i, _)| *i);
        add(continued.into_iter().map(|(_, v)| v).collect());
    }
    // Naive readers: split on `;` and `,`, trim, strip one pair of quotes.
    for piece in content_type.split([';', ',']) {
        let Some((name, value)) = piece.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = value.trim();
        add(value.to_owned());
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        add(unquoted.to_owned());
        if let Some(first) = unquoted.split_whitespace().next() {
            add(first.to_owned());
        }
    }
    found.retain(|b| !b.is_empty());
    if found.is_empty() {
        return Err(MultipartError::NoBoundary);
    }
    if let Some(long) = found.iter().find(|b| b.len() > MAX_BOUNDARY_LEN) {
        return Err(MultipartError::BadBoundary(long.len()));
    }
    if found.len() > MAX_BOUNDARIES {
        return Err(MultipartError::TooManyBoundaries(found.len()));
    }
    Ok(found)
}

/// The boundary a reader that ignores `Content-Type` would take: the first
/// line of the body, when it starts with `--`.
pub fn boundary_from_body(body: &[u8]) -> Option<String> {
    let start = body.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let line = &body[start..];
    let line = line.strip_prefix(b"--")?;
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len())
        .min(MAX_BOUNDARY_LEN + 2);
    let value = String::from_utf8_lossy(&line[..end]);
    let value = value.trim_end_matches([' ', '\t']);
    let value = value.strip_suffix("--").unwrap_or(value);
    (!value.is_empty() && value.len() <= MAX_BOUNDARY_LEN).then(|| value.to_owned())
}

/// Whether a content type is `multipart/*`.
pub fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("multipart/"))
}

/// One reading of a body: its parts, and whether its closing delimiter was
/// found (`Err` says why not; the parts found so far are still there, the
/// last one running to the end of the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading<'a> {
    pub parts: Vec<Part<'a>>,
    pub complete: Result<(), MultipartError>,
}

/// Reads `body` under `boundary` in `dialect`.
pub fn read<'a>(body: &'a [u8], boundary: &str, dialect: Dialect) -> Reading<'a> {
    match dialect {
        Dialect::Strict => read_strict(body, boundary, false),
        Dialect::Multer => read_strict(body, boundary, true),
        Dialect::Werkzeug => read_werkzeug(body, boundary),
        Dialect::Loose => read_loose(body, boundary),
    }
}

/// Splits `body` into its parts, strictly (RFC 2046 framing with CRLF line
/// ends): an error if the body is not exactly that.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let reading = read_strict(body, boundary, false);
    reading.complete.map(|()| reading.parts)
}

/// RFC 2046 framing; `multer`: headers end at the first `\r\n\r\n` from
/// the part's start, however far, and only their lines before the first
/// empty one count (httparse stops there), so a part cannot be header-less.
fn read_strict<'a>(body: &'a [u8], boundary: &str, multer: bool) -> Reading<'a> {
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let delimiter = [b"\r\n".as_slice(), &dash_boundary].concat();
    let mut parts = Vec::new();
    let done = |parts, complete| Reading { parts, complete };

    // The first delimiter is the first `--b`, wherever it is (multer
    // takes it so; RFC 2046 wants it at the start of a line).
    let mut pos = match find(body, &dash_boundary, 0) {
        Some(at) => at + dash_boundary.len(),
        None => return done(parts, Err(MultipartError::NoOpeningDelimiter)),
    };
    loop {
        // After a delimiter: `--` closes the body; otherwise optional
        // transport padding, then CRLF.
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return done(parts, Ok(()));
        }
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if !rest[padding..].starts_with(b"\r\n") {
            let shown: String = String::from_utf8_lossy(&rest[..rest.len().min(16)]).into_owned();
            return done(parts, Err(MultipartError::BadDelimiterLine(shown)));
        }
        pos += padding + 2;
        if parts.len() == MAX_PARTS {
            return done(parts, Err(MultipartError::TooManyParts));
        }
        let index = parts.len();
        // Headers end at a blank line (a part may have none: it then starts
        // with the blank line itself).
        let (headers, body_start) = if multer {
            match find(body, b"\r\n\r\n", pos) {
                Some(end) => {
                    let block = &body[pos..end];
                    let first_empty = find(block, b"\r\n\r\n", 0).map(|i| i + 2).unwrap_or(
                        if block.starts_with(b"\r\n") {
                            0
                        } else {
                            block.len()
                        },
                    );
                    (&block[..first_empty.min(block.len())], end + 4)
                }
                None => return done(parts, Err(MultipartError::HeadersUnterminated(index))),
            }
        } else if body[pos..].starts_with(b"\r\n") {
            (&body[pos..pos], pos + 2)
        } else {
            let window_end = body.len().min(pos + MAX_HEADER_BYTES + 4);
            match find(&body[..window_end], b"\r\n\r\n", pos) {
                Some(end) => (&body[pos..end], end + 4),
                None => return done(parts, Err(MultipartError::HeadersUnterminated(index))),
            }
        };
        match find(body, &delimiter, body_start) {
            Some(body_end) => {
                parts.push(part(headers, &body[body_start..body_end]));
                pos = body_end + delimiter.len();
            }
            None => {
                parts.push(part(headers, &body[body_start..]));
                return done(parts, Err(MultipartError::Unterminated(index)));
            }
        }
    }
}

/// Werkzeug 3's `MultipartDecoder`, step for step (its regular expressions
/// in the comments), except that a part without `Content-Disposition` is
/// kept rather than failing the whole body.
fn read_werkzeug<'a>(body: &'a [u8], boundary: &str) -> Reading<'a> {
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    let done = |parts, complete| Reading { parts, complete };

    // Preamble: `LB? --b (-- h* LB? | h* LB)`, anywhere in the body.
    let mut from = 0;
    let mut pos = loop {
        let Some(at) = find(body, &dash_boundary, from) else {
            return done(parts, Err(MultipartError::NoOpeningDelimiter));
        };
        match delimiter_suffix(body, at + dash_boundary.len()) {
            Some(Suffix::Close(_)) => return done(parts, Ok(())),
            Some(Suffix::Part(end)) => break end,
            None => from = at + 1,
        }
    };
    loop {
        if parts.len() == MAX_PARTS {
            return done(parts, Err(MultipartError::TooManyParts));
        }
        let index = parts.len();
        // Headers: up to the leftmost of `\r\n\r\n`, `\r\r`, `\n\n`; the
        // data starts after the line end that follows the blank line's
        // midpoint.
        let Some((headers, data_start, headers_end)) = split_headers(body, pos) else {
            return done(parts, Err(MultipartError::HeadersUnterminated(index)));
        };
        // Data: up to `LB --b (-- h* LB? | h* LB)`, searched from the end
        // of the headers.
        match next_werkzeug_delimiter(body, &dash_boundary, headers_end) {
            Some((start, suffix)) => {
                parts.push(part(headers, &body[data_start..start.max(data_start)]));
                match suffix {
                    Suffix::Close(_) => return done(parts, Ok(())),
                    Suffix::Part(end) => pos = end,
                }
            }
            None => {
                parts.push(part(headers, &body[data_start.min(body.len())..]));
                return done(parts, Err(MultipartError::Unterminated(index)));
            }
        }
    }
}

/// Every occurrence of `--b` is a split point; each piece's headers end as
/// in Werkzeug, and a line end just before the next split point is not
/// part of the piece. Always "complete": it only adds parts.
fn read_loose<'a>(body: &'a [u8], boundary: &str) -> Reading<'a> {
    let dash_boundary = [b"--".as_slice(), boundary.as_bytes()].concat();
    let mut splits = Vec::new();
    let mut from = 0;
    while let Some(at) = find(body, &dash_boundary, from) {
        splits.push(at);
        if splits.len() > MAX_PARTS {
            return Reading {
                parts: Vec::new(),
                complete: Err(MultipartError::TooManyParts),
            };
        }
        from = at + dash_boundary.len();
    }
    let mut parts = Vec::new();
    for (i, &at) in splits.iter().enumerate() {
        let after = at + dash_boundary.len();
        // The rest of the delimiter line.
        let Some(line_end) = body[after..].iter().position(|&b| b == b'\n' || b == b'\r') else {
            break;
        };
        let mut start = after + line_end;
        start += line_break_len(body, start);
        let mut end = splits.get(i + 1).copied().unwrap_or(body.len());
        if end < start {
            continue;
        }
        if end > start && body[end - 1] == b'\n' {
            end -= 1;
        }
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
        let piece = &body[start..end];
        if piece.is_empty() {
            continue;
        }
        // No headers: the piece starts with the blank line.
        let bare = line_break_len(piece, 0);
        if bare > 0 {
            parts.push(part(&[], &piece[bare..]));
            continue;
        }
        match split_headers(piece, 0) {
            Some((headers, data_start, _)) => {
                parts.push(part(headers, &piece[data_start.min(piece.len())..]))
            }
            None => parts.push(part(&[], piece)),
        }
    }
    Reading {
        parts,
        complete: Ok(()),
    }
}

/// What follows `--b` in a delimiter.
enum Suffix {
    /// `--`, horizontal space, an optional line end: the close delimiter.
    Close(#[allow(dead_code)] usize),
    /// Horizontal space, then a line end: the next part starts at the index.
    Part(usize),
}

/// Python's `[^\S\n\r]`: whitespace other than line ends.
fn is_hspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c)
}

/// The length of the line end (`\r\n`, `\n` or `\r`) at `at`, or 0.
fn line_break_len(body: &[u8], at: usize) -> usize {
    match body.get(at..).unwrap_or_default() {
        [b'\r', b'\n', ..] => 2,
        [b'\r' | b'\n', ..] => 1,
        _ => 0,
    }
}

/// `(-- h* LB? | h* LB)` at `at`.
fn delimiter_suffix(body: &[u8], at: usize) -> Option<Suffix> {
    let rest = body.get(at..)?;
    if rest.starts_with(b"--") {
        let mut end = at + 2;
        while body.get(end).copied().is_some_and(is_hspace) {
            end += 1;
        }
        return Some(Suffix::Close(end + line_break_len(body, end)));
    }
    let mut end = at;
    while body.get(end).copied().is_some_and(is_hspace) {
        end += 1;
    }
    match line_break_len(body, end) {
        0 => None,
        n => Some(Suffix::Part(end + n)),
    }
}

/// The leftmost `LB --b suffix` starting at or after `from`: its start (the
/// line end's first byte) and its suffix.
fn next_werkzeug_delimiter(
    body: &[u8],
    dash_boundary: &[u8],
    from: usize,
) -> Option<(usize, Suffix)> {
    let mut search = from;
    loop {
        let at = find(body, dash_boundary, search)?;
        // The line end before `--b`, as the regular expression would take
        // it at its leftmost start: `\r\n` if both are there, else one byte.
        let start = if at >= from + 2 && &body[at - 2..at] == b"\r\n" {
            Some(at - 2)
        } else if at > from && matches!(body[at - 1], b'\r' | b'\n') {
            Some(at - 1)
        } else {
            None
        };
        if let Some(start) = start {
            if let Some(suffix) = delimiter_suffix(body, at + dash_boundary.len()) {
                return Some((start, suffix));
            }
        }
        search = at + 1;
    }
}

/// Werkzeug's header split from `pos`: the headers, where the data starts,
/// and where the headers end (the blank line's midpoint).
fn split_headers(body: &[u8], pos: usize) -> Option<(&[u8], usize, usize)> {
    let window_end = body.len().min(pos.saturating_add(MAX_HEADER_BYTES + 4));
    let window = body.get(pos..window_end)?;
    let (offset, len) = window.windows(2).enumerate().find_map(|(i, w)| match w {
        b"\r\n" if window[i..].starts_with(b"\r\n\r\n") => Some((i, 4)),
        b"\r\r" | b"\n\n" => Some((i, 2)),
        _ => None,
    })?;
    let blank = pos + offset;
    let headers_end = blank + len / 2;
    let data_start = headers_end + line_break_len(body, headers_end);
    Some((&body[pos..blank], data_start, headers_end))
}

/// A part from its raw headers and body.
fn part<'a>(raw_headers: &[u8], body: &'a [u8]) -> Part<'a> {
    let headers = parse_headers(raw_headers);
    let mut part = Part {
        name: None,
        filename: None,
        content_type: None,
        headers,
        body,
    };
    for (name, value) in &part.headers {
        if name == "content-disposition" && part.name.is_none() && part.filename.is_none() {
            for (param, param_value) in params(value) {
                let param = param.to_ascii_lowercase();
                if param == "name" {
                    part.name = Some(param_value);
                } else if param == "filename" || (param == "filename*" && part.filename.is_none()) {
                    part.filename = Some(param_value);
                }
            }
        } else if name == "content-type" && part.content_type.is_none() {
            part.content_type = Some(value.clone());
        }
    }
    part
}

/// Unfolds continuation lines (a line end followed by a space or tab) and
/// splits on any line end; names lowercased and trimmed, values trimmed.
pub fn parse_headers(raw: &[u8]) -> Vec<(String, String)> {
    let mut unfolded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let lb = line_break_len(raw, i);
        if lb > 0 && matches!(raw.get(i + lb), Some(b' ' | b'\t')) {
            unfolded.push(b' ');
            i += lb + 1;
            continue;
        }
        unfolded.push(raw[i]);
        i += 1;
    }
    unfolded
        .split(|&b| b == b'\n' || b == b'\r')
        .filter_map(|line| {
            let line = String::from_utf8_lossy(line);
            let (name, value) = line.trim().split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect()
}

/// `; name=value` parameters after the first `;`, values unquoted.
pub fn params(header: &str) -> impl Iterator<Item = (String, String)> + '_ {
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
        let after = rest[eq + 1..].trim_start();
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

/// An RFC 2231 extended value: `charset'language'percent-encoded`.
fn rfc2231_value(value: &str) -> String {
    let mut pieces = value.splitn(3, '\'');
    match (pieces.next(), pieces.next(), pieces.next()) {
        (Some(_), Some(_), Some(encoded)) => percent_decode(encoded),
        _ => percent_decode(value),
    }
}

fn percent_decode(value: &str) -> String {
    String::from_utf8_lossy(&crate::embedded::percent_decode(value.as_bytes())).into_owned()
}

/// Position of `needle` in `haystack` at or after `from`, in linear time
/// (a body of near-matches must not cost length x boundary).
pub(crate) fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack.get(from..)?, needle).map(|i| from + i)
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

    fn bodies<'a>(parts: &[Part<'a>]) -> Vec<&'a [u8]> {
        parts.iter().map(|p| p.body).collect()
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
        let b = &boundaries(CT).unwrap()[0];
        for dialect in [
            Dialect::Strict,
            Dialect::Multer,
            Dialect::Werkzeug,
            Dialect::Loose,
        ] {
            let reading = read(&data, b, dialect);
            assert_eq!(reading.complete, Ok(()), "{dialect:?}");
            let parts = reading.parts;
            assert_eq!(parts.len(), 2, "{dialect:?}");
            assert_eq!(parts[0].name.as_deref(), Some("title"));
            assert_eq!(parts[0].filename, None);
            assert_eq!(parts[0].body, b"hello");
            assert_eq!(parts[1].name.as_deref(), Some("file"));
            assert_eq!(parts[1].filename.as_deref(), Some("a \"b\".jpg"));
            assert_eq!(parts[1].content_type.as_deref(), Some("image/jpeg"));
            assert_eq!(parts[1].body, b"\xff\xd8\xff\r\n--Xy not a delimiter");
        }
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
        // Werkzeug has no header-less parts: the first blank line it finds
        // ends the first part's headers.
        let werkzeug = read(data, "XyZ", Dialect::Werkzeug);
        assert_eq!(werkzeug.complete, Ok(()));
        assert_eq!(bodies(&werkzeug.parts), [&b""[..]]);
    }

    #[test]
    fn every_boundary_parameter_is_a_candidate() {
        let all = |ct: &str| boundaries(ct).unwrap();
        assert_eq!(
            all("multipart/form-data; boundary=\"a b\""),
            ["a b", "\"a b\"", "a"]
        );
        assert_eq!(
            all("multipart/form-data;charset=utf-8; BOUNDARY=abc"),
            ["abc"]
        );
        // Werkzeug takes the last of two; others the first: both are read.
        assert_eq!(
            all("multipart/form-data; boundary=a; boundary=b"),
            ["a", "b"]
        );
        assert_eq!(
            all("multipart/form-data; boundary=\"a\"; Boundary=b"),
            ["a", "b", "\"a\""]
        );
        assert_eq!(all("multipart/form-data; boundary*=utf-8''x%41y"), ["xAy"]);
        assert_eq!(
            all("multipart/form-data; boundary*0=ab; boundary*1*=c%64"),
            ["abcd"]
        );
        assert_eq!(all("multipart/form-data; boundary = a"), ["a"]);
        assert_eq!(
            all("multipart/form-data; boundary=a, multipart/form-data; boundary=b"),
            ["a, multipart/form-data", "b", "a"]
        );
        assert_eq!(
            all("multipart/form-data; boundary=\"a; boundary=b\""),
            ["a; boundary=b", "\"a", "b\""]
        );
        assert_eq!(
            boundaries("multipart/form-data"),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            boundaries("multipart/form-data; boundary="),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            boundaries(&format!(
                "multipart/form-data; boundary={}",
                "x".repeat(201)
            )),
            Err(MultipartError::BadBoundary(201))
        );
        let many: String = (0..9).map(|i| format!("; boundary=b{i}")).collect();
        assert_eq!(
            boundaries(&format!("multipart/form-data{many}")),
            Err(MultipartError::TooManyBoundaries(9))
        );
        assert!(is_multipart("Multipart/Form-Data; boundary=x"));
        assert!(!is_multipart("application/json"));
        assert_eq!(
            boundary_from_body(b"\r\n--abc  \r\nx").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary_from_body(b"--abc--").as_deref(), Some("abc"));
        assert_eq!(boundary_from_body(b"abc"), None);
    }

    #[test]
    fn rejects_truncated_and_malformed_bodies() {
        let data = body(&[("Content-Disposition: form-data; name=\"f\"", b"0123456789")]);
        // Cut before the closing delimiter: the part so far is still there.
        let cut = &data[..data.len() - 12];
        for dialect in [Dialect::Strict, Dialect::Multer, Dialect::Werkzeug] {
            let reading = read(cut, "XyZ", dialect);
            assert_eq!(reading.complete, Err(MultipartError::Unterminated(0)));
            assert_eq!(bodies(&reading.parts), [&b"012345678"[..]]);
        }
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
    fn bare_lf_and_cr_delimiters_split_parts_for_werkzeug() {
        // A text part that, with bare LF line ends, holds a second part.
        let data = b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\n--XyZ\nContent-Disposition: form-data; name=\"f\"; filename=\"a.jpg\"\n\n\xff\xd8\xffjpeg\r\n--XyZ--\r\n";
        let strict = parse(data, "XyZ").unwrap();
        assert_eq!(strict.len(), 1, "strictly, one text part");
        let werkzeug = read(data, "XyZ", Dialect::Werkzeug);
        assert_eq!(werkzeug.complete, Ok(()));
        assert_eq!(
            bodies(&werkzeug.parts),
            [&b"hello"[..], b"\xff\xd8\xffjpeg"]
        );
        assert_eq!(werkzeug.parts[1].filename.as_deref(), Some("a.jpg"));
        let cr = b"--XyZ\rContent-Disposition: form-data; name=\"f\"\r\r\xff\xd8\xffjpeg\r--XyZ--";
        let werkzeug = read(cr, "XyZ", Dialect::Werkzeug);
        assert_eq!(werkzeug.complete, Ok(()));
        assert_eq!(bodies(&werkzeug.parts), [&b"\xff\xd8\xffjpeg"[..]]);
    }

    #[test]
    fn multer_reads_headers_to_the_first_blank_line_however_far() {
        // A header-less part for RFC 2046; for multer, headers up to the
        // next CRLF CRLF (httparse stops at the empty first line).
        let junk = "j".repeat(MAX_HEADER_BYTES * 2);
        let data = format!("--b\r\n\r\n{junk}\r\n\r\nPNG\r\n--b--");
        assert_eq!(
            bodies(&parse(data.as_bytes(), "b").unwrap()),
            [format!("{junk}\r\n\r\nPNG").as_bytes()]
        );
        let multer = read(data.as_bytes(), "b", Dialect::Multer);
        assert_eq!(multer.complete, Ok(()));
        assert_eq!(bodies(&multer.parts), [&b"PNG"[..]]);
        assert!(multer.parts[0].headers.is_empty());
    }

    #[test]
    fn loose_reading_splits_on_every_boundary() {
        let data = b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhi--XyZjunk\r\n\r\n\xff\xd8\xff\r\n--XyZ--";
        let loose = read(data, "XyZ", Dialect::Loose);
        assert_eq!(bodies(&loose.parts), [&b"hi"[..], b"\xff\xd8\xff"]);
    }

    #[test]
    fn headers_are_unfolded_and_case_blind() {
        let headers = parse_headers(b"CONTENT-type:\r\n image/png\ncontent-DISPOSITION : form-data;\r\n\tname=\"x\"\rX-Other: 1");
        assert_eq!(
            headers,
            [
                ("content-type".to_owned(), "image/png".to_owned()),
                (
                    "content-disposition".to_owned(),
                    "form-data; name=\"x\"".to_owned()
                ),
                ("x-other".to_owned(), "1".to_owned()),
            ]
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
        assert_eq!(
            read(&data, "XyZ", Dialect::Werkzeug).complete,
            Err(MultipartError::TooManyParts)
        );
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
