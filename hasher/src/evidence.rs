//! Evidence objects: the format of the encrypted copies of matched images
//! (and of their sighting manifests) that the worker keeps in R2, shared by
//! the worker (which encrypts with Web Crypto) and the `hashgate evidence`
//! command (which decrypts natively).
//!
//! No cryptography here, only the layout, so this module stays pure and
//! builds for wasm without a cipher crate. An object is
//!
//! ```text
//! HGEV1 AES-256-GCM <key id> <nonce, base64> <sha256 of plaintext> <size> <content type>\n
//! <ciphertext and 16-byte tag>
//! ```
//!
//! The first line (the header) is also the AES-GCM additional data, so a
//! header edited after the fact (another key id, digest or size) fails
//! authentication instead of misleading whoever reads it. The key id names
//! the operator's key (a Worker secret): keys rotate by adding a new id,
//! and an object is always opened with the key it names. The nonce is 96
//! random bits per object; the header is plain text so that no JSON parser
//! is needed to read it and every field is checked ([`Envelope::parse`]).
//!
//! Keys in the bucket (one image object per SHA-256, one small manifest
//! per sighting, so sightings never race on a shared object):
//!
//! ```text
//! evidence/v1/<sha256>/object                      the image, encrypted
//! evidence/v1/<sha256>/sighting/<ms>-<request id>  a sighting's Manifest (JSON), encrypted
//! ```

use std::collections::BTreeMap;

use crate::matching::MatchRecord;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// First token of every object's header.
pub const MAGIC: &str = "HGEV1";
/// The only algorithm objects are written with.
pub const ALGORITHM: &str = "AES-256-GCM";
/// AES-256: 32-byte keys.
pub const KEY_BYTES: usize = 32;
/// 96-bit nonces, as recommended for GCM.
pub const NONCE_BYTES: usize = 12;
/// The GCM tag at the end of the ciphertext.
pub const TAG_BYTES: usize = 16;
/// Evidence is kept one year (18 U.S.C. 2258A(h), as amended by the REPORT
/// Act of 2024); the bucket's lifecycle rule deletes it a day after that.
pub const RETENTION_DAYS: u64 = 365;
/// Key prefix of everything evidence in the bucket.
pub const PREFIX: &str = "evidence/v1/";
/// Longest key id.
pub const MAX_KEY_ID: usize = 64;

/// Why an object or a key could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("not an evidence object (no {MAGIC} header line)")]
    NotEvidence,
    #[error("the header has {0} fields, expected 7")]
    Fields(usize),
    #[error("unknown algorithm {0:?}")]
    Algorithm(String),
    #[error("key id {0:?}: 1 to {MAX_KEY_ID} of A-Z a-z 0-9 . _ -")]
    KeyId(String),
    #[error("nonce: {0}")]
    Nonce(String),
    #[error("sha256 {0:?} is not 64 lowercase hex digits")]
    Sha256(String),
    #[error("size {0:?} is not a number")]
    Size(String),
    #[error("content type {0:?} is not a media type")]
    ContentType(String),
    #[error("ciphertext of {have} bytes for {size} bytes of plaintext (expected {want})")]
    Length { have: usize, size: u64, want: u64 },
    #[error("key: {0}")]
    Key(String),
    #[error("request id {0:?} cannot be part of a key")]
    RequestId(String),
}

/// The header line of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_id: String,
    pub nonce: [u8; NONCE_BYTES],
    /// SHA-256 of the plaintext, lowercase hex.
    pub sha256: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Media type of the plaintext (`image/jpeg`, `application/json`).
    pub content_type: String,
}

impl Header {
    /// Checks every field (what [`Header::line`] writes, [`Envelope::parse`]
    /// reads back).
    pub fn validate(&self) -> Result<(), EvidenceError> {
        check_key_id(&self.key_id)?;
        check_sha256(&self.sha256)?;
        check_content_type(&self.content_type)?;
        Ok(())
    }

