//! Answering a `Range` request from bytes the worker has checked.
//!
//! A `206` from the origin is a piece of an image, and pieces cannot be
//! hashed: `bytes=0-9999` and then `bytes=10000-` would each pass, and
//! their concatenation is the listed file. So on a scanning route the
//! worker fetches the whole object, checks it, and answers the range
//! itself from the checked bytes ([`crate::ranged`]). This module is that
//! answer, as RFC 9110 section 14 describes it: which ranges ([`plan`]),
//! `If-Range` ([`if_range_holds`]), `Content-Range` and a
//! `multipart/byteranges` body for several ranges ([`multipart`]).
//!
//! Choices where the RFC lets a server choose: a `Range` that does not
//! parse, names another unit, asks for more than [`MAX_RANGES`] ranges or
//! for ranges that overlap is ignored (the whole body, 200); an `If-Range`
//! that does not hold also gives the whole body; a date in `If-Range`
//! holds only if it is exactly the `Last-Modified` value and a weak ETag
//! never does.

/// The most ranges answered as ranges; more gives the whole body.
pub const MAX_RANGES: usize = 16;

/// An inclusive byte range of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// The range's length in bytes.
    pub fn byte_count(&self) -> u64 {
        self.end - self.start + 1
    }

    /// `bytes START-END/TOTAL`.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{total}", self.start, self.end)
    }
}

/// How to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the whole body.
    Whole,
    /// 206 with these ranges (one: a single part; more: multipart).
    Partial(Vec<ByteRange>),
    /// 416 with `Content-Range: bytes */TOTAL`.
    Unsatisfiable,
}

/// Decides the answer for a body of `total` bytes. `range` and `if_range`
/// are the client's headers; `etag` and `last_modified` the validators of
/// the checked body.
pub fn plan(
    range: Option<&str>,
    if_range: Option<&str>,
    etag: Option<&str>,
    last_modified: Option<&str>,
    total: u64,
) -> Answer {
    let Some(range) = range else {
        return Answer::Whole;
    };
    if let Some(condition) = if_range {
        if !if_range_holds(condition, etag, last_modified) {
            return Answer::Whole;
        }
    }
    parse(range, total)
}

/// Whether an `If-Range` condition holds for a body with these validators.
pub fn if_range_holds(condition: &str, etag: Option<&str>, last_modified: Option<&str>) -> bool {
    let condition = condition.trim();
    if condition.starts_with('"') {
        // A strong comparison: both strong and identical.
        return etag.is_some_and(|tag| tag.trim() == condition);
    }
    if condition.starts_with("W/") {
        return false;
    }
    last_modified.is_some_and(|date| date.trim() == condition)
}

/// Reads a `Range` value against a body of `total` bytes.
pub fn parse(value: &str, total: u64) -> Answer {
    let Some((unit, specs)) = value.split_once('=') else {
        return Answer::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return Answer::Whole;
    }
    let mut ranges: Vec<ByteRange> = Vec::new();
    let mut count = 0usize;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return Answer::Whole;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return Answer::Whole;
        };
        let (first, last) = (first.trim(), last.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let range = if first.is_empty() {
            // Suffix: the last N bytes.
            if !digits(last) {
                return Answer::Whole;
            }
            let Ok(suffix) = last.parse::<u64>() else {
                return Answer::Whole;
            };
            if suffix == 0 || total == 0 {
                continue;
            }
            ByteRange {
                start: total.saturating_sub(suffix),
                end: total - 1,
            }
        } else {
            if !digits(first) || !(last.is_empty() || digits(last)) {
                return Answer::Whole;
            }
            let Ok(start) = first.parse::<u64>() else {
                return Answer::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                // Past u64: to the end.
                last.parse::<u64>().unwrap_or(u64::MAX)
            };
            if end < start {
                return Answer::Whole;
            }
            if start >= total {
                continue;
            }
            ByteRange {
                start,
                end: end.min(total - 1),
            }
        };
        ranges.push(range);
    }
    if count == 0 {
        return Answer::Whole;
    }
    if ranges.is_empty() {
        return Answer::Unsatisfiable;
    }
    for (i, a) in ranges.iter().enumerate() {
        if ranges[i + 1..]
            .iter()
            .any(|b| a.start <= b.end && b.start <= a.end)
        {
            return Answer::Whole;
        }
    }
    Answer::Partial(ranges)
}

