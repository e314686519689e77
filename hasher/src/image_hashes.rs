//! One call from image bytes to every hash hashgate matches on.

use serde::Serialize;

use crate::decode::{self, DecodeOptions, ImageFormat};
use crate::digest::ExactDigests;
use crate::error::HashError;
use crate::hashes::{Md5Digest, PdqHash, Sha1Digest, Sha256Digest};
use crate::pdq;

/// What to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashOptions {
    pub decode: DecodeOptions,
    /// Also compute the 8 dihedral PDQ hashes (rotations and mirrors).
    pub dihedral: bool,
}

/// The hashes of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageHashes {
    pub format: ImageFormat,
    /// As displayed (after EXIF orientation, when applied).
    pub width: u32,
    pub height: u32,
    pub pdq: PdqHash,
    /// PDQ quality, 0..=100.
    pub quality: u8,
    /// The 8 dihedral hashes in the order orig, rot90, rot180, rot270,
    /// flipx, flipy, flipp, flipm, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dihedral: Option<[PdqHash; 8]>,
    pub md5: Md5Digest,
    pub sha1: Sha1Digest,
    pub sha256: Sha256Digest,
}

/// Decodes `bytes` and computes PDQ (and its dihedral variants if asked)
/// and the exact digests.
pub fn hash_image(bytes: &[u8], options: &HashOptions) -> Result<ImageHashes, HashError> {
    let decoded = decode::decode(bytes, &options.decode)?;
    let (width, height) = decoded.display_dimensions();
    let format = decoded.format;
    let full_scale = decoded.full_scale();
    let output = pdq::hash_luma_scaled(decoded.luma, Some(full_scale));
    let digests = ExactDigests::of(bytes);
    Ok(ImageHashes {
        format,
        width,
        height,
        pdq: output.hash,
        quality: output.quality,
        dihedral: options.dihedral.then(|| output.dihedral()),
        md5: digests.md5,
        sha1: digests.sha1,
        sha256: digests.sha256,
    })
}
