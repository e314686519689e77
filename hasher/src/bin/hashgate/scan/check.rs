//! One file, start to verdict: sniff the first bytes, read, hash, look up.
//!
//! Most of what a scan walks is not images (logs, HTML, archives), so the
//! first few bytes decide before anything else is read: a non-image costs
//! one open and one small read. Every failure becomes an [`Outcome`]; no
//! file can stop the scan.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use hashgate::{hash_image, sniff, HashOptions, ImageHashes};

use crate::lines::{hash_error_kind, MatchLine};
use crate::matching::{MatchSettings, MemoryIndex};

/// Bytes read to recognise a format ([`hashgate::sniff`] needs 14 for BMP).
const HEAD_BYTES: usize = 32;

/// What became of one file.
#[derive(Debug)]
pub enum Outcome {
    /// Hashed and looked up; `matches` may be empty.
    Checked {
        hashes: Box<ImageHashes>,
        matches: Vec<MatchLine>,
    },
    /// Not an image by its first bytes (or empty).
    NotImage,
    /// Could not be read, hashed or looked up.
    Failed { kind: &'static str, error: String },
}

/// Checks the file at `path`.
pub fn check(
    path: &Path,
    settings: &MatchSettings,
    options: &HashOptions,
    index: &MemoryIndex,
) -> Outcome {
    let failed = |kind, error: String| Outcome::Failed { kind, error };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return failed("unreadable", format!("cannot read: {e}")),
    };
    let mut bytes = Vec::new();
    if let Err(e) = (&mut file).take(HEAD_BYTES as u64).read_to_end(&mut bytes) {
        return failed("unreadable", format!("cannot read: {e}"));
    }
    if sniff(&bytes).is_none() {
        return Outcome::NotImage;
    }
    let limit = options.decode.limits.max_input_bytes;
    let len = file.metadata().map_or(0, |m| m.len());
    if len > limit as u64 {
        return failed(
            "input_too_large",
            format!("input is {len} bytes, over the limit of {limit} bytes"),
        );
    }
    bytes.reserve(len as usize);
    // `take` keeps a file that grows while it is read within the limit.
    if let Err(e) = file.take(limit as u64 + 1).read_to_end(&mut bytes) {
        return failed("unreadable", format!("cannot read: {e}"));
    }
    let hashes = match hash_image(&bytes, options) {
        Ok(hashes) => hashes,
        Err(e) => return failed(hash_error_kind(&e), e.to_string()),
    };
    match index.find(&settings.image_query(&hashes)) {
        Ok(matches) => Outcome::Checked {
            matches: MatchLine::for_image(&hashes, matches),
            hashes: Box::new(hashes),
        },
        Err(e) => failed("index", format!("index lookup failed: {e}")),
    }
}
