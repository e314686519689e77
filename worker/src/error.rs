//! Why an image could not be checked.
//!
//! Every such failure goes through the route's fail mode (`open`: pass and
//! report "unscanned"; `closed`: 503), so the variants say where the fault
//! is, as in a proxy: the content (too big, not decodable), the index (KV
//! unreachable or a corrupt value), or the transfer of the body. The short
//! [`ScanError::reason`] code travels in "unscanned" events.

use hashgate::index::ResolveError;
use hashgate::HashError;
use thiserror::Error;

use crate::multipart::MultipartError;
use crate::policy::PolicyError;

/// Why the worker's configuration is unusable (every request then answers
/// 500 with this message, rather than silently not scanning).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("POLICY is kv:{key}: {problem}")]
    KvPolicy { key: String, problem: String },
    #[error("ORIGIN {0:?} must be an http:// or https:// base URL without a path, e.g. http://127.0.0.1:8080")]
    Origin(String),
}

/// Checks the `ORIGIN` variable: `scheme://host[:port]`, nothing after.
pub fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or_else(|| ConfigError::Origin(origin.to_owned()))?;
    if rest.is_empty() || rest.contains(['/', '?', '#']) || rest.chars().any(char::is_whitespace) {
        return Err(ConfigError::Origin(origin.to_owned()));
    }
    Ok(())
}

/// Why an image was not checked.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// The body is larger than the route's `max_bytes`.
    #[error("body is over the route's cap of {cap} bytes")]
    OverCap { cap: usize },
    /// The hasher refused the image (corrupt, truncated, unsupported, over
    /// the decoder's limits, a decompression bomb).
    #[error("image could not be hashed: {0}")]
    Hash(#[from] HashError),
    /// A multipart upload could not be parsed.
    #[error("upload could not be parsed: {0}")]
    Multipart(#[from] MultipartError),
    /// Workers KV answered with an error.
    #[error("hash index unavailable: {0}")]
    IndexUnavailable(String),
    /// Workers KV did not answer within the route's `kv_timeout_ms`.
    #[error("hash index did not answer within {ms} ms")]
    IndexTimeout { ms: u32 },
    /// A value read from the index is corrupt.
    #[error("hash index value is corrupt: {0}")]
    IndexCorrupt(#[from] ResolveError),
    /// The route's threshold is beyond what the index can answer (cannot
    /// happen with a validated policy; kept so it is not a panic).
    #[error("query refused by the index: {0}")]
    Query(#[from] hashgate::index::QueryError),
    /// Reading the body from the client or the origin failed.
    #[error("reading the body failed: {0}")]
    Body(String),
}

impl ScanError {
    /// A short code for events and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            ScanError::OverCap { .. } => "over-cap",
            ScanError::Hash(HashError::UnsupportedFormat) => "unsupported-format",
            ScanError::Hash(HashError::UndecodableFormat(_)) => "undecodable-format",
            ScanError::Hash(HashError::NoRaster) => "no-raster",
            ScanError::Hash(
                HashError::DimensionsTooLarge { .. }
                | HashError::InputTooLarge { .. }
                | HashError::MemoryLimit { .. },
            ) => "over-limits",
            ScanError::Hash(_) => "undecodable",
            ScanError::Multipart(_) => "bad-multipart",
            ScanError::IndexUnavailable(_) => "index-unavailable",
            ScanError::IndexTimeout { .. } => "index-timeout",
            ScanError::IndexCorrupt(_) => "index-corrupt",
            ScanError::Query(_) => "bad-query",
            ScanError::Body(_) => "body-error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_must_be_a_base_url() {
        assert!(check_origin("http://127.0.0.1:8080").is_ok());
        assert!(check_origin("https://origin.example.com").is_ok());
        assert!(check_origin("127.0.0.1:8080").is_err());
        assert!(check_origin("http://").is_err());
        assert!(check_origin("http://a.com/images").is_err());
        assert!(check_origin("ftp://a.com").is_err());
    }

    #[test]
    fn reasons() {
        assert_eq!(ScanError::OverCap { cap: 1 }.reason(), "over-cap");
        assert_eq!(
            ScanError::Hash(HashError::Truncated("x".into())).reason(),
            "undecodable"
        );
        let bomb = HashError::DimensionsTooLarge {
            width: 50_000,
            height: 50_000,
            reason: "width",
        };
        assert_eq!(ScanError::Hash(bomb).reason(), "over-limits");
        assert_eq!(
            ScanError::IndexUnavailable("down".into()).reason(),
            "index-unavailable"
        );
        assert_eq!(ScanError::IndexTimeout { ms: 5 }.reason(), "index-timeout");
        assert_eq!(
            ScanError::Hash(HashError::UndecodableFormat(hashgate::ImageFormat::Avif)).reason(),
            "undecodable-format"
        );
    }
}
