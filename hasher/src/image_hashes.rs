//! One call from image bytes to every hash hashgate matches on.

use serde::Serialize;

use crate::decode::{self, DecodeOptions, ImageFormat};
use crate::digest::ExactDigests;
use crate::error::HashError;
use crate::hashes::{Md5Digest, PdqHash, Sha1Digest, Sha256Digest};
use crate::pdq;
use crate::variants::{self, Variant, VariantHash, VariantOptions};

/// What to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashOptions {
    pub decode: DecodeOptions,
    /// Also compute the 8 dihedral PDQ hashes (rotations and mirrors).
    pub dihedral: bool,
    /// Extra query hashes for altered copies (rotations, mirrors, borders).
    pub variants: VariantOptions,
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
    /// Extra query hashes, when asked for ([`HashOptions::variants`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantHash>,
}

impl ImageHashes {
    /// Every PDQ hash to query with, labelled, the image's own first:
    /// its own hash, the 8 dihedral ones when computed, and the variants.
    /// Duplicates are dropped.
    pub fn query_pdq(&self) -> Vec<(Variant, PdqHash)> {
        let mut out = vec![(Variant::Original, self.pdq)];
        let dihedral = self.dihedral.iter().flat_map(|all| {
            crate::pdq::Dihedral::ALL
                .into_iter()
                .zip(all.iter().copied())
                .skip(1)
                .map(|(d, h)| (Variant::Derived(d), h))
        });
        let extra = self.variants.iter().map(|v| (v.variant, v.pdq));
        for (variant, hash) in dihedral.chain(extra) {
            if !out.iter().any(|(_, h)| *h == hash) {
                out.push((variant, hash));
            }
        }
        out
    }
}

/// Decodes `bytes` and computes PDQ (and its dihedral variants if asked)
/// and the exact digests.
pub fn hash_image(bytes: &[u8], options: &HashOptions) -> Result<ImageHashes, HashError> {
    hash_image_then(bytes, options, || ExactDigests::of(bytes))
}

/// [`hash_image`] with the exact digests of `bytes` computed elsewhere: the
/// edge worker has the runtime's native digests, several times faster than
/// these compiled to wasm, and needs SHA-256 before hashing anyway.
pub fn hash_image_with_digests(
    bytes: &[u8],
    options: &HashOptions,
    digests: ExactDigests,
) -> Result<ImageHashes, HashError> {
    hash_image_then(bytes, options, || digests)
}

/// Decodes and hashes, then takes the digests: an input refused from its
/// header costs no digest.
fn hash_image_then(
    bytes: &[u8],
    options: &HashOptions,
    digests: impl FnOnce() -> ExactDigests,
) -> Result<ImageHashes, HashError> {
    let decoded = decode::decode(bytes, &options.decode)?;
    let (width, height) = decoded.display_dimensions();
    let format = decoded.format;
    let full_scale = decoded.full_scale();
    // The variants' own plane, at most MAX_VARIANT_PIXELS samples.
    let kept = options
        .variants
        .any()
        .then(|| variants::for_variants(&decoded.luma, full_scale));
    let output = pdq::hash_luma_scaled(decoded.luma, Some(full_scale));
    let variants = match kept {
        Some((luma, scale)) => variants::variant_hashes(&luma, scale, &output, options.variants),
        None => Vec::new(),
    };
    let digests = digests();
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
        variants,
    })
}
