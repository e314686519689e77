//! Index generations: which index the edge uses now, named in one small KV
//! value that every isolate reads at most once per refresh interval.
//!
//! An upload never changes what a generation holds. It writes the new
//! generation's values under their own keys, then replaces
//! [`CURRENT_KEY`] with a new [`Manifest`]. An isolate that reads the
//! manifest either sees the old generation, whose values are all still
//! there, or the new one, whose values were all written first. Verdicts are
//! remembered per generation, so none reached against an older index is
//! used once the new one is known, and the values of a generation can be
//! read with a long cache TTL, since they never change.
//!
//! Two layouts:
//! * `resident`: the whole index as one [`super::snapshot`], split into
//!   parts of at most [`PART_BYTES`] (a KV value holds 25 MiB), loaded once
//!   per isolate and generation and matched in memory. The default, for
//!   indexes up to [`RESIDENT_MAX_BYTES`] of snapshot (10^6 PDQ hashes
//!   with short ids).
//! * `buckets`: the `hg1/` bucket layout of [`super::layout`], read per query,
//!   for indexes too large to hold in an isolate's 128 MB.

use serde::{Deserialize, Serialize};

use super::build::KindCounts;
use super::ListName;
use std::collections::BTreeMap;

/// The key of the current generation's manifest.
pub const CURRENT_KEY: &str = "hg2/current";
/// Largest part of a resident snapshot, in bytes (KV's limit is 25 MiB).
pub const PART_BYTES: usize = 20 << 20;
/// Largest snapshot the resident layout is used for: 10^6 PDQ hashes with
/// ids of about 10 characters. With its PDQ tables (44 bytes a hash, 44 MB
/// at 10^6) and one part in flight while loading, it stays under an
/// isolate's 128 MB.
pub const RESIDENT_MAX_BYTES: usize = 52 << 20;
/// Format name in every manifest.
pub const FORMAT: &str = "hashgate-index";

/// How a generation's values are laid out in KV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One snapshot in parts, held in memory.
    Resident,
    /// The `hg1/` PDQ buckets and exact records, read per query.
    Buckets,
}

/// What [`CURRENT_KEY`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// The generation's name: the first 16 hex digits of the SHA-256 of its
    /// contents, so the same lists make the same generation.
    pub generation: String,
    pub layout: Layout,
    /// Resident: the keys of the snapshot's parts, in order. Buckets: empty.
    #[serde(default)]
    pub parts: Vec<String>,
    /// Resident: the snapshot's size in bytes.
    #[serde(default)]
    pub bytes: u64,
    /// Entries per list and kind.
    pub lists: BTreeMap<ListName, KindCounts>,
    /// When the generation was built, seconds since the Unix epoch.
    pub built_unix: u64,
}

impl Manifest {
    /// The key of part `index` of a resident generation.
    pub fn part_key(generation: &str, index: usize) -> String {
        format!("hg2/{generation}/part/{index}")
    }

    /// The generation name for content with SHA-256 `digest`.
    pub fn generation_name(digest: &[u8]) -> String {
        hex::encode(&digest[..digest.len().min(8)])
    }

    /// Checks what a reader relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format is {:?}, expected {FORMAT:?}", self.format));
        }
        if self.generation.is_empty()
            || self.generation.len() > 64
            || !self
                .generation
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("bad generation name {:?}", self.generation));
        }
        match self.layout {
            Layout::Resident if self.parts.is_empty() => {
                Err("a resident generation names no parts".to_owned())
            }
            Layout::Resident
                if self.bytes == 0
                    || self.bytes > (self.parts.len() as u64) * PART_BYTES as u64 =>
            {
                Err(format!(
                    "{} bytes do not fit {} parts",
                    self.bytes,
                    self.parts.len()
                ))
            }
            _ => Ok(()),
        }
    }
}

/// Splits a snapshot into parts of at most [`PART_BYTES`].
pub fn split_parts(snapshot: &[u8]) -> impl Iterator<Item = &[u8]> {
    snapshot.chunks(PART_BYTES)
}
