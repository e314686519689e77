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

use crate::budget::BudgetError;
use crate::encoding::DecodeError;
use crate::multipart::MultipartError;
use crate::policy::PolicyError;
use crate::upload::{UploadError, MAX_IMAGES};

/// Why the worker's configuration is unusable. Logged, never shown: a bad
/// policy is replaced by the last good one or the safe default
/// ([`crate::policy::Policy::safe_default`]); a bad `ORIGIN` answers a bare
/// 500.
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
    /// An upload holds more images than are checked.
    #[error("upload holds more than {MAX_IMAGES} images")]
    TooManyImages,
    /// Workers KV answered with an error.
    #[error("hash index unavailable: {0}")]
    IndexUnavailable(String),
    /// Workers KV did not answer within the route's `kv_timeout_ms`.
    #[error("hash index did not answer within {ms} ms")]
    IndexTimeout { ms: u32 },
    /// A value read from the index is corrupt.
    #[error("hash index value is corrupt: {0}")]
    IndexCorrupt(#[from] ResolveError),
    /// The index has no current generation: nothing was uploaded to this
    /// namespace (or to the local store instead of the deployed one), or the
    /// binding points at the wrong namespace. Never "no match".
    #[error("hash index has no current generation ({key} is missing): upload one with the commands `hashgate index build` prints")]
    IndexMissing { key: &'static str },
    /// The generation's manifest or snapshot is unreadable.
    #[error("hash index generation is unusable: {0}")]
    IndexGeneration(String),
    /// The route subscribes to lists the index does not hold (a typo would
    /// otherwise silently match nothing).
    #[error(
        "route subscribes to lists the index does not hold: {unknown:?} (the index has {known:?})"
    )]
    UnknownLists {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    /// The route's threshold is beyond what the index can answer (cannot
    /// happen with a validated policy; kept so it is not a panic).
    #[error("query refused by the index: {0}")]
    Query(#[from] hashgate::index::QueryError),
    /// Reading the body from the client or the origin failed.
    #[error("reading the body failed: {0}")]
    Body(String),
    /// The body's `Content-Encoding` (a response's, or an upload's) is
    /// unknown or does not decode.
    #[error("body could not be decoded: {0}")]
    Encoding(#[from] DecodeError),
    /// The isolate's memory budget had no room for the body.
    #[error("{0}")]
    Budget(#[from] BudgetError),
}

impl From<UploadError> for ScanError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Multipart(e) => ScanError::Multipart(e),
            UploadError::TooManyImages => ScanError::TooManyImages,
        }
    }
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
            ScanError::TooManyImages => "too-many-images",
            ScanError::IndexUnavailable(_) => "index-unavailable",
            ScanError::IndexTimeout { .. } => "index-timeout",
            ScanError::IndexCorrupt(_) | ScanError::IndexGeneration(_) => "index-corrupt",
            ScanError::IndexMissing { .. } => "index-missing",
            ScanError::UnknownLists { .. } => "unknown-list",
            ScanError::Query(_) => "bad-query",
            ScanError::Body(_) => "body-error",
            ScanError::Encoding(DecodeError::OverCap { .. }) => "over-cap",
            ScanError::Encoding(_) => "undecodable-encoding",
            ScanError::Budget(BudgetError::TooLarge { .. }) => "over-budget",
            ScanError::Budget(BudgetError::Busy { .. }) => "memory-busy",
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
        let missing = ScanError::IndexMissing { key: "hg2/current" };
        assert_eq!(missing.reason(), "index-missing");
        assert!(missing.to_string().contains("hg2/current"));
        assert_eq!(
            ScanError::Encoding(DecodeError::Unknown("compress".into())).reason(),
            "undecodable-encoding"
        );
        assert_eq!(
            ScanError::Encoding(DecodeError::OverCap { cap: 1 }).reason(),
            "over-cap"
        );
        let busy = BudgetError::Busy {
            budget: 1,
            waited_ms: 5,
        };
        assert_eq!(ScanError::Budget(busy).reason(), "memory-busy");
        assert_eq!(
            ScanError::Hash(HashError::UndecodableFormat(hashgate::ImageFormat::Avif)).reason(),
            "undecodable-format"
        );
    }
}
