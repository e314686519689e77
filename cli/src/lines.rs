//! The JSON shapes hashgate prints and serves.
//!
//! `hashgate hash`, `hashgate match`, `hashgate scan` and `hashgate serve`
//! build their output from these types, so an image hashed or matched over
//! HTTP gives byte for byte the JSON the command line prints for it, and a
//! scan line carries the same fields as both.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use hashgate::matching::MatchRecord;

use crate::exit::{Outcome, Tally};
use hashgate::variants::VariantHash;
use hashgate::{HashError, ImageHashes};
use serde::Serialize;

/// Prints one JSON line per `(line, failed)` on standard output, in order,
/// and gives the exit status: failure when any line is a failure.
pub fn print_lines<T: Serialize>(
    lines: impl IntoIterator<Item = (T, Outcome)>,
) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut tally = Tally::default();
    for (line, outcome) in lines {
        tally.add(outcome);
        serde_json::to_writer(&mut out, &line).context("writing output")?;
        out.write_all(b"\n").context("writing output")?;
    }
    out.flush().context("writing output")?;
    Ok(tally.exit_code())
}

/// The hashes of one image: a `hashgate hash` line, the `/v1/hash` body.
#[derive(Debug, Serialize)]
pub struct HashLine<'a> {
    pub file: &'a str,
    /// The exact bytes of a file name that is not UTF-8 (`hashgate scan`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_base64: Option<&'a str>,
    pub width: u32,
    pub height: u32,
    pub pdq: String,
    pub quality: u8,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dihedral: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantHash>,
    /// What a viewer sees where it differs (alpha, frames, SVG images).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<VariantHash>,
}

impl<'a> HashLine<'a> {
    pub fn new(file: &'a str, h: &ImageHashes) -> Self {
        HashLine {
            file,
            file_base64: None,
            width: h.width,
            height: h.height,
            pdq: h.pdq.to_string(),
            quality: h.quality,
            md5: h.md5.to_string(),
            sha1: h.sha1.to_string(),
            sha256: h.sha256.to_string(),
            dihedral: h
                .dihedral
                .as_ref()
                .map(|all| all.iter().map(ToString::to_string).collect()),
            variants: h.variants.clone(),
            views: h.views.clone(),
        }
    }
}

/// The result of one query: a `hashgate match` line, the `/v1/match` body.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum MatchOutput {
    Matched {
        query: String,
        matches: Vec<MatchRecord>,
    },
    Failed {
        query: String,
        error: String,
    },
}

/// A short, stable name for why an image was not hashed: the `kind` of a
/// service error body and of a scan error line, and the label of the
/// service's error counter. The message (`Display`) may change wording;
/// these do not.
pub fn hash_error_kind(error: &HashError) -> &'static str {
    match error {
        HashError::Empty => "empty",
        HashError::UnsupportedFormat => "unsupported_format",
        HashError::InputTooLarge { .. } => "input_too_large",
        HashError::DimensionsTooLarge { .. } => "dimensions_too_large",
        HashError::NoPixels { .. } => "no_pixels",
        HashError::Truncated(_) => "truncated",
        HashError::Malformed(_) => "malformed",
        HashError::MemoryLimit { .. } => "memory_limit",
        HashError::UndecodableFormat(_) => "undecodable_format",
        HashError::NoRaster => "no_raster",
        // `HashError` is non-exhaustive: a new cause is still a bad image.
        _ => "bad_image",
    }
}
