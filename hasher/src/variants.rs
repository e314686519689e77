//! The query-side hash set: more than one PDQ hash per image, so that
//! altered copies of a listed image still match.
//!
//! Lists are hashed by others with standard PDQ, so the fix for alterations
//! must sit on the query side, and the image's own hash stays exactly
//! standard PDQ. The extra hashes:
//!
//! * **derived dihedral** (7): rotations and mirrors from the one DCT, at no
//!   cost beyond thresholding;
//! * **pixel orientations** (7): hashes of the actually rotated and mirrored
//!   pixels, for images where the derived ones drift (textured, non-square);
//! * **trimmed** (1 + 7 derived): the content inside uniform borders
//!   ([`crate::pdq::borders`]), when there are borders.
//!
//! Each extra hash is one more chance of a false match, so every one is
//! labelled and a route can turn the groups off.
//!
//! Up to 15 more PDQ passes would make an image's cost grow with its size
//! 16 times over, so they run on at most [`MAX_VARIANT_PIXELS`] of luma
//! ([`for_variants`]): larger planes are first averaged over square blocks,
//! and the hashes projected from those as the reduced decode path does.
//! Their cost is then bounded whatever the image declares.
//!
//! Apart from these (a route's choice), what a viewer sees where it differs
//! from the stored pixels is always hashed ([`crate::views`]): alpha over
//! white and black, animation frames, the images in an SVG or an icon. Those are
//! labelled here too ([`Variant::Rendering`], [`Variant::Embedded`]).

use core::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::decode::Rendering;
use crate::hashes::PdqHash;
use crate::pdq::{self, borders, Dihedral, FullScale, LumaImage, PdqOutput};

/// Which query hashes an image is matched by: the one vocabulary of the
/// policy's `variants`, the CLI's `--variants` and the service's
/// `?variants=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuerySet {
    /// The image's own PDQ hash only.
    Own,
    /// Its own hash and the 7 rotations and mirrors derived from the DCT.
    Dihedral,
    /// Those, the rotated and mirrored pixels, and the content inside
    /// added borders ([`VariantOptions::ALL`]).
    All,
}

impl QuerySet {
    /// Every query set, by its name.
    pub const ALL: [QuerySet; 3] = [QuerySet::Own, QuerySet::Dihedral, QuerySet::All];

    /// The name used in policies, flags and parameters.
    pub fn name(self) -> &'static str {
        match self {
            QuerySet::Own => "own",
            QuerySet::Dihedral => "dihedral",
            QuerySet::All => "all",
        }
    }

    /// The query set named `name`.
    pub fn from_name(name: &str) -> Option<QuerySet> {
        QuerySet::ALL.into_iter().find(|set| set.name() == name)
    }

    /// The extra hashes this set computes.
    pub fn variant_options(self) -> VariantOptions {
        match self {
            QuerySet::Own => VariantOptions::NONE,
            QuerySet::Dihedral => VariantOptions {
                derived_dihedral: true,
                ..VariantOptions::NONE
            },
            QuerySet::All => VariantOptions::ALL,
        }
    }
}

impl fmt::Display for QuerySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for QuerySet {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        QuerySet::from_name(name).ok_or_else(|| {
            format!("unknown query set {name:?}: expected one of own, dihedral, all")
        })
    }
}

/// Which groups of extra hashes to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantOptions {
    /// The 7 rotations and mirrors derived from the DCT.
    pub derived_dihedral: bool,
    /// The 7 rotations and mirrors of the actual pixels.
    pub pixel_orientations: bool,
    /// The content inside uniform borders (and its derived rotations).
    pub borders: bool,
}

impl VariantOptions {
    /// Every variant.
    pub const ALL: VariantOptions = VariantOptions {
        derived_dihedral: true,
        pixel_orientations: true,
        borders: true,
    };
    /// Only the image's own hash.
    pub const NONE: VariantOptions = VariantOptions {
        derived_dihedral: false,
        pixel_orientations: false,
        borders: false,
    };

    /// Whether any variant is asked for.
    pub fn any(self) -> bool {
        self.derived_dihedral || self.pixel_orientations || self.borders
    }
}

impl Default for VariantOptions {
    fn default() -> Self {
        VariantOptions::NONE
    }
}

/// How a query hash was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Standard PDQ of the image as it is.
    Original,
    /// Derived from the DCT: the hash the image would have if turned so.
    Derived(Dihedral),
    /// PDQ of the pixels turned so.
    Pixels(Dihedral),
    /// PDQ of the content inside uniform borders, turned so (derived).
    Trimmed(Dihedral),
    /// PDQ of what a viewer sees: alpha composited, an animation's frame.
    Rendering(Rendering),
    /// PDQ of the `image`th image in a container (an SVG's embedded
    /// rasters, an icon's images; 1-based, the first is the container's own
    /// hash), as stored or as rendered.
    Embedded {
        image: u32,
        rendering: Option<Rendering>,
    },
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Variant::Original => f.write_str("orig"),
            Variant::Derived(d) => f.write_str(d.name()),
            Variant::Pixels(d) => write!(f, "pixels-{}", d.name()),
            Variant::Trimmed(Dihedral::Orig) => f.write_str("trimmed"),
            Variant::Trimmed(d) => write!(f, "trimmed-{}", d.name()),
            Variant::Rendering(r) => write!(f, "{r}"),
            Variant::Embedded {
                image,
                rendering: None,
            } => write!(f, "embedded-{image}"),
            Variant::Embedded {
                image,
                rendering: Some(r),
            } => write!(f, "embedded-{image}-{r}"),
        }
    }
}

