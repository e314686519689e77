//! Content codings: which ones a body still carries when the worker reads
//! it, and decoding them for scanning.
//!
//! The runtime's `fetch` decodes a response body only when its
//! `Content-Encoding` is exactly `gzip` or `br` (workerd compares the whole
//! value, case-sensitively); every other value (`deflate`, `x-gzip`,
//! `GZIP`, `zstd`, stacked codings such as `gzip, br`) leaves the bytes
//! encoded. The client gets them encoded too, and a browser decodes all of
//! those, so the scan must decode them as well: [`remaining`] says what is
//! left to undo, [`decode`] undoes it (last applied first) under the
//! route's cap, so a decompression bomb is a [`DecodeError::OverCap`], never
//! an allocation.
//!
//! Decoded here: `gzip`/`x-gzip`, `deflate` (zlib-wrapped, or raw as some
//! servers send it), `br`, `zstd`, `identity`. Anything else
//! ([`DecodeError::Unknown`]) or bytes that do not decode
//! ([`DecodeError::Corrupt`]) cannot be checked; the caller applies the
//! route's fail mode to image-typed and untyped bodies.

use std::io::Read;

use thiserror::Error;

/// A content coding this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unknown content coding {0:?}")]
    Unknown(String),
    #[error("{coding:?} body does not decode: {detail}")]
    Corrupt { coding: Coding, detail: String },
    #[error("decoded body is over the cap of {cap} bytes")]
    OverCap { cap: usize },
}

/// The codings a `Content-Encoding` value names, in the order they were
/// applied (decode from the last). A request body arrives with all of them:
/// the runtime decodes none.
pub fn applied(header: Option<&str>) -> Result<Vec<Coding>, DecodeError> {
    let mut codings = Vec::new();
    for token in header.unwrap_or("").split(',') {
        let token = token.trim().to_ascii_lowercase();
        match token.as_str() {
            "" | "identity" => {}
            "gzip" | "x-gzip" => codings.push(Coding::Gzip),
            "deflate" => codings.push(Coding::Deflate),
            "br" => codings.push(Coding::Brotli),
            "zstd" => codings.push(Coding::Zstd),
            _ => return Err(DecodeError::Unknown(token)),
        }
    }
    Ok(codings)
}

/// Whether a `Content-Encoding` value leaves the bytes as they are.
pub fn is_identity(header: Option<&str>) -> bool {
    header
        .unwrap_or("")
        .split(',')
        .all(|c| c.trim().is_empty() || c.trim().eq_ignore_ascii_case("identity"))
}

/// The codings a response body read from the runtime still carries, in
/// the order they were applied (decode from the last). `header` is the
/// response's `Content-Encoding`.
pub fn remaining(header: Option<&str>) -> Result<Vec<Coding>, DecodeError> {
    match header {
        Some(value) if runtime_decodes(value) => Ok(Vec::new()),
        other => applied(other),
    }
}

/// Whether the runtime's `fetch` decodes a body with this
/// `Content-Encoding` itself (so its `Content-Length` does not count the
/// bytes read).
pub fn runtime_decodes(value: &str) -> bool {
    value == "gzip" || value == "br"
}

/// Undoes `codings` (last applied first); the result may not exceed `cap`.
pub fn decode(bytes: Vec<u8>, codings: &[Coding], cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut current = bytes;
    for &coding in codings.iter().rev() {
        current = decode_one(&current, coding, cap, false)?;
    }
    Ok(current)
}

/// The first bytes of the decoded body, from a prefix of the encoded one
/// (for sniffing): at most `want` bytes; fewer when the prefix is too short.
pub fn decode_prefix(prefix: &[u8], codings: &[Coding], want: usize) -> Vec<u8> {
    let mut current = prefix.to_vec();
    for &coding in codings.iter().rev() {
        // Inner layers need as many bytes as the outer one yields.
        match decode_one(&current, coding, 64 * 1024, true) {
            Ok(next) => current = next,
            Err(_) => return Vec::new(),
        }
    }
    current.truncate(want);
    current
}