/// A `multipart/byteranges` body: each range as a part with its own
/// `Content-Type` (if any) and `Content-Range`.
pub fn multipart(
    body: &[u8],
    ranges: &[ByteRange],
    content_type: Option<&str>,
    boundary: &str,
) -> Vec<u8> {
    let total = body.len() as u64;
    let size: u64 = ranges.iter().map(|r| r.byte_count() + 128).sum();
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    for range in ranges {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if let Some(ct) = content_type {
            out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!("Content-Range: {}\r\n\r\n", range.content_range(total)).as_bytes(),
        );
        out.extend_from_slice(slice(body, *range));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

/// The bytes of one range (ranges from [`plan`] are within the body).
pub fn slice(body: &[u8], range: ByteRange) -> &[u8] {
    let start = usize::try_from(range.start)
        .unwrap_or(usize::MAX)
        .min(body.len());
    let end = usize::try_from(range.end)
        .map_or(body.len(), |e| e.saturating_add(1))
        .min(body.len());
    &body[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    #[test]
    fn single_suffix_and_open_ranges() {
        assert_eq!(parse("bytes=0-9", 100), Answer::Partial(vec![r(0, 9)]));
        assert_eq!(parse("bytes=90-", 100), Answer::Partial(vec![r(90, 99)]));
        assert_eq!(parse("bytes=-10", 100), Answer::Partial(vec![r(90, 99)]));
        assert_eq!(parse("bytes=-1000", 100), Answer::Partial(vec![r(0, 99)]));
        assert_eq!(
            parse("bytes=50-1000", 100),
            Answer::Partial(vec![r(50, 99)])
        );
        assert_eq!(parse("Bytes = 0-0", 100), Answer::Partial(vec![r(0, 0)]));
        assert_eq!(parse("bytes=0-", 100), Answer::Partial(vec![r(0, 99)]));
    }

    #[test]
    fn several_ranges() {
        assert_eq!(
            parse("bytes=0-9, 20-29,-5", 100),
            Answer::Partial(vec![r(0, 9), r(20, 29), r(95, 99)])
        );
        // Unsatisfiable ones are dropped while others remain.
        assert_eq!(
            parse("bytes=0-9,500-600", 100),
            Answer::Partial(vec![r(0, 9)])
        );
        // Overlapping: the whole body.
        assert_eq!(parse("bytes=0-50,40-60", 100), Answer::Whole);
        let many = (0..20)
            .map(|i| format!("{}-{}", i * 2, i * 2))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse(&format!("bytes={many}"), 100), Answer::Whole);
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(parse("bytes=100-", 100), Answer::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Answer::Unsatisfiable);
        assert_eq!(parse("bytes=0-", 0), Answer::Unsatisfiable);
        for ignored in [
            "bytes=9-0",
            "items=0-9",
            "bytes=a-b",
            "bytes",
            "bytes=",
            "bytes=1",
            "bytes=--1",
            "bytes=0-1-2",
            "bytes=+1-2",
        ] {
            assert_eq!(parse(ignored, 100), Answer::Whole, "{ignored}");
        }
        assert_eq!(
            parse("bytes=0-99999999999999999999999", 100),
            Answer::Partial(vec![r(0, 99)])
        );
    }

    #[test]
    fn if_range() {
        let etag = Some("\"abc\"");
        let date = Some("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            plan(Some("bytes=0-9"), Some("\"abc\""), etag, date, 100),
            Answer::Partial(vec![r(0, 9)])
        );
        assert_eq!(
            plan(Some("bytes=0-9"), Some("\"old\""), etag, date, 100),
            Answer::Whole
        );
        assert_eq!(
            plan(
                Some("bytes=0-9"),
                Some("W/\"abc\""),
                Some("W/\"abc\""),
                date,
                100
            ),
            Answer::Whole
        );
        assert_eq!(
            plan(Some("bytes=0-9"), date, etag, date, 100),
            Answer::Partial(vec![r(0, 9)])
        );
        assert_eq!(
            plan(
                Some("bytes=0-9"),
                Some("Thu, 22 Oct 2015 07:28:00 GMT"),
                etag,
                date,
                100
            ),
            Answer::Whole
        );
        assert_eq!(plan(None, Some("\"abc\""), etag, date, 100), Answer::Whole);
    }

    #[test]
    fn multipart_body() {
        let body = b"0123456789";
        let out = multipart(body, &[r(0, 1), r(8, 9)], Some("image/jpeg"), "XYZ");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "--XYZ\r\nContent-Type: image/jpeg\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n\
             --XYZ\r\nContent-Type: image/jpeg\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n--XYZ--\r\n"
        );
        assert_eq!(slice(body, r(3, 5)), b"345");
        assert_eq!(r(3, 5).byte_count(), 3);
    }
}