impl Serialize for Variant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// One query hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariantHash {
    pub variant: Variant,
    pub pdq: PdqHash,
    pub quality: u8,
}

/// Most luma samples the variants are computed from: 4 MP, what the
/// decoders already give for most images at the default scale. Their
/// working set is then at most three planes of this size (the plane, one
/// turned or cropped copy, and its hash's rows): 48 MiB.
pub const MAX_VARIANT_PIXELS: usize = 4 << 20;

/// The luma plane to compute variants from, and its scale: `luma` itself
/// (copied) when it has at most [`MAX_VARIANT_PIXELS`] samples, otherwise
/// its means over square blocks of 2, 4, ... samples, the smallest that
/// fits.
pub fn for_variants(luma: &LumaImage, full: FullScale) -> (LumaImage, FullScale) {
    let mut factor = 1;
    while luma.width.div_ceil(factor) * luma.height.div_ceil(factor) > MAX_VARIANT_PIXELS {
        factor *= 2;
    }
    if factor == 1 {
        return (luma.clone(), full);
    }
    let reduced = block_means(luma, factor);
    let scale = FullScale {
        block: full.block * factor,
        ..full
    };
    (reduced, scale)
}

/// Means of `factor` x `factor` blocks; the last row and column of blocks
/// may be smaller, and are averaged over the samples they have. Also the
/// downscale of the console's blurred rendering (hashgate-worker
/// `console::reveal`).
pub fn block_means(luma: &LumaImage, factor: usize) -> LumaImage {
    let (width, height) = (luma.width, luma.height);
    let (out_w, out_h) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut pixels = vec![0f32; out_w * out_h];
    for (out_y, out_row) in pixels.chunks_exact_mut(out_w).enumerate() {
        let rows = out_y * factor..((out_y + 1) * factor).min(height);
        let block_h = rows.len();
        for y in rows {
            let row = &luma.pixels[y * width..(y + 1) * width];
            for (sum, chunk) in out_row.iter_mut().zip(row.chunks(factor)) {
                *sum += chunk.iter().sum::<f32>();
            }
        }
        for (out_x, value) in out_row.iter_mut().enumerate() {
            let block_w = ((out_x + 1) * factor).min(width) - out_x * factor;
            *value /= (block_w * block_h) as f32;
        }
    }
    LumaImage {
        width: out_w,
        height: out_h,
        pixels,
    }
}

/// Turns luma pixels by a dihedral transform.
pub fn transform(image: &LumaImage, d: Dihedral) -> LumaImage {
    match d {
        Dihedral::Orig => image.clone(),
        Dihedral::Rot90 => image.rotate270_cw(),
        Dihedral::Rot180 => image.rotate180(),
        Dihedral::Rot270 => image.rotate90_cw(),
        Dihedral::FlipX => image.flip_vertical(),
        Dihedral::FlipY => image.flip_horizontal(),
        Dihedral::FlipP => image.transpose(),
        Dihedral::FlipM => image.transverse(),
    }
}