/// Decodes one layer, reading at most `cap + 1` bytes of output. `partial`:
/// the input may be cut short, keep what decoded.
fn decode_one(
    input: &[u8],
    coding: Coding,
    cap: usize,
    partial: bool,
) -> Result<Vec<u8>, DecodeError> {
    let corrupt = |detail: String| DecodeError::Corrupt { coding, detail };
    let limit = cap as u64 + 1;
    let mut out = Vec::new();
    let result = match coding {
        Coding::Gzip => flate2::read::MultiGzDecoder::new(input)
            .take(limit)
            .read_to_end(&mut out),
        Coding::Deflate => {
            // RFC 9110 deflate is zlib-wrapped; some servers send raw deflate.
            let zlib = input.first().is_some_and(|b| b & 0x0f == 8)
                && input.len() >= 2
                && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
            if zlib {
                flate2::read::ZlibDecoder::new(input)
                    .take(limit)
                    .read_to_end(&mut out)
            } else {
                flate2::read::DeflateDecoder::new(input)
                    .take(limit)
                    .read_to_end(&mut out)
            }
        }
        Coding::Brotli => brotli_decompressor::Decompressor::new(input, 4096)
            .take(limit)
            .read_to_end(&mut out),
        Coding::Zstd => match ruzstd::decoding::StreamingDecoder::new(input) {
            Ok(decoder) => decoder.take(limit).read_to_end(&mut out),
            Err(e) => return Err(corrupt(e.to_string())),
        },
    };
    if out.len() > cap {
        return Err(DecodeError::OverCap { cap });
    }
    match result {
        Ok(_) => Ok(out),
        Err(_) if partial => Ok(out),
        Err(e) => Err(corrupt(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const BODY: &[u8] =
        b"\xff\xd8\xff\xe0 an image, or so its first bytes say; repeated repeated repeated";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    // Made with Node's `zlib.brotliCompressSync(Buffer.from("\xff\xd8\xff\xe0 hello", "latin1"))`
    // and `printf '\xff\xd8\xff\xe0 hello' | zstd -c | xxd -i`.
    const BR_HELLO: &[u8] = &[
        0x1b, 0x09, 0x00, 0xf8, 0x27, 0xff, 0xc1, 0xb1, 0x63, 0x94, 0x18, 0x48, 0x7e, 0x02,
    ];
    const ZSTD_HELLO: &[u8] = &[
        0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0x51, 0x00, 0x00, 0xff, 0xd8, 0xff, 0xe0, 0x20, 0x68,
        0x65, 0x6c, 0x6c, 0x6f, 0xc5, 0x82, 0x35, 0x0c,
    ];

    #[test]
    fn what_the_runtime_left() {
        assert_eq!(remaining(None), Ok(vec![]));
        assert_eq!(remaining(Some("gzip")), Ok(vec![]));
        assert_eq!(remaining(Some("br")), Ok(vec![]));
        assert_eq!(remaining(Some("identity")), Ok(vec![]));
        assert_eq!(remaining(Some("GZIP")), Ok(vec![Coding::Gzip]));
        assert_eq!(remaining(Some("x-gzip")), Ok(vec![Coding::Gzip]));
        assert_eq!(remaining(Some("gzip ")), Ok(vec![Coding::Gzip]));
        assert_eq!(remaining(Some("deflate")), Ok(vec![Coding::Deflate]));
        assert_eq!(
            remaining(Some("gzip, br")),
            Ok(vec![Coding::Gzip, Coding::Brotli])
        );
        assert_eq!(remaining(Some("zstd")), Ok(vec![Coding::Zstd]));
        assert_eq!(
            remaining(Some("compress")),
            Err(DecodeError::Unknown("compress".into()))
        );
        assert_eq!(
            remaining(Some("gzip, dcb")),
            Err(DecodeError::Unknown("dcb".into()))
        );
    }

    #[test]
    fn decodes_every_coding_and_stacks() {
        assert_eq!(decode(gzip(BODY), &[Coding::Gzip], 1 << 20).unwrap(), BODY);
        assert_eq!(
            decode(zlib(BODY), &[Coding::Deflate], 1 << 20).unwrap(),
            BODY
        );
        assert_eq!(
            decode(raw_deflate(BODY), &[Coding::Deflate], 1 << 20).unwrap(),
            BODY
        );
        let hello = b"\xff\xd8\xff\xe0 hello";
        assert_eq!(
            decode(BR_HELLO.to_vec(), &[Coding::Brotli], 100).unwrap(),
            hello
        );
        assert_eq!(
            decode(ZSTD_HELLO.to_vec(), &[Coding::Zstd], 100).unwrap(),
            hello
        );
        // "deflate, gzip": deflated first, then gzipped.
        let stacked = gzip(&zlib(BODY));
        assert_eq!(
            decode(stacked, &[Coding::Deflate, Coding::Gzip], 1 << 20).unwrap(),
            BODY
        );
    }

    #[test]
    fn refuses_what_does_not_decode_or_is_too_big() {
        assert!(matches!(
            decode(b"not gzip".to_vec(), &[Coding::Gzip], 100),
            Err(DecodeError::Corrupt { .. })
        ));
        assert!(matches!(
            decode(b"not zstd".to_vec(), &[Coding::Zstd], 100),
            Err(DecodeError::Corrupt { .. })
        ));
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 64 * 1024);
        assert_eq!(
            decode(bomb, &[Coding::Gzip], 1 << 20),
            Err(DecodeError::OverCap { cap: 1 << 20 })
        );
    }

    #[test]
    fn prefixes_decode_for_sniffing() {
        let encoded = zlib(BODY);
        let prefix = decode_prefix(&encoded[..encoded.len() - 4], &[Coding::Deflate], 4);
        assert_eq!(prefix, b"\xff\xd8\xff\xe0");
        assert_eq!(decode_prefix(b"junk", &[Coding::Gzip], 4), b"");
    }
}
