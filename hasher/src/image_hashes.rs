//! One call from image bytes to every hash hashgate matches on.
//!
//! The image's own PDQ hash is the reference's (stored pixels, first frame,
//! alpha dropped). What a viewer sees where that differs comes as view
//! hashes ([`crate::views`]): alpha composited, animation frames. An SVG
//! has no pixels of its own, and an icon holds several images: each of
//! their images is hashed, the first giving the container's hash and the
//! others view hashes.

use serde::Serialize;

use crate::decode::{self, ico, svg, DecodeOptions, FramesRead, ImageFormat};
use crate::digest::ExactDigests;
use crate::error::HashError;
use crate::hashes::{Md5Digest, PdqHash, Sha1Digest, Sha256Digest};
use crate::pdq;
use crate::variants::{self, Variant, VariantHash, VariantOptions};
use crate::views::ViewHashes;

/// What to compute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashOptions {
    pub decode: DecodeOptions,
    /// Also report the 8 dihedral PDQ hashes in [`ImageHashes::dihedral`]
    /// (an output, as `hashgate hash --dihedral` prints; matching by
    /// rotations and mirrors is the query set's part).
    pub dihedral: bool,
    /// Extra query hashes for altered copies (rotations, mirrors, borders).
    pub variants: VariantOptions,
}

impl HashOptions {
    /// The options that compute the query hashes of `set`, with `decode`.
    pub fn for_query(set: crate::QuerySet, decode: DecodeOptions) -> Self {
        HashOptions {
            decode,
            dihedral: false,
            variants: set.variant_options(),
        }
    }
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
    /// What a viewer sees where it differs from the stored pixels (always
    /// computed; [`crate::views`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<VariantHash>,
    /// For an animation: how many frames were read, and whether all were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<FramesRead>,
    /// For a container (SVG, icon): the exact digests of its images, also
    /// queried.
    #[serde(skip)]
    pub embedded: Vec<ExactDigests>,
}

impl ImageHashes {
    /// Every PDQ hash to query with, labelled, the image's own first:
    /// its own hash, the 8 dihedral ones when computed, the variants, and
    /// the views.
    /// Duplicates are dropped.
    pub fn query_pdq(&self) -> Vec<(Variant, PdqHash)> {
        self.query_pdq_with_quality()
            .into_iter()
            .map(|(variant, hash, _)| (variant, hash))
            .collect()
    }

    /// The PDQ quality of each hash of [`ImageHashes::query_pdq`], in the
    /// same order (the dihedral hashes have the image's own quality).
    pub fn query_qualities(&self) -> Vec<u8> {
        self.query_pdq_with_quality()
            .into_iter()
            .map(|(_, _, quality)| quality)
            .collect()
    }