    /// The header line, newline included: written first and used as the
    /// additional authenticated data.
    pub fn line(&self) -> Result<String, EvidenceError> {
        self.validate()?;
        Ok(format!(
            "{MAGIC} {ALGORITHM} {} {} {} {} {}\n",
            self.key_id,
            base64::engine::general_purpose::STANDARD.encode(self.nonce),
            self.sha256,
            self.size,
            self.content_type
        ))
    }
}

/// A parsed object: the header, its line (the additional data), and the
/// ciphertext with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub header: Header,
    pub aad: &'a [u8],
    pub ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    /// Reads an object, checking the header and that the ciphertext is as
    /// long as the plaintext size and the tag.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EvidenceError> {
        let end = bytes
            .iter()
            .take(512)
            .position(|&b| b == b'\n')
            .ok_or(EvidenceError::NotEvidence)?;
        let line = std::str::from_utf8(&bytes[..end]).map_err(|_| EvidenceError::NotEvidence)?;
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.first() != Some(&MAGIC) {
            return Err(EvidenceError::NotEvidence);
        }
        let [_, alg, key_id, nonce, sha256, size, content_type] = fields[..] else {
            return Err(EvidenceError::Fields(fields.len()));
        };
        if alg != ALGORITHM {
            return Err(EvidenceError::Algorithm(alg.to_owned()));
        }
        let nonce = base64::engine::general_purpose::STANDARD
            .decode(nonce)
            .map_err(|e| EvidenceError::Nonce(e.to_string()))?;
        let nonce: [u8; NONCE_BYTES] = nonce
            .try_into()
            .map_err(|v: Vec<u8>| EvidenceError::Nonce(format!("{} bytes, not 12", v.len())))?;
        let size: u64 = size
            .parse()
            .map_err(|_| EvidenceError::Size(size.to_owned()))?;
        let header = Header {
            key_id: key_id.to_owned(),
            nonce,
            sha256: sha256.to_owned(),
            size,
            content_type: content_type.to_owned(),
        };
        header.validate()?;
        let ciphertext = &bytes[end + 1..];
        let want = size.saturating_add(TAG_BYTES as u64);
        if ciphertext.len() as u64 != want {
            return Err(EvidenceError::Length {
                have: ciphertext.len(),
                size,
                want,
            });
        }
        Ok(Envelope {
            header,
            aad: &bytes[..=end],
            ciphertext,
        })
    }
}

/// Joins a header line and the ciphertext into an object.
pub fn object_bytes(header_line: &str, ciphertext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_line.len() + ciphertext.len());
    out.extend_from_slice(header_line.as_bytes());
    out.extend_from_slice(ciphertext);
    out
}

/// A key as the operator configures it: base64 of 32 random bytes
/// (`openssl rand -base64 32`).
pub fn parse_key(text: &str) -> Result<[u8; KEY_BYTES], EvidenceError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| EvidenceError::Key(format!("not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|v: Vec<u8>| EvidenceError::Key(format!("{} bytes, not 32", v.len())))
}

/// Checks a key id (it goes into headers and metadata).
pub fn check_key_id(id: &str) -> Result<(), EvidenceError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::KeyId(id.to_owned()))
    }
}

fn check_sha256(hex: &str) -> Result<(), EvidenceError> {
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(EvidenceError::Sha256(hex.to_owned()))
    }
}

fn check_content_type(media: &str) -> Result<(), EvidenceError> {
    let ok = media.len() <= 100
        && media.split_once('/').is_some_and(|(a, b)| {
            let token = |s: &str| {
                !s.is_empty()
                    && s.bytes().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'_')
                    })
            };
            token(a) && token(b)
        });
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::ContentType(media.to_owned()))
    }
}

/// The media type to record for a `Content-Type` value: its type/subtype,
/// lowercased, or `application/octet-stream`.
pub fn media_type(content_type: Option<&str>) -> String {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if check_content_type(&media).is_ok() {
        media
    } else {
        "application/octet-stream".to_owned()
    }
}

