//! PDQ, Meta's perceptual hash, as a pipeline of the reference's stages:
//!
//! 1. [`luma`]: RGB to float luma;
//! 2. [`jarosz`]: two-round box blur, decimation to 64x64;
//! 3. [`quality`]: gradient-based quality score;
//! 4. [`dct`]: 64x64 to 16x16 DCT;
//! 5. [`bits`]: median threshold to 256 bits.
//!
//! [`projected`] replaces stage 2 for images decoded at reduced scale.
//!
//! Given the same luma, the hash and quality are bit-identical to
//! ThreatExchange's C++ (`pdqhashing.cpp`). Everything here is pure
//! computation on buffers: no decoding, no I/O.

pub mod bits;
pub mod borders;
pub mod dct;
pub mod dihedral;
pub mod jarosz;
pub mod luma;
pub mod projected;
pub mod quality;

use crate::hashes::PdqHash;
pub use dihedral::Dihedral;
pub use luma::LumaImage;

/// Images narrower or shorter than this get the zero hash and quality 0, as
/// in the reference (`MIN_HASHABLE_DIM`).
pub const MIN_HASHABLE_DIM: usize = 5;

/// A PDQ hash with its quality and the DCT it came from (kept so that the
/// dihedral variants can be derived without hashing again).
#[derive(Debug, Clone)]
pub struct PdqOutput {
    pub hash: PdqHash,
    /// 0..=100; the reference suggests ignoring hashes with quality <= 49.
    pub quality: u8,
    dct: Option<[[f32; 16]; 16]>,
}

impl PdqOutput {
    /// The hashes of the 8 dihedral variants, in [`Dihedral::ALL`] order,
    /// derived from the DCT (the first is [`PdqOutput::hash`]).
    pub fn dihedral(&self) -> [PdqHash; 8] {
        match &self.dct {
            None => [PdqHash::ZERO; 8],
            Some(dct) => Dihedral::ALL.map(|d| bits::hash_from_dct(&d.apply(dct))),
        }
    }

    /// The 64x64 downsample's DCT, if the image was large enough to hash.
    pub fn dct(&self) -> Option<&[[f32; 16]; 16]> {
        self.dct.as_ref()
    }
}

/// PDQ of a luma image. The buffer is used as scratch space.
pub fn hash_luma(image: LumaImage) -> PdqOutput {
    hash_luma_scaled(image, None)
}

/// Where a reduced-scale luma image came from: the full-resolution size and
/// the block of full-resolution pixels each sample stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullScale {
    pub width: usize,
    pub height: usize,
    pub block: usize,
    /// Use the projected downsample even at block 1 (same values up to
    /// rounding, cheaper: used for extra query variants).
    pub always_project: bool,
}

/// PDQ of a luma image that may have been decoded at reduced scale (`full`
/// says from what). Without `full`, or with a block of 1, this is exactly the
/// reference computation.
pub fn hash_luma_scaled(mut image: LumaImage, full: Option<FullScale>) -> PdqOutput {
    let (width, height) = full.map_or((image.width, image.height), |f| (f.width, f.height));
    if width < MIN_HASHABLE_DIM
        || height < MIN_HASHABLE_DIM
        || image.width == 0
        || image.height == 0
    {
        return PdqOutput {
            hash: PdqHash::ZERO,
            quality: 0,
            dct: None,
        };
    }
    let downsampled = match full {
        Some(f) if f.block > 1 || f.always_project => {
            projected::downsample_from_reduced(&image, f.width, f.height, f.block)
        }
        _ if image.width == 64 && image.height == 64 => {
            // The reference skips the blur when the input is already 64x64.
            let mut buffer = [[0f32; 64]; 64];
            for (row, src) in buffer.iter_mut().zip(image.pixels.chunks_exact(64)) {
                row.copy_from_slice(src);
            }
            buffer
        }
        _ => jarosz::blur_and_decimate(&mut image.pixels, image.width, image.height),
    };
    let quality = quality::quality(&downsampled);
    let dct = dct::dct_64_to_16(&downsampled);
    PdqOutput {
        hash: bits::hash_from_dct(&dct),
        quality,
        dct: Some(dct),
    }
}