    fn query_pdq_with_quality(&self) -> Vec<(Variant, PdqHash, u8)> {
        let mut out = vec![(Variant::Original, self.pdq, self.quality)];
        let dihedral = self.dihedral.iter().flat_map(|all| {
            crate::pdq::Dihedral::ALL
                .into_iter()
                .zip(all.iter().copied())
                .skip(1)
                .map(|(d, h)| (Variant::Derived(d), h, self.quality))
        });
        let extra = self
            .variants
            .iter()
            .chain(&self.views)
            .map(|v| (v.variant, v.pdq, v.quality));
        for (variant, hash, quality) in dihedral.chain(extra) {
            if !out.iter().any(|(_, h, _)| *h == hash) {
                out.push((variant, hash, quality));
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
    hash_nested(bytes, options, Box::new(digests), 0)
}

/// How the exact digests of an input are had (boxed: SVG recursion).
type Digests<'a> = Box<dyn FnOnce() -> ExactDigests + 'a>;

fn hash_nested(
    bytes: &[u8],
    options: &HashOptions,
    digests: Digests<'_>,
    nesting: u32,
) -> Result<ImageHashes, HashError> {
    options.decode.limits.check_input(bytes.len())?;
    match decode::sniff(bytes) {
        Some(ImageFormat::Svg) => {
            if nesting >= svg::MAX_NESTING {
                return Err(HashError::Malformed(format!(
                    "SVG nested more than {} levels deep",
                    svg::MAX_NESTING
                )));
            }
            let found = svg::embedded_images(bytes);
            return hash_container(ImageFormat::Svg, found.images, options, digests, nesting);
        }
        Some(ImageFormat::Ico) if !ico::is_single_bitmap(bytes) => {
            let images = ico::entries(bytes, svg::MAX_EMBEDDED)?
                .into_iter()
                .map(|entry| entry.image)
                .collect();
            return hash_container(ImageFormat::Ico, images, options, digests, nesting);
        }
        _ => {}
    }
    let decoded = decode::decode(bytes, &options.decode)?;
    let (width, height) = decoded.display_dimensions();
    let format = decoded.format;
    let full_scale = decoded.full_scale();
    // The variants' own plane, at most MAX_VARIANT_PIXELS samples.
    let kept = options
        .variants
        .any()
        .then(|| variants::for_variants(&decoded.luma, full_scale));
    let views = decoded.views;
    let output = pdq::hash_luma_scaled(decoded.luma, Some(full_scale));
    let variants = match kept {
        Some((luma, scale)) => variants::variant_hashes(&luma, scale, &output, options.variants),
        None => Vec::new(),
    };
    let mut view_hashes = ViewHashes::new(output.hash);
    for view in views {
        view_hashes.add(view);
    }
    let frames = decode::frames::frames(
        bytes,
        format,
        &options.decode.limits,
        options.decode.reduction,
        &mut |view| view_hashes.add(view),
    )?;
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
        views: view_hashes.finish(),
        frames,
        embedded: Vec::new(),
    })
}

/// A container (an SVG's embedded images, an icon's images): each image
/// hashed, the first as the container's own hash. Every image must hash:
/// one that cannot is the container's error (so an undecodable image cannot
/// hide behind a decoy). The digests are of the container's bytes; the
/// images' digests are queried too.
fn hash_container(
    format: ImageFormat,
    images: Vec<Vec<u8>>,
    options: &HashOptions,
    digests: Digests<'_>,
    nesting: u32,
) -> Result<ImageHashes, HashError> {
    let mut images = images.iter();
    let first = images.next().ok_or(match format {
        ImageFormat::Svg => HashError::NoRaster,
        _ => HashError::Malformed("container with no image".into()),
    })?;
    let first = hash_nested(
        first,
        options,
        Box::new(|| ExactDigests::of(first)),
        nesting + 1,
    )?;
    let mut embedded = vec![ExactDigests {
        md5: first.md5,
        sha1: first.sha1,
        sha256: first.sha256,
    }];
    embedded.extend(first.embedded.iter().cloned());
    let mut view_hashes = ViewHashes::new(first.pdq);
    for view in &first.views {
        view_hashes.add_hash(view.clone());
    }
    for (n, image) in images.enumerate() {
        let hashes = hash_nested(
            image,
            options,
            Box::new(|| ExactDigests::of(image)),
            nesting + 1,
        )?;
        let index = n as u32 + 2;
        let own = VariantHash {
            variant: Variant::Embedded {
                image: index,
                rendering: None,
            },
            pdq: hashes.pdq,
            quality: hashes.quality,
        };
        view_hashes.add_hash(own);
        for view in hashes.views {
            let rendering = match view.variant {
                Variant::Rendering(r) => Some(r),
                _ => None,
            };
            view_hashes.add_hash(VariantHash {
                variant: Variant::Embedded {
                    image: index,
                    rendering,
                },
                ..view
            });
        }
        embedded.push(ExactDigests {
            md5: hashes.md5,
            sha1: hashes.sha1,
            sha256: hashes.sha256,
        });
        embedded.extend(hashes.embedded);
    }
    let digests = digests();
    Ok(ImageHashes {
        format,
        width: first.width,
        height: first.height,
        pdq: first.pdq,
        quality: first.quality,
        dihedral: first.dihedral,
        md5: digests.md5,
        sha1: digests.sha1,
        sha256: digests.sha256,
        variants: first.variants,
        views: view_hashes.finish(),
        frames: first.frames,
        embedded,
    })
}