/// The key of the image object for a SHA-256.
pub fn object_key(sha256: &str) -> String {
    format!("{PREFIX}{sha256}/object")
}

/// The key prefix of the sightings of a SHA-256.
pub fn sightings_prefix(sha256: &str) -> String {
    format!("{PREFIX}{sha256}/sighting/")
}

/// The key of one sighting: time first (zero-padded, so a listing is in
/// time order), then the request id (only safe characters kept, so a
/// request id cannot walk out of the prefix).
pub fn sighting_key(sha256: &str, time_ms: u64, request_id: &str) -> String {
    let id: String = request_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    format!("{}{time_ms:015}-{id}", sightings_prefix(sha256))
}

/// Who sent an upload, as far as the request says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploader {
    /// `CF-Connecting-IP`.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The request headers the policy's `evidence.headers` lists.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The multipart field and file name, when the image was a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// What one sighting of an image was: kept encrypted beside the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub v: u32,
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub url: String,
    pub route: String,
    pub request_id: String,
    /// `response` or `upload`.
    pub direction: String,
    /// `blocked` or `flagged`.
    pub action: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub time_ms: u64,
    /// Best first.
    pub matches: Vec<MatchRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploader: Option<Uploader>,
    /// The image object and the key id it is encrypted with.
    pub object_key: String,
    pub key_id: String,
    /// RFC 3339: one year after the sighting.
    pub retain_until: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            key_id: "k2026".into(),
            nonce: [7; NONCE_BYTES],
            sha256: "ab".repeat(32),
            size: 3,
            content_type: "image/jpeg".into(),
        }
    }

    #[test]
    fn a_header_round_trips() {
        let line = header().line().unwrap();
        assert!(line.starts_with("HGEV1 AES-256-GCM k2026 "));
        let object = object_bytes(&line, &[0; 3 + TAG_BYTES]);
        let envelope = Envelope::parse(&object).unwrap();
        assert_eq!(envelope.header, header());
        assert_eq!(envelope.aad, line.as_bytes());
        assert_eq!(envelope.ciphertext.len(), 3 + TAG_BYTES);
    }

    #[test]
    fn bad_objects_are_refused() {
        let line = header().line().unwrap();
        // Truncated ciphertext.
        let object = object_bytes(&line, &[0; 3]);
        assert!(matches!(
            Envelope::parse(&object),
            Err(EvidenceError::Length { .. })
        ));
        // A plain image is not an object.
        assert_eq!(
            Envelope::parse(b"\xff\xd8\xff\xe0 jpeg").unwrap_err(),
            EvidenceError::NotEvidence
        );
        // A header with a space in a field has the wrong field count.
        let bad = line.replace("image/jpeg", "image/jpeg x");
        assert_eq!(
            Envelope::parse(&object_bytes(&bad, &[0; 19])).unwrap_err(),
            EvidenceError::Fields(8)
        );
        let bad = line.replace("k2026", "k/../x");
        assert!(matches!(
            Envelope::parse(&object_bytes(&bad, &[0; 19])),
            Err(EvidenceError::KeyId(_))
        ));
        let mut h = header();
        h.sha256 = "AB".repeat(32);
        assert!(h.line().is_err());
    }

    #[test]
    fn keys_and_media_types() {
        assert_eq!(parse_key(&format!("{}=", "A".repeat(43))).unwrap(), [0; 32]);
        assert!(parse_key("AAAA").is_err());
        assert_eq!(media_type(Some("Image/PNG; x=1")), "image/png");
        assert_eq!(media_type(Some("nonsense")), "application/octet-stream");
        assert_eq!(media_type(None), "application/octet-stream");
        let sha = "cd".repeat(32);
        assert_eq!(
            sighting_key(&sha, 12, "../../r 1"),
            format!("evidence/v1/{sha}/sighting/000000000000012-....r1")
        );
        assert!(sighting_key(&sha, 1, "x").starts_with(&sightings_prefix(&sha)));
        assert_eq!(object_key(&sha), format!("evidence/v1/{sha}/object"));
    }
}
