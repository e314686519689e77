//! Undoing a request body's `Content-Encoding` before it is scanned.
//!
//! The runtime hands a request body to the worker as the client sent it,
//! compressed or not, and origins (or the frameworks and proxies in front
//! of them) may decompress it before reading the form inside. So a scanning
//! route decodes `gzip` (`x-gzip`, concatenated members too), `deflate`
//! (zlib-wrapped, or raw as some clients send it) and `br`, in the reverse
//! of the order they were applied, up to [`MAX_CODINGS`] layers, and never
//! past the route's cap on decoded bytes (a small body may inflate to
//! gigabytes). A coding it cannot undo, or data that does not decode, is an
//! error: the caller applies the route's fail mode, since the origin might
//! read what the worker cannot. The origin still receives the bytes the
//! client sent.

use std::borrow::Cow;
use std::io::Read;

use thiserror::Error;

/// At most this many codings in one `Content-Encoding`.
pub const MAX_CODINGS: usize = 4;

/// Why a body's `Content-Encoding` could not be undone.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ContentEncodingError {
    #[error("Content-Encoding {0:?} is not one the worker decodes (gzip, deflate, br)")]
    Unsupported(String),
    #[error("more than {MAX_CODINGS} content codings")]
    TooMany,
    #[error("the body does not decode as {coding}: {detail}")]
    Corrupt { coding: String, detail: String },
    #[error("the decoded body is over the route's cap of {cap} bytes")]
    OverCap { cap: usize },
}

/// The codings in a `Content-Encoding` value, in the order applied,
/// lowercased, `identity` left out.
pub fn codings(header: Option<&str>) -> Vec<String> {
    header
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect()
}

/// `body` with every coding of `header` undone, at most `cap` bytes.
pub fn decode<'a>(
    header: Option<&str>,
    body: &'a [u8],
    cap: usize,
) -> Result<Cow<'a, [u8]>, ContentEncodingError> {
    let codings = codings(header);
    if codings.len() > MAX_CODINGS {
        return Err(ContentEncodingError::TooMany);
    }
    let mut data = Cow::Borrowed(body);
    for coding in codings.iter().rev() {
        data = Cow::Owned(decode_one(coding, &data, cap)?);
    }
    Ok(data)
}

fn decode_one(coding: &str, data: &[u8], cap: usize) -> Result<Vec<u8>, ContentEncodingError> {
    match coding {
        "gzip" | "x-gzip" => read_all(coding, flate2::read::MultiGzDecoder::new(data), cap),
        "deflate" => {
            read_all(coding, flate2::read::ZlibDecoder::new(data), cap).or_else(|zlib| match zlib {
                ContentEncodingError::OverCap { .. } => Err(zlib),
                _ => read_all(coding, flate2::read::DeflateDecoder::new(data), cap),
            })
        }
        "br" => read_all(
            coding,
            brotli_decompressor::Decompressor::new(data, 4096),
            cap,
        ),
        other => Err(ContentEncodingError::Unsupported(other.to_owned())),
    }
}

fn read_all(coding: &str, reader: impl Read, cap: usize) -> Result<Vec<u8>, ContentEncodingError> {
    let mut out = Vec::new();
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ContentEncodingError::Corrupt {
            coding: coding.to_owned(),
            detail: e.to_string(),
        })?;
    if out.len() > cap {
        return Err(ContentEncodingError::OverCap { cap });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn decodes_each_coding_and_stacks() {
        let data = b"--b\r\n\r\n\xff\xd8\xff\r\n--b--".repeat(10);
        assert_eq!(decode(Some("gzip"), &gzip(&data), 1 << 20).unwrap(), data);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        assert_eq!(
            decode(Some("Deflate"), &z.finish().unwrap(), 1 << 20).unwrap(),
            data
        );
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&data).unwrap();
        assert_eq!(
            decode(Some("deflate"), &raw.finish().unwrap(), 1 << 20).unwrap(),
            data
        );
        // `--b\r\n\r\nhello brotli\r\n--b--`, by Node's zlib.brotliCompressSync.
        let br =
            hex::decode("8b0c802d2d620d0a0d0a68656c6c6f2062726f746c690d0a2d2d622d2d03").unwrap();
        assert_eq!(
            decode(Some("br"), &br, 100).unwrap(),
            &b"--b\r\n\r\nhello brotli\r\n--b--"[..]
        );
        let twice = gzip(&gzip(&data));
        assert_eq!(decode(Some("gzip, x-gzip"), &twice, 1 << 20).unwrap(), data);
        assert!(matches!(
            decode(Some("identity"), &data, 10).unwrap(),
            Cow::Borrowed(_)
        ));
        assert!(matches!(decode(None, &data, 10).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn refuses_what_it_cannot_decode() {
        let data = vec![0u8; 100_000];
        assert_eq!(
            decode(Some("gzip"), &gzip(&data), 1000),
            Err(ContentEncodingError::OverCap { cap: 1000 })
        );
        assert_eq!(
            decode(Some("zstd"), b"x", 10),
            Err(ContentEncodingError::Unsupported("zstd".into()))
        );
        assert!(matches!(
            decode(Some("gzip"), b"not gzip", 10),
            Err(ContentEncodingError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(Some("br"), b"\xff\xff\xff not brotli", 10),
            Err(ContentEncodingError::Corrupt { .. })
        ));
        assert_eq!(
            decode(Some("gzip,gzip,gzip,gzip,gzip"), b"x", 10),
            Err(ContentEncodingError::TooMany)
        );
    }
}
