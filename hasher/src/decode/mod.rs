//! Bytes to luma: the only module that touches codec crates.
//!
//! Every path reads the header first, checks it against [`Limits`], and only
//! then allocates; every failure is a [`HashError`], never a panic. Output is
//! a [`LumaImage`] ready for PDQ, possibly at reduced scale ([`Reduction`]).
//!
//! Alpha is dropped (the reference hashes the RGB values as stored) and EXIF
//! orientation is ignored unless asked for, as the reference does. What a
//! viewer sees where it differs (alpha composited over a background, the
//! frames of an animation) comes as extra [`View`]s ([`view`], [`frames`]);
//! SVG is read for the raster images embedded in it ([`svg`]).

mod dct_luma;
pub mod frames;
pub mod ico;
mod jpeg;
mod jpeg_markers;
mod other;
mod png_rows;
pub mod sniff;
pub mod svg;
pub mod view;

pub use frames::FramesRead;
pub use sniff::{sniff, ImageFormat};
pub use view::{Background, Rendering, View};

use image::metadata::Orientation;

use crate::error::HashError;
use crate::limits::Limits;
use crate::pdq::LumaImage;

/// How much detail to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Every pixel, as the reference pipeline decodes.
    Full,
    /// Large images are decoded at 1/2, 1/4 or 1/8 scale (JPEG: DCT scaling;
    /// other formats: block means of luma), as far as PDQ's blur window
    /// allows, and the 64x64 downsample is computed from the scaled samples
    /// with the full-resolution filter's weights ([`crate::pdq::projected`]).
    Scaled,
}

impl Reduction {
    /// The default: [`Reduction::Scaled`].
    pub const DEFAULT: Reduction = Reduction::Scaled;

    /// The block size (1, 2, 4 or 8) to decode a `width` x `height` image at.
    pub fn block_size(self, width: u32, height: u32) -> u32 {
        if self == Reduction::Full {
            return 1;
        }
        // A block may cover at most this share of PDQ's box window (one
        // 128th of the short side): measured by bench/scale_drift.py (120
        // photo JPEGs, short sides 300 to 3200) and on Meta's regression
        // images, this keeps the hash within 4 bits of the full-resolution
        // reference. A whole window (1/1) drifts up to 34 bits on small
        // images; 3/5 doubles the median drift near the thresholds.
        let window = crate::pdq::jarosz::window_size(width.min(height) as usize, 64) as u32;
        [8, 4, 2]
            .into_iter()
            .find(|&block| block * BLOCKS_PER_WINDOW_DEN <= window * BLOCKS_PER_WINDOW_NUM)
            .unwrap_or(1)
    }
}

/// A block may be at most NUM/DEN of the blur window (see
/// [`Reduction::block_size`]).
const BLOCKS_PER_WINDOW_NUM: u32 = 1;
const BLOCKS_PER_WINDOW_DEN: u32 = 2;

/// What to decode and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    pub limits: Limits,
    pub reduction: Reduction,
    /// Apply the EXIF orientation tag (off by default, as in the reference).
    pub apply_exif: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            limits: Limits::default(),
            reduction: Reduction::DEFAULT,
            apply_exif: false,
        }
    }
}

/// A decoded image as luma.
#[derive(Debug, Clone)]
pub struct DecodedImage {
    pub format: ImageFormat,
    /// Width of the stored image in pixels, before any reduction or rotation.
    pub width: u32,
    /// Height of the stored image in pixels, before any reduction or rotation.
    pub height: u32,
    /// The pixels as luma, possibly reduced, and oriented if asked.
    pub luma: LumaImage,
    /// How many full-resolution pixels (per side) one luma sample stands for.
    pub block: u32,
    exif_orientation: Option<Orientation>,
    /// What a viewer sees where it differs from [`DecodedImage::luma`]:
    /// the image's alpha composited over white and over black, when it has
    /// non-opaque pixels. Animation frames come from [`frames::frames`].
    pub views: Vec<View>,
}

impl DecodedImage {
    /// Width and height as displayed: swapped when an applied EXIF
    /// orientation turns the image by 90 degrees.
    pub fn display_dimensions(&self) -> (u32, u32) {
        match self.exif_orientation {
            Some(
                Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH,
            ) => (self.height, self.width),
            _ => (self.width, self.height),
        }
    }
}

impl DecodedImage {
    /// What PDQ needs to know about the scale of [`DecodedImage::luma`].
    pub fn full_scale(&self) -> crate::pdq::FullScale {
        let (width, height) = self.display_dimensions();
        crate::pdq::FullScale {
            width: width as usize,
            height: height as usize,
            block: self.block as usize,
            always_project: false,
        }
    }
}

/// Decodes `bytes` to luma under `options`.
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<DecodedImage, HashError> {
    if bytes.is_empty() {
        return Err(HashError::Empty);
    }
    options.limits.check_input(bytes.len())?;
    let format = sniff(bytes).ok_or(HashError::UnsupportedFormat)?;
    match format {
        ImageFormat::Svg => return Err(HashError::NoRaster),
        format if !format.is_decodable() => return Err(HashError::UndecodableFormat(format)),
        _ => {}
    }
    // Read the declared size from the header alone, the same way for every
    // format, and refuse bombs before any decoder is set up.
    if let Ok(size) = imagesize::blob_size(bytes) {
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        options
            .limits
            .check_dimensions(clamp(size.width), clamp(size.height))?;
    }
    let mut decoded = match format {
        ImageFormat::Jpeg => jpeg::decode(
            bytes,
            &options.limits,
            options.reduction,
            options.apply_exif,
        )?,
        _ => other::decode(
            bytes,
            format,
            &options.limits,
            options.reduction,
            options.apply_exif,
        )?,
    };
    if let Some(orientation) = decoded.exif_orientation {
        decoded.luma = orient(&decoded.luma, orientation);
        let transposes = decoded.display_dimensions() != (decoded.width, decoded.height);
        for view in &mut decoded.views {
            view.luma = orient(&view.luma, orientation);
            if transposes {
                (view.width, view.height) = (view.height, view.width);
            }
        }
    }
    Ok(decoded)
}

/// Applies an EXIF orientation to luma pixels.
fn orient(luma: &LumaImage, orientation: Orientation) -> LumaImage {
    match orientation {
        Orientation::NoTransforms => luma.clone(),
        Orientation::Rotate90 => luma.rotate90_cw(),
        Orientation::Rotate180 => luma.rotate180(),
        Orientation::Rotate270 => luma.rotate270_cw(),
        Orientation::FlipHorizontal => luma.flip_horizontal(),
        Orientation::FlipVertical => luma.flip_vertical(),
        Orientation::Rotate90FlipH => luma.transpose(),
        Orientation::Rotate270FlipH => luma.transverse(),
    }
}