/// The extra query hashes of an image whose own PDQ is `primary`, computed
/// from its luma (as decoded, possibly reduced: `full` says from what).
/// Duplicates of hashes already in the set are dropped.
pub fn variant_hashes(
    luma: &LumaImage,
    full: FullScale,
    primary: &PdqOutput,
    options: VariantOptions,
) -> Vec<VariantHash> {
    let mut out: Vec<VariantHash> = Vec::new();
    let push = |out: &mut Vec<VariantHash>, variant, pdq: PdqHash, quality| {
        if pdq != primary.hash && !out.iter().any(|v| v.pdq == pdq) {
            out.push(VariantHash {
                variant,
                pdq,
                quality,
            });
        }
    };
    if primary.dct().is_none() {
        return out; // too small to hash: nothing to vary
    }
    if options.derived_dihedral {
        for (d, pdq) in Dihedral::ALL.into_iter().zip(primary.dihedral()).skip(1) {
            push(&mut out, Variant::Derived(d), pdq, primary.quality);
        }
    }
    let projected = |image: LumaImage, width: usize, height: usize| {
        pdq::hash_luma_scaled(
            image,
            Some(FullScale {
                width,
                height,
                block: full.block,
                always_project: true,
            }),
        )
    };
    if options.pixel_orientations {
        for d in Dihedral::ALL.into_iter().skip(1) {
            let turned = transform(luma, d);
            let transposes = matches!(
                d,
                Dihedral::Rot90 | Dihedral::Rot270 | Dihedral::FlipP | Dihedral::FlipM
            );
            let (width, height) = if transposes {
                (full.height, full.width)
            } else {
                (full.width, full.height)
            };
            let output = projected(turned, width, height);
            push(&mut out, Variant::Pixels(d), output.hash, output.quality);
        }
    }
    if options.borders {
        for (n, rect) in borders::content_rects(luma).into_iter().enumerate() {
            let (width, height) = (rect.width * full.block, rect.height * full.block);
            let output = projected(
                luma.crop(rect),
                width.min(full.width),
                height.min(full.height),
            );
            push(
                &mut out,
                Variant::Trimmed(Dihedral::Orig),
                output.hash,
                output.quality,
            );
            // Derived rotations of the first (most likely) region only.
            if options.derived_dihedral && n == 0 {
                for (d, pdq) in Dihedral::ALL.into_iter().zip(output.dihedral()).skip(1) {
                    push(&mut out, Variant::Trimmed(d), pdq, output.quality);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(width: usize, height: usize) -> LumaImage {
        let pixels = (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                100.0
                    + 60.0 * (x / 41.0).sin() * (y / 17.0 + 1.0).cos()
                    + 50.0 * ((3.0 * x + y) / 97.0).sin()
                    + 0.05 * x
            })
            .collect();
        LumaImage {
            width,
            height,
            pixels,
        }
    }

    fn full(image: &LumaImage) -> FullScale {
        FullScale {
            width: image.width,
            height: image.height,
            block: 1,
            always_project: false,
        }
    }

    #[test]
    fn pixel_orientations_agree_with_derived_ones() {
        let image = scene(300, 200);
        let primary = pdq::hash_luma(image.clone());
        let derived = primary.dihedral();
        for (d, expected) in Dihedral::ALL.into_iter().zip(derived).skip(1) {
            let turned = transform(&image, d);
            let pixels = pdq::hash_luma(turned);
            assert!(
                pixels.hash.distance(&expected) <= 16,
                "{d:?}: {}",
                pixels.hash.distance(&expected)
            );
        }
    }

    #[test]
    fn a_rotated_copy_matches_through_a_variant() {
        let original = scene(300, 200);
        let listed = pdq::hash_luma(original.clone()).hash;
        let rotated = original.rotate90_cw();
        let primary = pdq::hash_luma(rotated.clone());
        assert!(
            primary.hash.distance(&listed) > 31,
            "a rotation defeats plain PDQ"
        );
        let variants = variant_hashes(&rotated, full(&rotated), &primary, VariantOptions::ALL);
        let best = variants
            .iter()
            .map(|v| v.pdq.distance(&listed))
            .min()
            .expect("variants");
        assert!(best <= 8, "best variant distance {best}");
    }

    #[test]
    fn a_bordered_copy_matches_through_the_trimmed_hash() {
        let original = scene(300, 200);
        let listed = pdq::hash_luma(original.clone()).hash;
        let (bw, bh) = (15, 10);
        let (w, h) = (300 + 2 * bw, 200 + 2 * bh);
        let mut pixels = vec![255.0f32; w * h];
        for y in 0..200 {
            pixels[(y + bh) * w + bw..(y + bh) * w + bw + 300]
                .copy_from_slice(&original.pixels[y * 300..(y + 1) * 300]);
        }
        let framed = LumaImage {
            width: w,
            height: h,
            pixels,
        };
        let primary = pdq::hash_luma(framed.clone());
        let variants = variant_hashes(&framed, full(&framed), &primary, VariantOptions::ALL);
        let trimmed = variants
            .iter()
            .find(|v| v.variant == Variant::Trimmed(Dihedral::Orig))
            .expect("trimmed hash");
        assert!(
            trimmed.pdq.distance(&listed) <= 16,
            "trimmed distance {}",
            trimmed.pdq.distance(&listed)
        );
        assert!(primary.hash.distance(&listed) > trimmed.pdq.distance(&listed));
    }

    #[test]
    fn variants_of_a_large_plane_come_from_at_most_the_cap_and_still_match() {
        let image = scene(2600, 1700);
        let (small, scale) = for_variants(&image, full(&image));
        assert!(small.width * small.height <= MAX_VARIANT_PIXELS);
        assert_eq!((small.width, small.height, scale.block), (1300, 850, 2));
        let primary = pdq::hash_luma(image.clone());
        let rotated = pdq::hash_luma(image.rotate90_cw()).hash;
        let pixels_only = VariantOptions {
            pixel_orientations: true,
            ..VariantOptions::NONE
        };
        let variants = variant_hashes(&small, scale, &primary, pixels_only);
        assert!(variants.len() >= 4, "{variants:?}");
        let best = variants
            .iter()
            .map(|v| v.pdq.distance(&rotated))
            .min()
            .expect("pixel orientations");
        assert!(best <= 8, "best pixel-orientation distance {best}");
        let (same, same_scale) = for_variants(&small, scale);
        assert_eq!((same.pixels, same_scale), (small.pixels, scale));
    }

    #[test]
    fn no_variants_when_none_asked() {
        let image = scene(120, 90);
        let primary = pdq::hash_luma(image.clone());
        assert!(variant_hashes(&image, full(&image), &primary, VariantOptions::NONE).is_empty());
    }
}
